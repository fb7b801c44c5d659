//! Fine-tuning a [`Llama`] on rendered career text with burn's autodiff, as the LABOR-LLM paper
//! did: next-token cross-entropy on every token of the resumes (or only on the job titles), AdamW
//! with decoupled weight decay, a linear warmup then linear decay over the scheduled epochs
//! (transformers' `get_linear_schedule_with_warmup`), gradient accumulation, global-norm gradient
//! clipping, seeded shuffling, a validation loss every epoch (and every N steps), and the
//! checkpoint with the best validation loss kept as a Hugging Face directory.
//!
//! Batches are right-padded with a loss mask: under causal attention the padding after a text
//! never changes the logits of its real tokens, so no attention mask is needed.
//!
//! # Output directory
//! - `checkpoint/`: the last checkpoint (model, optimizer state, schedule and data position in
//!   `state.json`), written to a temporary directory and renamed into place, so a run killed at
//!   any moment resumes from a complete checkpoint ([`FinetuneBuilder::with_resume`]).
//! - `best/`: `config.json`, `model.safetensors`, `tokenizer.json` of the best validation loss
//!   (LoRA adapters merged), loadable by [`load_hf`](crate::load_hf) and by transformers.
//! - `loss.csv`: `step,epoch,tokens,train_loss,valid_loss,learning_rate`, one row per optimizer
//!   step (`valid_loss` empty when not evaluated).
//!
//! A NaN or infinite training loss stops the run with [`Error::Diverged`] before the update is
//! applied; the last good checkpoint stays on disk.
//!
//! ```
//! use labor_model::LinearSchedule;
//! // Peak 1e-3, 10 warmup steps out of 110.
//! let s = LinearSchedule::new(1e-3, 10, 110);
//! assert_eq!(s.lr(0), 0.0);
//! assert!((s.lr(5) - 5e-4).abs() < 1e-12);
//! assert!((s.lr(10) - 1e-3).abs() < 1e-12);
//! assert!((s.lr(60) - 5e-4).abs() < 1e-12);
//! assert_eq!(s.lr(110), 0.0);
//! ```

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use labor_data::SeededRng;
use labor_template::Document;
use serde::{Deserialize, Serialize};

use crate::checkpoint::hf::save_hf;
use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::lora::{apply_lora, merge_lora, seed_adapters};
use crate::llm::model::Llama;
use crate::llm::plan::{MemoryPlan, MemoryPlanBuilder, PlanMode};
use crate::rundir::{
    CurveRow, Progress, check_run_dir, clear_run_dir, io_err, load_checkpoint_model, number_params,
    option_difference, record_err, recover_swap, write_curve, write_dir_swapped,
};
use crate::tokenize::tokenizer::TextTokenizer;

mod clip;
mod data;
pub(crate) mod job;
mod options;
pub(crate) mod scratch;

pub use data::{render_resumes, title_perplexity};
pub use options::{
    FinetuneOptions, FinetuneReport, LinearSchedule, LossOn, SCALED_MAX_EPOCHS, SCALED_MIN_UPDATES,
};

use clip::clip_global_norm;
use data::{Example, batch, loss_sum, mean_loss, scalar, tokenize};

/// A seeded sample of at most `n` of `v` (drawn with `seed` and `stream`; all of them, in order,
/// when there are no more): the document samples of fine-tuning runs.
pub(crate) fn sample<T>(mut v: Vec<T>, n: usize, seed: u64, stream: u64) -> Vec<T> {
    if v.len() > n {
        SeededRng::with_stream(seed, stream).shuffle(&mut v);
        v.truncate(n);
    }
    v
}

/// Builds a [`Finetune`] run.
#[derive(Debug)]
pub struct FinetuneBuilder {
    model: Llama,
    config: LlamaConfig,
    tokenizer: TextTokenizer,
    out: PathBuf,
    train: Vec<Document>,
    valid: Vec<Document>,
    options: FinetuneOptions,
    resume: bool,
    overwrite: bool,
}

/// The files of a fine-tuning run in its output directory.
pub(crate) const RUN_FILES: &[&str] = &[
    "checkpoint",
    "checkpoint.old",
    "checkpoint.tmp",
    "best",
    "best.old",
    "best.tmp",
    "loss.csv",
];

impl FinetuneBuilder {
    /// Fine-tunes `model` (with its configuration and tokenizer) and writes checkpoints, the
    /// best model and the loss curve under `out`. The model must live on an autodiff device
    /// (`device.autodiff()`, e.g. `load_hf(dir, &device.autodiff())`).
    pub fn new(
        model: Llama,
        config: LlamaConfig,
        tokenizer: TextTokenizer,
        out: impl Into<PathBuf>,
    ) -> Self {
        Self {
            model,
            config,
            tokenizer,
            out: out.into(),
            train: Vec::new(),
            valid: Vec::new(),
            options: FinetuneOptions::default(),
            resume: false,
            overwrite: false,
        }
    }

    /// The training documents (e.g. [`render_resumes`] of the training split).
    #[must_use]
    pub fn with_train(mut self, docs: Vec<Document>) -> Self {
        self.train = docs;
        self
    }

    /// The validation documents.
    #[must_use]
    pub fn with_valid(mut self, docs: Vec<Document>) -> Self {
        self.valid = docs;
        self
    }

    /// The hyper-parameters.
    #[must_use]
    pub fn with_options(mut self, options: FinetuneOptions) -> Self {
        self.options = options;
        self
    }

    /// Continue from the checkpoint in the output directory, if there is one (the options and
    /// documents must be those of the interrupted run).
    #[must_use]
    pub fn with_resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// Lets a new run (not a resumed one) replace the run already in the output directory
    /// (its checkpoint, best model and loss curve are removed when the run starts). Without
    /// it, [`build`](Self::build) refuses such a directory.
    #[must_use]
    pub fn with_overwrite(mut self, on: bool) -> Self {
        self.overwrite = on;
        self
    }

    /// Tokenizes the documents and checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] (bad options, no training documents, a model not on an
    /// autodiff device), [`Error::Tokenizer`], [`Error::ModelDir`] for an output directory
    /// that holds a run when neither resuming nor overwriting.
    pub fn build(self) -> Result<Finetune> {
        self.options.validate()?;
        check_run_dir(&self.out, RUN_FILES, self.resume, self.overwrite)?;
        let device = self.model.embed.weight.val().device();
        if !device.is_autodiff() {
            return Err(Error::InvalidOption {
                name: "model",
                detail: "the model must live on an autodiff device (`device.autodiff()`)".into(),
            });
        }
        let max_tokens = self
            .options
            .max_tokens
            .unwrap_or(usize::MAX)
            .min(self.model.max_seq_len());
        let train = tokenize(
            &self.train,
            &self.tokenizer,
            self.options.loss_on,
            max_tokens,
        )?;
        let valid = tokenize(
            &self.valid,
            &self.tokenizer,
            self.options.loss_on,
            max_tokens,
        )?;
        if train.is_empty() {
            return Err(Error::InvalidOption {
                name: "train",
                detail: "no training document has a token under the loss".into(),
            });
        }
        let model = match &self.options.lora {
            Some(l) => seed_adapters(apply_lora(self.model, l)?, l.rank, self.options.seed),
            None => self.model,
        };
        Ok(Finetune {
            model,
            config: self.config,
            tokenizer: self.tokenizer,
            out: self.out,
            train,
            valid,
            options: self.options,
            resume: self.resume,
            overwrite: self.overwrite,
            device,
        })
    }
}

/// The model to fine-tune and its tokenizer: a GGUF file or a Hugging Face directory, as
/// [`load_llm`](crate::load_llm) loads them, with the tokenizer read from `tokenizer` instead
/// when given.
///
/// # Errors
/// As [`load_llm`](crate::load_llm); [`Error::TokenizerMismatch`] for a tokenizer with more
/// tokens than the model's embedding rows; [`Error::InvalidOption`] for a model whose rotary
/// frequencies come as GGUF `rope_freqs` divisors, which the Hugging Face directory the
/// fine-tuned model is exported as cannot hold (fine-tune that model's Hugging Face checkpoint).
pub fn load_base(
    base: &Path,
    tokenizer: Option<&Path>,
    device: &Device,
) -> Result<(LlamaConfig, Llama, TextTokenizer)> {
    let (config, model, tok) = match tokenizer {
        None => crate::checkpoint::loader::load_llm(base, device)?,
        Some(t) => {
            let (config, model) = if base.is_dir() {
                crate::checkpoint::hf::load_hf(base, device)?
            } else {
                crate::checkpoint::loader::load_gguf(base, device)?
            };
            let tok = TextTokenizer::from_file(t)?;
            if tok.vocab_size() > config.vocab_size {
                return Err(Error::TokenizerMismatch {
                    path: t.to_path_buf(),
                    tokenizer_vocab: tok.vocab_size(),
                    model_vocab: config.vocab_size,
                });
            }
            (config, model, tok)
        }
    };
    if config.rope_freq_factors.is_some() {
        return Err(Error::InvalidOption {
            name: "base",
            detail: format!(
                "{}: its rotary frequencies come as GGUF `rope_freqs` divisors, which a Hugging \
                 Face config.json cannot hold, so the fine-tuned model could not be exported; \
                 fine-tune the Hugging Face checkpoint of this model instead",
                base.display()
            ),
        });
    }
    Ok((config, model, tok))
}

/// The state saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    options: FinetuneOptions,
    n_train: usize,
    step: usize,
    epoch: usize,
    step_in_epoch: usize,
    tokens: u64,
    initial_valid_loss: Option<f64>,
    best_valid_loss: Option<f64>,
    curve: Vec<CurveRow>,
    /// Validations since the best one.
    #[serde(default)]
    evals_since_best: usize,
}

/// A prepared fine-tuning run. [`Finetune::run`] writes under the output directory:
/// `checkpoint/` (model, optimizer, schedule and data position, swapped in atomically),
/// `best/` (Hugging Face directory of the best validation loss, adapters merged) and
/// `loss.csv` (`step,epoch,tokens,train_loss,valid_loss,learning_rate`); see
/// `docs/finetune.md`.
#[derive(Debug)]
pub struct Finetune {
    model: Llama,
    config: LlamaConfig,
    tokenizer: TextTokenizer,
    out: PathBuf,
    train: Vec<Example>,
    valid: Vec<Example>,
    options: FinetuneOptions,
    resume: bool,
    overwrite: bool,
    device: Device,
}

impl Finetune {
    /// Directory of the last checkpoint.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.out.join("checkpoint")
    }

    /// The memory this run needs (see [`MemoryPlanBuilder`]): this model and mode in float32,
    /// one batch of the longest training documents (the padded length of the worst batch), with
    /// activation checkpointing when the device recomputes activations.
    ///
    /// # Errors
    /// As [`MemoryPlanBuilder::build`].
    pub fn memory_plan(&self) -> Result<MemoryPlan> {
        let longest = self.train.iter().map(|e| e.ids.len()).max().unwrap_or(1);
        let mode = match &self.options.lora {
            Some(l) => PlanMode::Lora {
                rank: l.rank,
                targets: l.targets.clone(),
            },
            None => PlanMode::Full,
        };
        MemoryPlanBuilder::new(self.config.clone())
            .with_mode(mode)
            .with_batch(self.options.batch_size)
            .with_seq_len(longest)
            .with_activation_checkpointing(
                self.device.gradient_checkpointing_strategy()
                    == Some(burn::tensor::GradientCheckpointingStrategy::Balanced),
            )
            .build()
    }

    /// Optimizer steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.train
            .len()
            .div_ceil(self.options.batch_size)
            .div_ceil(self.options.grad_accum)
    }

    fn optimizer(&self) -> ModuleOptimizer {
        let adamw = |wd: f64| {
            AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .with_weight_decay(wd as f32)
                .build()
        };
        // Norm weights are not decayed (as transformers' Trainer does).
        ModuleOptimizer::from(adamw(self.options.weight_decay)).with_group(
            ParamGroup::from_predicate("gamma"),
            adamw(0.0),
            None,
        )
    }

    fn save_checkpoint(&self, model: &Llama, optim: &ModuleOptimizer, state: &State) -> Result<()> {
        let tmp = self.out.join("checkpoint.tmp");
        write_dir_swapped(&tmp, &self.checkpoint_dir(), |tmp| {
            let mp = tmp.join("model.bpk");
            model.clone().save_file(&mp).map_err(record_err(&mp))?;
            let op = tmp.join("optimizer.bpk");
            optim.save(&op).map_err(record_err(&op))?;
            let sp = tmp.join("state.json");
            let text = serde_json::to_string_pretty(state).map_err(|source| Error::ConfigJson {
                path: sp.clone(),
                source,
            })?;
            std::fs::write(&sp, text).map_err(io_err(&sp))
        })?;
        write_curve(&self.out.join("loss.csv"), &state.curve)
    }

    /// The checkpoint to resume from, when there is one (after [`recover_swap`] has put an
    /// interrupted swap in order, it is always `checkpoint/`).
    fn find_checkpoint(&self) -> Option<PathBuf> {
        Some(self.checkpoint_dir()).filter(|d| d.join("state.json").is_file())
    }

    fn load_checkpoint(
        &self,
        dir: &Path,
        model: Llama,
        optim: ModuleOptimizer,
    ) -> Result<(Llama, ModuleOptimizer, State)> {
        let sp = dir.join("state.json");
        let text = std::fs::read_to_string(&sp).map_err(io_err(&sp))?;
        let state: State = serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
            path: sp.clone(),
            source,
        })?;
        if state.options != self.options {
            return Err(Error::InvalidOption {
                name: "resume",
                detail: format!(
                    "{} was written with {}; resume with the options of the interrupted run",
                    dir.display(),
                    option_difference(&state.options, &self.options)
                ),
            });
        }
        if state.n_train != self.train.len() {
            return Err(Error::InvalidOption {
                name: "resume",
                detail: format!(
                    "{} was written for {} training documents, this run has {}",
                    dir.display(),
                    state.n_train,
                    self.train.len()
                ),
            });
        }
        let model = load_checkpoint_model(model, &dir.join("model.bpk"))?;
        let op = dir.join("optimizer.bpk");
        let optim = optim.load(&op).map_err(record_err(&op))?;
        Ok((model, optim, state))
    }

    fn save_best(&self, model: &Llama) -> Result<()> {
        let tmp = self.out.join("best.tmp");
        write_dir_swapped(&tmp, &self.out.join("best"), |tmp| {
            save_hf(model, &self.config, tmp)?;
            self.tokenizer.save(tmp.join("tokenizer.json"))
        })
    }

    /// The model for inference: off autodiff, adapters merged.
    fn inference(model: &Llama) -> Llama {
        merge_lora(model.valid())
    }

    /// Runs (or resumes) the training. `progress` is called after every optimizer step;
    /// returning [`ControlFlow::Break`] stops the run there without writing a checkpoint (as if
    /// the process had been killed).
    ///
    /// # Errors
    /// [`Error::Diverged`] on a non-finite loss, [`Error::Io`] or [`Error::Checkpoint`] writing
    /// the output, [`Error::InvalidOption`] resuming a checkpoint of another run.
    pub fn run(
        self,
        mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<FinetuneReport> {
        let started = Instant::now();
        std::fs::create_dir_all(&self.out).map_err(io_err(&self.out))?;
        if self.overwrite && !self.resume {
            clear_run_dir(&self.out, RUN_FILES)?;
        }
        recover_swap(&self.checkpoint_dir())?;
        recover_swap(&self.out.join("best"))?;
        let opts = self.options.clone();
        let steps_per_epoch = self.steps_per_epoch();
        let total = steps_per_epoch * opts.epochs;
        let warmup = (opts.warmup_ratio * total as f64).ceil() as usize;
        let schedule = LinearSchedule::new(opts.learning_rate, warmup, total);
        // Numbered parameters: a resumed run keys the optimizer state like this one.
        let mut model = number_params(self.model.clone());
        let mut optim = self.optimizer();
        let resumed = match (self.resume, self.find_checkpoint()) {
            (true, Some(dir)) => Some(self.load_checkpoint(&dir, model.clone(), optim.clone())?),
            _ => None,
        };
        let mut state = match resumed {
            Some((m, o, s)) => {
                model = m;
                optim = o;
                s
            }
            None => {
                let initial = if self.valid.is_empty() {
                    None
                } else {
                    let m = Self::inference(&model);
                    let loss = mean_loss(&m, &self.valid, opts.batch_size)?;
                    Some(loss)
                };
                State {
                    options: opts.clone(),
                    n_train: self.train.len(),
                    step: 0,
                    epoch: 0,
                    step_in_epoch: 0,
                    tokens: 0,
                    initial_valid_loss: initial,
                    best_valid_loss: None,
                    curve: Vec::new(),
                    evals_since_best: 0,
                }
            }
        };
        let mut best_model: Option<Llama> = None;
        let mut last_checkpoint = self.find_checkpoint();
        let (session_tokens_start, session_start) = (state.tokens, Instant::now());
        let session_step_start = state.step;
        let mut stopped = false;
        let patience_hit = |s: &State| opts.patience.is_some_and(|p| s.evals_since_best >= p);
        // A resumed run that had stopped early stays stopped.
        let mut stopped_early = patience_hit(&state);
        'epochs: while state.epoch < opts.epochs && !stopped_early {
            let mut order: Vec<usize> = (0..self.train.len()).collect();
            SeededRng::with_stream(opts.seed, state.epoch as u64).shuffle(&mut order);
            let batches: Vec<&[usize]> = order.chunks(opts.batch_size).collect();
            while state.step_in_epoch < steps_per_epoch {
                let first = state.step_in_epoch * opts.grad_accum;
                let micro = &batches[first..(first + opts.grad_accum).min(batches.len())];
                let step_examples: Vec<Vec<&Example>> = micro
                    .iter()
                    .map(|b| b.iter().map(|&i| &self.train[i]).collect())
                    .collect();
                let loss_tokens: f64 = step_examples
                    .iter()
                    .flatten()
                    .map(|e| e.mask.iter().map(|m| f64::from(*m)).sum::<f64>())
                    .sum();
                let mut accum = GradientsAccumulator::<Llama>::new();
                let (mut step_loss, mut step_tokens) = (0.0, 0u64);
                for exs in &step_examples {
                    let (ids, mask, n_tok, _) = batch(exs, &self.device);
                    let loss = loss_sum(&model, ids, mask).div_scalar(loss_tokens);
                    step_loss += scalar(loss.clone())?;
                    step_tokens += n_tok;
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    accum.accumulate(&model, grads);
                }
                if !step_loss.is_finite() {
                    return Err(Error::Diverged {
                        step: state.step + 1,
                        epoch: state.epoch,
                        loss: step_loss,
                        checkpoint: last_checkpoint,
                    });
                }
                let mut grads = accum.grads();
                if let Some(max) = opts.max_grad_norm {
                    clip_global_norm(&model, &mut grads, max)?;
                }
                let lr = schedule.lr(state.step);
                model = optim.step(lr, model, grads);
                state.step += 1;
                state.step_in_epoch += 1;
                state.tokens += step_tokens;
                let end_of_epoch = state.step_in_epoch == steps_per_epoch;
                let evaluate = !self.valid.is_empty()
                    && (end_of_epoch || opts.eval_every.is_some_and(|n| state.step % n == 0));
                let valid_loss = if evaluate {
                    let m = Self::inference(&model);
                    let v = mean_loss(&m, &self.valid, opts.batch_size)?;
                    if state.best_valid_loss.is_none_or(|b| v < b) {
                        state.best_valid_loss = Some(v);
                        state.evals_since_best = 0;
                        self.save_best(&m)?;
                        best_model = Some(m);
                    } else {
                        state.evals_since_best += 1;
                    }
                    Some(v)
                } else {
                    None
                };
                let row = CurveRow {
                    step: state.step,
                    epoch: state.epoch + 1,
                    tokens: state.tokens,
                    train_loss: step_loss,
                    valid_loss,
                    learning_rate: lr,
                };
                state.curve.push(row.clone());
                let p = Progress::new(
                    row,
                    total,
                    state.tokens - session_tokens_start,
                    state.step - session_step_start,
                    session_start.elapsed().as_secs_f64(),
                );
                if progress(&p).is_break() {
                    stopped = true;
                    break 'epochs;
                }
                if end_of_epoch {
                    state.epoch += 1;
                    state.step_in_epoch = 0;
                }
                stopped_early = patience_hit(&state);
                if end_of_epoch
                    || stopped_early
                    || opts.checkpoint_every.is_some_and(|n| state.step % n == 0)
                {
                    self.save_checkpoint(&model, &optim, &state)?;
                    last_checkpoint = Some(self.checkpoint_dir());
                }
                if stopped_early {
                    break 'epochs;
                }
                if end_of_epoch {
                    break;
                }
            }
        }
        let best_dir = self.out.join("best");
        let model = match best_model {
            Some(m) => m,
            None if self.valid.is_empty() && !stopped => {
                let m = Self::inference(&model);
                self.save_best(&m)?;
                m
            }
            None => {
                let m = Self::inference(&model);
                let device = m.embed.weight.val().device();
                match crate::checkpoint::hf::load_hf(&best_dir, &device) {
                    Ok((_, best)) => best,
                    Err(_) => m,
                }
            }
        };
        if !stopped {
            write_curve(&self.out.join("loss.csv"), &state.curve)?;
        }
        Ok(FinetuneReport {
            model,
            config: self.config,
            curve: state.curve,
            initial_valid_loss: state.initial_valid_loss,
            best_valid_loss: state.best_valid_loss,
            steps: state.step,
            wall: started.elapsed(),
            stopped,
            stopped_early,
            best_dir,
        })
    }
}
