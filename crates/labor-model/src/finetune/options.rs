//! The options of a fine-tuning run, its learning-rate schedule, and what it reports.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::lora::LoraOptions;
use crate::llm::model::Llama;
use crate::rundir::CurveRow;

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

impl std::str::FromStr for LossOn {
    type Err = Error;

    /// Parses `all` or `titles`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Self::All),
            "titles" => Ok(Self::Titles),
            other => Err(Error::InvalidOption {
                name: "loss on",
                detail: format!("`{other}` is neither `all` nor `titles`"),
            }),
        }
    }
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

/// The result of [`Finetune::run`](super::Finetune::run).
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
