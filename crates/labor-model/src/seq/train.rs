//! Training of the sequence models (CAREER, the multinomial logit, bag-of-jobs) as in the
//! CAREER code: Adam with β = (0.9, 0.98), ε = 1e-8 and decoupled weight decay 0.01
//! (`p ← p − lr·wd·p`, fairseq's `adam.py`), fairseq's inverse-square-root schedule (linear
//! warm-up from 1e-7 to the peak over `warmup` updates, then `peak·√(warmup/step)`), batches
//! by token count (careers sorted by length with a seeded random tie-break, cut into batches of
//! at most `max_tokens` padded positions, batch order shuffled every epoch), the loss = mean
//! negative log-likelihood over every worker-year (the first included) in nats, validation after
//! every epoch and the best validation model kept.
//!
//! # When training stops
//! With [`EarlyStopping`] (the default of every trained kind, see
//! [`crate::ModelKind::default_options`]), training stops once the validation loss has not
//! improved for a patience of `max(epochs, ⌈updates / updates per epoch⌉)` epochs (3 epochs
//! and 300 updates by default), or after `TrainOptions::epochs` epochs, whichever comes first.
//! The patience is counted in updates as well as epochs so that it scales with the panel: a
//! survey of 400 workers makes a handful of updates per epoch, and three epochs of it would stop
//! a model still in its warm-up, while on 30,000 workers three epochs are thousands of updates.
//!
//! # Files
//! With an output directory `DIR`:
//! - `DIR/model.json` and `DIR/model.bpk`: the best model so far (see [`crate::save_model`]);
//! - `DIR/loss.csv`: `step,epoch,tokens,train_loss,valid_loss,learning_rate`, one row per update
//!   (`valid_loss` empty) and one row per validation (`train_loss` = the epoch's mean);
//! - `DIR/checkpoint/{model.bpk,optimizer.bpk,state.json,options.json}`: the last epoch's
//!   weights (burn's record format), Adam's moments, the counters and the options, so that
//!   `resume` continues after the last finished epoch. A resume restores which parameters are
//!   trainable and numbers the parameters as the interrupted run did, so that Adam's state
//!   (keyed by parameter id) applies to the same parameters.
//!
//! The checkpoint is written into `checkpoint.tmp/` and swapped in with two renames; a run
//! starts by putting a swap that a kill interrupted in order (the partial staging directory
//! removed, a complete one swapped in, a lone `checkpoint.old/` put back), so `resume` reads
//! `checkpoint/`; other files are written to a temporary name and renamed. Dropout and batch order are seeded per epoch
//! (`seed + epoch`), and a resume drops the rows of `loss.csv` past the checkpoint, so a run
//! killed at any point and resumed writes the same `loss.csv` and weights as one never
//! interrupted. A resume may change only `epochs` and `max_steps`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use labor_data::{Panel, SeededRng, Worker};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rundir::{
    CurveRow, LossLog, Progress, io_err, load_checkpoint_model, number_params, option_difference,
    record_err, recover_swap, write_dir_swapped,
};
use crate::seq::{HostBatch, SeqModel, masked_nll, two_stage_log_probs, two_stage_nll};

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Passes over the training panel.
    pub epochs: usize,
    /// Stop after this many updates (all epochs when `None`).
    pub max_steps: Option<usize>,
    /// Padded positions per batch (fairseq's `--max-tokens`).
    pub max_tokens: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up updates of the inverse-square-root schedule.
    pub warmup: usize,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of batch order and dropout.
    pub seed: u64,
    /// Stop when the validation loss stops improving (`None`: run every epoch).
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
}

/// When to stop a run whose validation loss no longer improves: after a patience of
/// `max(epochs, ⌈updates / updates per epoch⌉)` epochs without a new best (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement, at least.
    pub epochs: usize,
    /// Updates without improvement, at least (rounded up to whole epochs).
    pub updates: usize,
}

impl Default for EarlyStopping {
    /// Three epochs and 300 updates.
    fn default() -> Self {
        Self {
            epochs: 3,
            updates: 300,
        }
    }
}

impl EarlyStopping {
    /// The patience in epochs for a panel cut into `steps_per_epoch` updates per epoch.
    ///
    /// ```
    /// use labor_model::EarlyStopping;
    /// let e = EarlyStopping::default();
    /// assert_eq!(e.patience(4), 75); // a small survey: 300 updates
    /// assert_eq!(e.patience(70), 5);
    /// assert_eq!(e.patience(700), 3); // a large one: 3 epochs
    /// ```
    pub fn patience(&self, steps_per_epoch: usize) -> usize {
        self.epochs
            .max(self.updates.div_ceil(steps_per_epoch.max(1)))
            .max(1)
    }
}

impl TrainOptions {
    /// The options used for CAREER fine-tuning in the paper (peak 1e-4, warm-up 500,
    /// 16,000 tokens) with `epochs` epochs.
    pub fn paper(epochs: usize) -> Self {
        Self {
            epochs,
            max_steps: None,
            max_tokens: 16_000,
            lr: 1e-4,
            warmup: 500,
            weight_decay: 0.01,
            seed: 1,
            early_stopping: None,
        }
    }
}

/// Fairseq's `inverse_sqrt` schedule: the learning rate of update `step` (from 1).
pub fn inverse_sqrt_lr(step: usize, peak: f64, warmup: usize) -> f64 {
    const INIT: f64 = 1e-7;
    let step = step.max(1) as f64;
    let warmup = warmup as f64;
    if step < warmup {
        INIT + (peak - INIT) * step / warmup
    } else {
        peak * (warmup.max(1.0) / step).sqrt()
    }
}

/// Counters saved with a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Updates done.
    pub step: usize,
    /// Epochs finished.
    pub epoch: usize,
    /// Worker-years seen.
    pub tokens: u64,
    /// Best validation loss so far.
    pub best_valid: f64,
    /// Epoch of the best validation loss.
    pub best_epoch: usize,
}

/// Summary of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The final counters.
    pub state: TrainState,
    /// Wall-clock seconds of this run (without resumed parts).
    pub seconds: f64,
    /// Whether early stopping ended the run before its last epoch.
    #[serde(default)]
    pub stopped_early: bool,
    /// The patience in epochs early stopping used (0 without early stopping).
    #[serde(default)]
    pub patience: usize,
    /// Training worker-years per second.
    pub tokens_per_second: f64,
}

/// The best validation loss and its epoch, the speed and the time, and whether early stopping
/// ended the run, in one line.
impl std::fmt::Display for TrainSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.state;
        write!(
            f,
            "best valid {:.4} nats (ppl {:.3}) at epoch {}; {:.0} worker-years/s, {:.1}s",
            s.best_valid,
            s.best_valid.exp(),
            s.best_epoch,
            self.tokens_per_second,
            self.seconds
        )?;
        if self.stopped_early {
            write!(
                f,
                "; stopped early after epoch {}: no better validation loss for {} epochs",
                s.epoch, self.patience
            )?;
        }
        Ok(())
    }
}

/// Cuts `workers` into batches of at most `max_tokens` padded positions (at least one career
/// each), sorting by length with a seeded random tie-break.
///
/// # Errors
/// As [`HostBatch::from_workers`].
pub fn token_batches(
    workers: &[Worker],
    vocab: &crate::SeqVocab,
    max_tokens: usize,
    max_len: usize,
    seed: u64,
) -> Result<Vec<HostBatch>> {
    let mut rng = SeededRng::new(seed);
    let mut order: Vec<(usize, u64, usize)> = workers
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.records.is_empty())
        .map(|(i, w)| (w.records.len(), rng.next_u64(), i))
        .collect();
    order.sort_unstable();
    let mut batches = Vec::new();
    let mut cur: Vec<&Worker> = Vec::new();
    for (len, _, i) in order {
        // Sorted by length, so `len` is the padded length if this career joins.
        if !cur.is_empty() && (cur.len() + 1) * len > max_tokens {
            batches.push(HostBatch::from_workers(&cur, vocab, max_len)?);
            cur.clear();
        }
        cur.push(&workers[i]);
    }
    if !cur.is_empty() {
        batches.push(HostBatch::from_workers(&cur, vocab, max_len)?);
    }
    Ok(batches)
}

/// Mean negative log-likelihood (nats per worker-year) of `model` over `batches`.
pub fn evaluate<M: SeqModel>(model: &M, batches: &[HostBatch], device: &Device) -> f64 {
    let n = model.vocab().n_states;
    let (mut total, mut count) = (0.0, 0usize);
    for hb in batches {
        let b = hb.to_device(device);
        let lp = two_stage_log_probs(model.logits(&b), b.prev.clone(), n);
        let loss: f64 = scalar(masked_nll(lp, &b));
        total += loss * b.n_tokens as f64;
        count += b.n_tokens;
    }
    total / count.max(1) as f64
}

fn scalar(t: burn::tensor::Tensor<1>) -> f64 {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map_or(f64::NAN, f64::from)
}

/// Saves the weights of `model` to `path` (burnpack, parameter ids included) atomically; a
/// failed save (a full disk) leaves the old file and no temporary one.
pub(crate) fn save_weights<M: Module>(model: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    let mut store = BurnpackStore::from_file(&tmp)
        .auto_extension(false)
        .overwrite(true);
    let saved = model
        .save_into(&mut store)
        .map_err(|e| Error::Checkpoint {
            path: tmp.clone(),
            detail: e.to_string(),
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
    if saved.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    saved
}

/// Loads the weights at `path` into `model`.
pub(crate) fn load_weights<M: Module>(mut model: M, path: &Path) -> Result<M> {
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    model.load_from(&mut store).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(model)
}

/// Trains `model` (whose parameters live on an autodiff device) on `train`, validating on
/// `valid` after every epoch; returns the best validation model (on a plain device) and the
/// summary. With `out`, writes the files described in the module docs; with `resume`, continues
/// from `out/checkpoint`.
///
/// # Errors
/// [`Error::Training`] for empty panels or zero epochs, I/O and checkpoint errors, and the
/// errors of [`HostBatch::from_workers`].
#[allow(clippy::too_many_arguments)]
pub fn train_seq<M>(
    model: M,
    train: &Panel,
    valid: &Panel,
    opts: &TrainOptions,
    max_len: usize,
    out: Option<&Path>,
    resume: bool,
    on_model_improved: &mut dyn FnMut(&M, &Path) -> Result<()>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(M, TrainSummary)>
where
    M: SeqModel + Module + Clone,
{
    if train.n_worker_years() == 0 || valid.n_worker_years() == 0 {
        return Err(Error::Training {
            field: "panels",
            detail: "the training and validation panels need at least one worker-year".into(),
        });
    }
    if opts.epochs == 0 || opts.max_tokens == 0 {
        return Err(Error::Training {
            field: "epochs",
            detail: "epochs and max_tokens must be positive".into(),
        });
    }
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| Device::default().autodiff());
    let plain = device.clone().inner();
    let vocab = model.vocab().clone();
    let valid_batches = token_batches(valid.workers(), &vocab, opts.max_tokens, max_len, 0)?;
    let steps_per_epoch =
        token_batches(train.workers(), &vocab, opts.max_tokens, max_len, opts.seed)?.len();
    let total_steps = opts
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * opts.epochs);
    let patience = opts
        .early_stopping
        .map_or(0, |e| e.patience(steps_per_epoch));
    let mut stopped_early = false;

    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-8)
        .with_weight_decay(opts.weight_decay as f32)
        .init();
    // Adam's state is keyed by parameter id: numbering the parameters makes a resumed run's
    // (a fresh instance loaded from the checkpoint) match the interrupted run's.
    let mut model = number_params(model);
    let mut state = TrainState {
        step: 0,
        epoch: 0,
        tokens: 0,
        best_valid: f64::INFINITY,
        best_epoch: 0,
    };
    let ckpt_dir = out.map(|o| o.join("checkpoint"));
    let mut log = None;
    if let Some(o) = out {
        fs::create_dir_all(o).map_err(io_err(o))?;
        recover_swap(&o.join("checkpoint"))?;
        // After `recover_swap`, the checkpoint is `checkpoint/` or there is none.
        let found = Some(o.join("checkpoint")).filter(|d| d.join("state.json").is_file());
        let resumed = match found.filter(|_| resume) {
            Some(ck) => {
                let state_path = ck.join("state.json");
                let text = fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
                state = serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
                    path: state_path.clone(),
                    source,
                })?;
                check_resumed_options(&ck, opts)?;
                // Trainable flags and parameter ids as in the interrupted run: a resumed update
                // is the uninterrupted one.
                model = load_checkpoint_model(model, &ck.join("model.bpk"))?;
                let opath = ck.join("optimizer.bpk");
                optim = optim.load(&opath).map_err(record_err(&opath))?;
                Some(state.step)
            }
            None => None,
        };
        // Resumed, the rows past the checkpoint belong to the interrupted part of an epoch,
        // which is about to run again.
        log = Some(LossLog::open(&o.join("loss.csv"), resumed)?);
    }
    let start_step = state.step;
    let mut best = if state.best_epoch > 0 {
        // Resumed: the best model is the one saved in `out`.
        None
    } else {
        Some(model.valid())
    };
    let start = Instant::now();
    let start_tokens = state.tokens;
    // The row of the step just done (or of a validation), with this process's speed.
    let progress_of = |state: &TrainState, epoch, train_loss, valid_loss, learning_rate| {
        let row = CurveRow {
            step: state.step,
            epoch,
            tokens: state.tokens,
            train_loss,
            valid_loss,
            learning_rate,
        };
        let (tokens, steps) = (state.tokens - start_tokens, state.step - start_step);
        Progress::new(
            row,
            total_steps,
            tokens,
            steps,
            start.elapsed().as_secs_f64(),
        )
    };
    let mut lr = inverse_sqrt_lr(state.step.max(1), opts.lr, opts.warmup);
    let mut last_train = f64::NAN;
    'epochs: for epoch in state.epoch + 1..=opts.epochs {
        if state.step >= total_steps {
            break;
        }
        // Checked before an epoch, so that a resumed run which had stopped stays stopped.
        if patience > 0 && state.epoch >= state.best_epoch + patience {
            stopped_early = true;
            break;
        }
        let epoch_seed = opts.seed.wrapping_add(epoch as u64);
        device.seed(epoch_seed);
        labor_kernels::seed_dropout(epoch_seed);
        let mut batches = token_batches(
            train.workers(),
            &vocab,
            opts.max_tokens,
            max_len,
            epoch_seed,
        )?;
        SeededRng::new(epoch_seed ^ 0x9e37_79b9).shuffle(&mut batches);
        let (mut sum, mut count) = (0.0, 0usize);
        for hb in &batches {
            if state.step >= total_steps {
                break;
            }
            let b = hb.to_device(&device);
            let loss = two_stage_nll(model.logits(&b), &b);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            state.step += 1;
            lr = inverse_sqrt_lr(state.step, opts.lr, opts.warmup);
            model = optim.step(lr, model, grads);
            let l = scalar(loss);
            state.tokens += b.n_tokens as u64;
            sum += l * b.n_tokens as f64;
            count += b.n_tokens;
            last_train = l;
            let ev = progress_of(&state, epoch, l, None, lr);
            if let Some(log) = log.as_mut() {
                log.push(&ev.row)?;
            }
            progress(&ev);
        }
        let current = model.valid();
        let v = evaluate(&current, &valid_batches, &plain);
        let epoch_loss = if count > 0 {
            sum / count as f64
        } else {
            last_train
        };
        state.epoch = epoch;
        if v < state.best_valid {
            state.best_valid = v;
            state.best_epoch = epoch;
            if let Some(o) = out {
                on_model_improved(&current, o)?;
            }
            best = Some(current);
        }
        let ev = progress_of(&state, epoch, epoch_loss, Some(v), lr);
        if let Some(log) = log.as_mut() {
            log.push(&ev.row)?;
            log.flush()?;
        }
        if let Some(ck) = &ckpt_dir {
            save_checkpoint(ck, &model, &optim, &state, opts)?;
        }
        progress(&ev);
        if state.step >= total_steps {
            break 'epochs;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let best = match best {
        Some(b) => b,
        None => match out {
            Some(o) => load_weights(model.valid(), &o.join("model.bpk"))?,
            None => model.valid(),
        },
    };
    Ok((
        best,
        TrainSummary {
            tokens_per_second: (state.tokens - start_tokens) as f64 / seconds.max(1e-9),
            state,
            seconds,
            stopped_early,
            patience,
        },
    ))
}

/// Writes the checkpoint of the end of an epoch as one directory swapped in for `dir`: the
/// model (burn's record format), the optimizer, the counters and the options. A crash leaves the previous checkpoint whole (in `dir` or `dir.old`).
fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &TrainState,
    opts: &TrainOptions,
) -> Result<()> {
    // A failed write (a full disk) leaves the previous checkpoint and no partial one.
    write_dir_swapped(&dir.with_extension("tmp"), dir, |tmp| {
        write_checkpoint_files(tmp, model, optim, state, opts)
    })
}

/// The files of a checkpoint, written into `tmp`.
fn write_checkpoint_files<M: Module>(
    tmp: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &TrainState,
    opts: &TrainOptions,
) -> Result<()> {
    let mp = tmp.join("model.bpk");
    model
        .clone()
        .save_file(&mp)
        .map_err(|e| Error::Checkpoint {
            path: mp.clone(),
            detail: e.to_string(),
        })?;
    let op = tmp.join("optimizer.bpk");
    optim.save(&op).map_err(record_err(&op))?;
    for (name, json) in [
        ("state.json", serde_json::to_vec_pretty(state)),
        ("options.json", serde_json::to_vec_pretty(opts)),
    ] {
        let path = tmp.join(name);
        let json = json.map_err(|source| Error::ConfigJson {
            path: path.clone(),
            source,
        })?;
        fs::write(&path, json).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Refuses to resume the checkpoint in `ck` with options other than its own (only `epochs`
/// and `max_steps` may change: a resume may train longer), naming the first that differs.
fn check_resumed_options(ck: &Path, opts: &TrainOptions) -> Result<()> {
    let op = ck.join("options.json");
    if !op.is_file() {
        return Ok(()); // a checkpoint written before the options were saved
    }
    let text = fs::read_to_string(&op).map_err(io_err(&op))?;
    let mut saved: TrainOptions =
        serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
            path: op.clone(),
            source,
        })?;
    saved.epochs = opts.epochs;
    saved.max_steps = opts.max_steps;
    if saved == *opts {
        return Ok(());
    }
    Err(Error::InvalidOption {
        name: "resume",
        detail: format!(
            "{} was written with {}; resume with the options of the interrupted run (only --epochs and --max-steps may change)",
            ck.display(),
            option_difference(&saved, opts)
        ),
    })
}

/// Path of the best weights in a model directory.
pub(crate) fn weights_path(dir: &Path) -> PathBuf {
    dir.join("model.bpk")
}
