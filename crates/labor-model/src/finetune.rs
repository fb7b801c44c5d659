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
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use labor_data::{Panel, SeededRng};
use labor_template::{Document, TemplateBuilder, TemplateKind};
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::error::{Error, Result};
use crate::hf::save_hf;
use crate::lora::{LoraOptions, apply_lora, merge_lora, seed_adapters};
use crate::model::Llama;
use crate::plan::{MemoryPlan, MemoryPlanBuilder, PlanMode};
use crate::score::Scorer;
use crate::tokenizer::TextTokenizer;
use crate::train::{
    check_run_dir, clear_run_dir, load_checkpoint_model, number_params, option_difference,
};

/// Which tokens the loss covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LossOn {
    /// Every token of the text (the paper's choice).
    #[default]
    All,
    /// Only the tokens of the targets' continuations (`" {title}\n"`).
    Titles,
}

/// Hyper-parameters of a fine-tuning run. Start from [`FinetuneOptions::default`] and set fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FinetuneOptions {
    /// Passes over the training documents (default 1).
    pub epochs: usize,
    /// Documents per micro-batch (default 8).
    pub batch_size: usize,
    /// Micro-batches per optimizer step (default 1).
    pub grad_accum: usize,
    /// Peak learning rate (default 5e-5).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay, not applied to norm weights (default 0.01).
    pub weight_decay: f64,
    /// Fraction of the scheduled steps spent warming up (default 0.05).
    pub warmup_ratio: f64,
    /// Clip the global gradient norm to this (default 1.0; `None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Seed of the shuffling (default 0).
    pub seed: u64,
    /// Tokens under the loss (default all).
    pub loss_on: LossOn,
    /// Also evaluate every this many optimizer steps (always at the end of each epoch).
    pub eval_every: Option<usize>,
    /// Also checkpoint every this many optimizer steps (always at the end of each epoch).
    pub checkpoint_every: Option<usize>,
    /// Truncate texts to this many tokens (default: the model's context).
    pub max_tokens: Option<usize>,
    /// Train low-rank adapters instead of every weight.
    pub lora: Option<LoraOptions>,
    /// Stop after this many validations in a row without a better validation loss (default
    /// `None`: run every scheduled step). With `eval_every`, this is early stopping with the
    /// best model kept in `best/`.
    #[serde(default)]
    pub patience: Option<usize>,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 8,
            grad_accum: 1,
            learning_rate: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.05,
            max_grad_norm: Some(1.0),
            seed: 0,
            loss_on: LossOn::All,
            eval_every: None,
            checkpoint_every: None,
            max_tokens: None,
            lora: None,
            patience: None,
        }
    }
}

/// Updates a fine-tuning run gets at least under [`FinetuneOptions::scaled_to`] (as many whole
/// epochs as that takes, at most [`SCALED_MAX_EPOCHS`]).
pub const SCALED_MIN_UPDATES: usize = 1000;

/// The most epochs [`FinetuneOptions::scaled_to`] schedules.
pub const SCALED_MAX_EPOCHS: usize = 20;

impl FinetuneOptions {
    /// A budget that scales with the training set: as many epochs as give at least
    /// [`SCALED_MIN_UPDATES`] optimizer steps (at least 1, at most [`SCALED_MAX_EPOCHS`]),
    /// about 20 validations over the run (`eval_every`), and early stopping after 4 of them
    /// without a better validation loss (`patience`; the best model is kept). A panel of 300
    /// resumes in batches of 8 gets 20 epochs, the quickstart's 2,822 get 3, 30,000 get 1.
    /// Uses this run's batch size and gradient accumulation, so set them first.
    #[must_use]
    pub fn scaled_to(mut self, train_docs: usize) -> Self {
        let per_step = (self.batch_size * self.grad_accum).max(1);
        let steps_per_epoch = train_docs.div_ceil(per_step).max(1);
        self.epochs = SCALED_MIN_UPDATES
            .div_ceil(steps_per_epoch)
            .clamp(1, SCALED_MAX_EPOCHS);
        self.eval_every = Some((steps_per_epoch * self.epochs).div_ceil(20).max(1));
        self.patience = Some(4);
        self
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, detail: String| Err(Error::InvalidOption { name, detail });
        if self.epochs == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad(
                "epochs/batch_size/grad_accum",
                "must all be positive".into(),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return bad("learning_rate", format!("{}", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(
                "warmup_ratio",
                format!("{} is not in [0, 1)", self.warmup_ratio),
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", format!("{}", self.weight_decay));
        }
        if self.max_grad_norm.is_some_and(|n| n.is_nan() || n <= 0.0) {
            return bad("max_grad_norm", "must be positive".into());
        }
        if self.eval_every == Some(0)
            || self.checkpoint_every == Some(0)
            || self.patience == Some(0)
        {
            return bad(
                "eval_every/checkpoint_every/patience",
                "must be positive".into(),
            );
        }
        if let Some(l) = &self.lora {
            l.validate()?;
        }
        Ok(())
    }
}

/// Linear warmup from 0 to the peak, then linear decay to 0 at the last scheduled step, as
/// transformers' `get_linear_schedule_with_warmup`: `lr(s) = peak · s / warmup` for
/// `s < warmup`, else `peak · max(0, (total - s) / (total - warmup))`, where `s` counts the
/// optimizer updates made before this one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    peak: f64,
    warmup: usize,
    total: usize,
}

impl LinearSchedule {
    /// A schedule over `total` optimizer steps, `warmup` of them warming up.
    pub fn new(peak: f64, warmup: usize, total: usize) -> Self {
        Self {
            peak,
            warmup,
            total,
        }
    }

    /// The learning rate of update `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            self.peak * step as f64 / self.warmup as f64
        } else if self.total <= self.warmup {
            self.peak
        } else {
            self.peak
                * (self.total.saturating_sub(step) as f64 / (self.total - self.warmup) as f64)
                    .max(0.0)
        }
    }
}

/// One row of the loss curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// Optimizer steps done (1-based).
    pub step: usize,
    /// Epoch of the step (0-based).
    pub epoch: usize,
    /// Non-padding input tokens processed so far.
    pub tokens: u64,
    /// Mean loss per loss token of the step (nats).
    pub train_loss: f64,
    /// Mean validation loss per loss token, when evaluated after this step.
    pub valid_loss: Option<f64>,
    /// Learning rate of the step.
    pub learning_rate: f64,
}

/// What the progress callback sees after each optimizer step.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The row just added to the loss curve.
    pub row: CurveRow,
    /// Steps scheduled in the whole run.
    pub total_steps: usize,
    /// Input tokens per second since this process started (or resumed) the run.
    pub tokens_per_sec: f64,
    /// Estimated time to the end of the run.
    pub eta: Duration,
}

/// The result of [`Finetune::run`].
#[derive(Debug)]
pub struct FinetuneReport {
    /// The model with the best validation loss (the last one without validation documents),
    /// adapters merged, on the inference device.
    pub model: Llama,
    /// Its configuration.
    pub config: LlamaConfig,
    /// The loss curve.
    pub curve: Vec<CurveRow>,
    /// Validation loss before training (`None` without validation documents).
    pub initial_valid_loss: Option<f64>,
    /// Best validation loss.
    pub best_valid_loss: Option<f64>,
    /// Optimizer steps done.
    pub steps: usize,
    /// Wall time of this call.
    pub wall: Duration,
    /// `true` when the progress callback stopped the run early.
    pub stopped: bool,
    /// `true` when the validation loss stopped improving for `patience` validations.
    pub stopped_early: bool,
    /// The Hugging Face directory of the best model.
    pub best_dir: PathBuf,
}

/// A tokenized text with the loss mask: `mask[i]` weights the prediction of `ids[i]` from
/// `ids[..i]` (`mask[0]` is 0).
#[derive(Debug, Clone)]
struct Example {
    ids: Vec<u32>,
    mask: Vec<f32>,
}

fn tokenize(
    docs: &[Document],
    tokenizer: &TextTokenizer,
    loss_on: LossOn,
    max_tokens: usize,
) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let enc = tokenizer.encode(&doc.text)?;
        let n = enc.ids.len().min(max_tokens);
        let mut mask: Vec<f32> = (0..n)
            .map(|i| {
                let (s, e) = enc.offsets[i];
                let on = match loss_on {
                    LossOn::All => i > 0,
                    LossOn::Titles => {
                        i > 0
                            && e > s
                            && doc
                                .targets
                                .iter()
                                .any(|t| s >= t.continuation_start && e <= t.continuation_end)
                    }
                };
                if on { 1.0 } else { 0.0 }
            })
            .collect();
        if n >= 2 && mask.iter().any(|m| *m > 0.0) {
            mask.truncate(n);
            out.push(Example {
                ids: enc.ids[..n].to_vec(),
                mask,
            });
        }
    }
    Ok(out)
}

/// Right-padded ids `[b, len]`, loss mask `[b, len - 1]` (for the targets `ids[:, 1..]`), the
/// number of non-padding tokens and of loss tokens.
fn batch(examples: &[&Example], device: &Device) -> (Tensor<2, Int>, Tensor<2>, u64, f64) {
    let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(2);
    let b = examples.len();
    let mut ids = vec![0i32; b * len];
    let mut mask = vec![0f32; b * (len - 1)];
    let (mut tokens, mut loss_tokens) = (0u64, 0f64);
    for (r, e) in examples.iter().enumerate() {
        for (j, id) in e.ids.iter().enumerate() {
            ids[r * len + j] = *id as i32;
        }
        for j in 1..e.ids.len() {
            mask[r * (len - 1) + j - 1] = e.mask[j];
            loss_tokens += f64::from(e.mask[j]);
        }
        tokens += e.ids.len() as u64;
    }
    (
        Tensor::<2, Int>::from_data(TensorData::new(ids, [b, len]), device),
        Tensor::<2>::from_data(TensorData::new(mask, [b, len - 1]), device),
        tokens,
        loss_tokens,
    )
}

/// `Σ mask · (-log P(next token))` over a batch, as a one-element tensor.
fn loss_sum(model: &Llama, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<1> {
    // Under autodiff this is log-softmax and gather; for validation on the CPU it takes the
    // kernels that never write the log-softmax matrix.
    (model.next_token_log_probs(ids) * mask).sum().neg()
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map(f64::from)
        .ok_or_else(|| Error::Checkpoint {
            path: PathBuf::new(),
            detail: "cannot read a scalar back from the device".into(),
        })
}

/// Mean loss per loss token of `examples` under `model` (no gradients).
fn mean_loss(model: &Llama, examples: &[Example], batch_size: usize) -> Result<f64> {
    let device = model.embed.weight.val().device();
    let (mut total, mut count) = (0.0, 0.0);
    for chunk in examples.chunks(batch_size) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let (ids, mask, _, n) = batch(&refs, &device);
        total += scalar(loss_sum(model, ids, mask))?;
        count += n;
    }
    Ok(if count > 0.0 { total / count } else { f64::NAN })
}

/// Global L2 norm of the gradients of `module`'s parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    /// The sum over the gradients the CPU kernels read directly.
    host_total: f64,
    /// The sum over the others, on their device.
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            if let Some(s) = crate::cpu::sum_of_squares(&g) {
                self.host_total += s;
                return;
            }
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Scales the gradients so that their global norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
fn clip_global_norm(model: &Llama, grads: &mut GradientsParams, max_norm: f64) -> Result<f64> {
    let mut v = SquaredNorm {
        grads,
        host_total: 0.0,
        total: None,
    };
    model.visit(&mut v);
    let norm = match v.total {
        Some(t) => (scalar(t)? + v.host_total).sqrt(),
        None => v.host_total.sqrt(),
    };
    if norm.is_finite() && norm > max_norm {
        model.visit(&mut ScaleGrads {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
    Ok(norm)
}

/// Renders every worker of `panel` with the paper's fine-tuning resume template.
///
/// # Errors
/// [`Error::Template`].
pub fn render_resumes(panel: &Panel) -> Result<Vec<Document>> {
    let template = TemplateBuilder::new(panel.taxonomy().clone(), TemplateKind::Resume).build()?;
    let mut docs = Vec::with_capacity(panel.len());
    for w in panel.workers() {
        docs.extend(template.render(w)?.documents().iter().cloned());
    }
    Ok(docs)
}

/// Perplexity of the job titles of `docs` under `model`: `exp(-Σ log P(title | prompt) / n)`
/// over the `n` targets, each scored exactly by the [`Scorer`]. Returns the perplexity and `n`.
///
/// # Errors
/// As [`Scorer::score_document`].
pub fn title_perplexity(
    model: &Llama,
    tokenizer: &TextTokenizer,
    docs: &[Document],
) -> Result<(f64, usize)> {
    let device = model.embed.weight.val().device();
    let scorer = Scorer::new(model, tokenizer, device);
    let (mut sum, mut n) = (0.0, 0usize);
    for doc in docs {
        for lp in scorer.score_document(doc)? {
            sum += lp;
            n += 1;
        }
    }
    Ok(((-sum / n.max(1) as f64).exp(), n))
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn ck_err(path: &Path, e: impl std::fmt::Debug) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        detail: format!("{e:?}"),
    }
}

/// Replaces directory `dst` by `tmp` (rename `dst` aside, rename `tmp` in, remove the old one).
pub(crate) fn swap_dir(tmp: &Path, dst: &Path) -> Result<()> {
    let old = dst.with_extension("old");
    if dst.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        std::fs::rename(dst, &old).map_err(io_err(dst))?;
    }
    std::fs::rename(tmp, dst).map_err(io_err(dst))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Writes a directory of files as one: `write` fills a fresh `tmp`, which is then swapped in
/// for `dst` ([`swap_dir`]); when `write` fails (a full disk), `tmp` is removed and `dst` left
/// as it was.
pub(crate) fn write_dir_swapped(
    tmp: &Path,
    dst: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    fresh_dir(tmp)?;
    if let Err(e) = write(tmp) {
        let _ = std::fs::remove_dir_all(tmp);
        return Err(e);
    }
    swap_dir(tmp, dst)
}

pub(crate) fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Writes the loss curve CSV (temporary file, then rename).
fn write_curve(path: &Path, rows: &[CurveRow]) -> Result<()> {
    let mut s = String::from("step,epoch,tokens,train_loss,valid_loss,learning_rate\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.step,
            r.epoch,
            r.tokens,
            r.train_loss,
            r.valid_loss.map(|v| v.to_string()).unwrap_or_default(),
            r.learning_rate
        ));
    }
    crate::train::write_atomic(path, s.as_bytes())
}

impl Finetune {
    /// Directory of the last checkpoint.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.out.join("checkpoint")
    }

    /// The memory this run needs (see [`MemoryPlanBuilder`]): this model and mode in float32,
    /// one batch of the longest training documents (the padded length of the worst batch).
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
            model.clone().save_file(&mp).map_err(|e| ck_err(&mp, e))?;
            let op = tmp.join("optimizer.bpk");
            optim.save(&op).map_err(|e| ck_err(&op, e))?;
            let sp = tmp.join("state.json");
            let text = serde_json::to_string_pretty(state).map_err(|e| ck_err(&sp, e))?;
            std::fs::write(&sp, text).map_err(io_err(&sp))
        })?;
        write_curve(&self.out.join("loss.csv"), &state.curve)
    }

    /// The checkpoint to resume from: `checkpoint/`, or `checkpoint.old/` when a crash fell
    /// between the two renames of [`swap_dir`].
    fn find_checkpoint(&self) -> Option<PathBuf> {
        let last = self.checkpoint_dir();
        let old = last.with_extension("old");
        [last, old]
            .into_iter()
            .find(|d| d.join("state.json").is_file())
    }

    fn load_checkpoint(
        &self,
        dir: &Path,
        model: Llama,
        optim: ModuleOptimizer,
    ) -> Result<(Llama, ModuleOptimizer, State)> {
        let sp = dir.join("state.json");
        let text = std::fs::read_to_string(&sp).map_err(io_err(&sp))?;
        let state: State = serde_json::from_str(&text).map_err(|e| ck_err(&sp, e))?;
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
        let optim = optim.load(&op).map_err(|e| ck_err(&op, e))?;
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
                    epoch: state.epoch,
                    tokens: state.tokens,
                    train_loss: step_loss,
                    valid_loss,
                    learning_rate: lr,
                };
                state.curve.push(row.clone());
                let secs = session_start.elapsed().as_secs_f64().max(1e-9);
                let done = (state.step - session_step_start) as f64;
                let p = Progress {
                    row,
                    total_steps: total,
                    tokens_per_sec: (state.tokens - session_tokens_start) as f64 / secs,
                    eta: Duration::from_secs_f64(
                        secs / done * total.saturating_sub(state.step) as f64,
                    ),
                };
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
                match crate::hf::load_hf(&best_dir, &device) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LlamaConfig;

    /// The gradients of a random model under a next-token loss.
    fn grads_of(model: &Llama) -> GradientsParams {
        let device = model.embed.weight.val().device();
        let ids: Vec<i32> = (0..2 * 40).map(|i| (i * 37 + 5) % 97).collect();
        let ids = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([2, 40]);
        let mask = Tensor::<2>::ones([2, 39], &device);
        GradientsParams::from_grads(loss_sum(model, ids, mask).backward(), model)
    }

    /// The global norm of `grads`, summed in f64 from their values.
    struct Reference<'a>(&'a GradientsParams, f64);

    impl ModuleVisitor for Reference<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                let v = g
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("f32");
                self.1 += v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
            }
        }
    }

    fn reference_norm(model: &Llama, grads: &GradientsParams) -> f64 {
        let mut r = Reference(grads, 0.0);
        model.visit(&mut r);
        r.1.sqrt()
    }

    #[test]
    fn clipping_measures_the_global_norm_and_scales_to_the_limit() {
        let device = Device::default().autodiff();
        device.seed(3);
        let model = LlamaConfig::new(32, 2, 4, 2, 64, 97).init(&device);
        for kernels in [true, false] {
            let mut grads = grads_of(&model);
            let want = reference_norm(&model, &grads);
            assert!(want > 0.0);
            let got = if kernels {
                clip_global_norm(&model, &mut grads, want / 2.0)
            } else {
                crate::cpu::without(|| clip_global_norm(&model, &mut grads, want / 2.0))
            }
            .expect("norm");
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "norm {got} vs {want} (kernels {kernels})"
            );
            let after = reference_norm(&model, &grads);
            assert!(
                (after - want / 2.0).abs() <= 1e-5 * want,
                "clipped to {after}, not {} (kernels {kernels})",
                want / 2.0
            );
        }
    }
}
