//! A fine-tuning job from panels to a trained model: the training panels mixed
//! ([`MixtureBuilder`]), rendered as resumes, sampled, the hyper-parameters whose defaults depend
//! on the base model and on the data resolved, and the run itself, from a pretrained base
//! ([`FinetuneBuilder`]) or from scratch ([`ScratchBuilder`]). This is `labor finetune`.
//!
//! The defaults: batches of 8 documents (2 from scratch); a peak learning rate of 5e-5 for full
//! fine-tuning, 1e-4 with LoRA and 3e-3 from scratch; without a number of epochs, a budget
//! scaled to the training set ([`FinetuneOptions::scaled_to`]: at least
//! [`SCALED_MIN_UPDATES`](crate::SCALED_MIN_UPDATES) updates, about 20 validations, early
//! stopping after 4 without a better loss).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use burn::module::Module;
use burn::tensor::Device;
use labor_data::{MixtureBuilder, Panel};
use labor_template::{Document, TemplateBuilder, TemplateKind};

use crate::error::{Error, Result};
use crate::finetune::scratch::{Scratch, ScratchBuilder};
use crate::finetune::{
    Finetune, FinetuneBuilder, FinetuneOptions, FinetuneReport, LossOn, load_base, sample,
    title_perplexity,
};
use crate::llm::lora::LoraOptions;
use crate::llm::plan::MemoryPlan;
use crate::rundir::Progress;
use crate::tokenize::tokenizer::TextTokenizer;

/// The model a [`FinetuneJob`] starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseModel {
    /// A pretrained checkpoint: a Hugging Face directory or a GGUF file (see [`load_base`]),
    /// with its own tokenizer unless `tokenizer` names a `tokenizer.json`.
    Pretrained {
        /// The checkpoint.
        path: PathBuf,
        /// A tokenizer file replacing the checkpoint's.
        tokenizer: Option<PathBuf>,
    },
    /// A BPE tokenizer and the small Llama trained from scratch ([`ScratchBuilder`]).
    Scratch {
        /// Vocabulary size of the trained tokenizer.
        vocab_size: usize,
        /// Make every title of the training panel's taxonomy one token of the vocabulary.
        title_tokens: bool,
    },
}

impl BaseModel {
    /// Whether this is the small model from scratch.
    pub fn is_scratch(&self) -> bool {
        matches!(self, Self::Scratch { .. })
    }
}

/// Builds a [`FinetuneJob`]. The defaults: batches of 8 documents (2 from scratch); a peak
/// learning rate of 5e-5 for full fine-tuning, 1e-4 with LoRA and 3e-3 from scratch; without a
/// number of epochs, a budget scaled to the training set ([`FinetuneOptions::scaled_to`]).
#[derive(Debug)]
pub struct FinetuneJobBuilder {
    base: BaseModel,
    train: Vec<Panel>,
    valid: Panel,
    out: PathBuf,
    mix_fraction: f64,
    extra: Vec<Panel>,
    extra_fraction: f64,
    numbered_seed: Option<u64>,
    epochs: Option<usize>,
    learning_rate: Option<f64>,
    batch_size: Option<usize>,
    eval_every: Option<usize>,
    patience: Option<usize>,
    options: FinetuneOptions,
    max_train_docs: Option<usize>,
    max_valid_docs: usize,
    resume: bool,
    overwrite: bool,
    device: Device,
    activation_checkpointing: bool,
}

impl FinetuneJobBuilder {
    /// Trains `base` on the resumes of the union of the `train` panels, validates on `valid`,
    /// and writes the run under `out` (see [`Finetune`]).
    pub fn new(base: BaseModel, train: Vec<Panel>, valid: Panel, out: impl Into<PathBuf>) -> Self {
        Self {
            base,
            train,
            valid,
            out: out.into(),
            mix_fraction: 1.0,
            extra: Vec::new(),
            extra_fraction: 0.0,
            numbered_seed: None,
            epochs: None,
            learning_rate: None,
            batch_size: None,
            eval_every: None,
            patience: None,
            options: FinetuneOptions::default(),
            max_train_docs: None,
            max_valid_docs: 200,
            resume: false,
            overwrite: false,
            device: Device::default(),
            activation_checkpointing: false,
        }
    }

    /// Keep this fraction of the union of the training panels' workers, and add workers drawn
    /// from `extra` as `extra_fraction` of those kept (see [`MixtureBuilder`]).
    #[must_use]
    pub fn with_mixture(mut self, fraction: f64, extra: Vec<Panel>, extra_fraction: f64) -> Self {
        self.mix_fraction = fraction;
        self.extra = extra;
        self.extra_fraction = extra_fraction;
        self
    }

    /// Render the resumes with numbered titles (`job_NNN`, a permutation drawn with `seed`).
    #[must_use]
    pub fn with_numbered_titles(mut self, seed: u64) -> Self {
        self.numbered_seed = Some(seed);
        self
    }

    /// Passes over the training documents (default: scaled to the training set).
    #[must_use]
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = Some(epochs);
        self
    }

    /// Peak learning rate (default 5e-5, 1e-4 with LoRA, 3e-3 from scratch).
    #[must_use]
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        self.learning_rate = Some(lr);
        self
    }

    /// Documents per micro-batch (default 8; 2 from scratch).
    #[must_use]
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Micro-batches per optimizer step (default 1).
    #[must_use]
    pub fn with_grad_accum(mut self, n: usize) -> Self {
        self.options.grad_accum = n;
        self
    }

    /// Warmup as a fraction of the scheduled steps (default 0.05).
    #[must_use]
    pub fn with_warmup_ratio(mut self, ratio: f64) -> Self {
        self.options.warmup_ratio = ratio;
        self
    }

    /// AdamW weight decay (default 0.01).
    #[must_use]
    pub fn with_weight_decay(mut self, decay: f64) -> Self {
        self.options.weight_decay = decay;
        self
    }

    /// Clip the global gradient norm at this value (default 1; `None`: no clipping).
    #[must_use]
    pub fn with_max_grad_norm(mut self, norm: Option<f64>) -> Self {
        self.options.max_grad_norm = norm;
        self
    }

    /// The tokens the loss is taken on (default [`LossOn::All`], the paper's).
    #[must_use]
    pub fn with_loss_on(mut self, on: LossOn) -> Self {
        self.options.loss_on = on;
        self
    }

    /// Also validate every `n` optimizer steps (default: about 20 validations with the scaled
    /// budget, none between epochs with fixed epochs).
    #[must_use]
    pub fn with_eval_every(mut self, n: usize) -> Self {
        self.eval_every = Some(n);
        self
    }

    /// Stop after `n` validations in a row without a better validation loss (default 4 with
    /// the scaled budget, none with fixed epochs).
    #[must_use]
    pub fn with_patience(mut self, n: usize) -> Self {
        self.patience = Some(n);
        self
    }

    /// Also checkpoint every `n` optimizer steps (default: at the end of each epoch).
    #[must_use]
    pub fn with_checkpoint_every(mut self, n: usize) -> Self {
        self.options.checkpoint_every = Some(n);
        self
    }

    /// Truncate texts to this many tokens.
    #[must_use]
    pub fn with_max_tokens(mut self, n: usize) -> Self {
        self.options.max_tokens = Some(n);
        self
    }

    /// Train LoRA adapters instead of every weight.
    #[must_use]
    pub fn with_lora(mut self, lora: LoraOptions) -> Self {
        self.options.lora = Some(lora);
        self
    }

    /// Train on a seeded sample of at most `n` documents.
    #[must_use]
    pub fn with_max_train_docs(mut self, n: usize) -> Self {
        self.max_train_docs = Some(n);
        self
    }

    /// Validate (loss and title perplexity) on a seeded sample of at most `n` documents
    /// (default 200).
    #[must_use]
    pub fn with_max_valid_docs(mut self, n: usize) -> Self {
        self.max_valid_docs = n;
        self
    }

    /// Seed of the mixture, the samples, initialisation and shuffling (default 0).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }

    /// Continue from the checkpoint in the output directory.
    #[must_use]
    pub fn with_resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// Let a new run replace the run already in the output directory.
    #[must_use]
    pub fn with_overwrite(mut self, on: bool) -> Self {
        self.overwrite = on;
        self
    }

    /// Device to train on (default [`Device::default`]); autodiff is enabled on it.
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Recompute activations in the backward pass instead of keeping them (burn's balanced
    /// gradient checkpointing: memory-bound operations are recomputed, compute-bound ones
    /// kept), to fit longer texts or larger batches in memory. The models then run on burn's
    /// own operations rather than this crate's CPU kernels (see `docs/scale.md` for the memory
    /// and time measured).
    #[must_use]
    pub fn with_activation_checkpointing(mut self, on: bool) -> Self {
        self.activation_checkpointing = on;
        self
    }

    /// Mixes and renders the panels, resolves the defaults, loads a pretrained base and
    /// measures its validation title perplexity.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for options that contradict each other or an output that is
    /// the base checkpoint; as [`MixtureBuilder::build`], [`load_base`],
    /// [`FinetuneBuilder::build`] and [`ScratchBuilder::build`].
    pub fn build(self) -> Result<FinetuneJob> {
        let seed = self.options.seed;
        let numbered = self.numbered_seed;
        match &self.base {
            BaseModel::Scratch {
                title_tokens: true, ..
            } if numbered.is_some() => {
                return Err(invalid(
                    "title-tokens makes English titles whole tokens; it does not go with \
                     numbered titles",
                ));
            }
            BaseModel::Pretrained { path, .. } => {
                labor_data::atomic::check_output(&self.out, [path.as_path()])?;
            }
            BaseModel::Scratch { .. } => {}
        }
        if self.extra_fraction > 0.0 && self.extra.is_empty() {
            return Err(invalid("an extra fraction needs at least one extra panel"));
        }
        let panel = MixtureBuilder::new(self.train)
            .with_fraction(self.mix_fraction)
            .with_extra(self.extra, self.extra_fraction)
            .with_seed(seed)
            .build()?;
        let mut template = TemplateBuilder::new(panel.taxonomy().clone(), TemplateKind::Resume);
        if let Some(s) = numbered {
            template = template.with_numbered_titles(s);
        }
        let template = template.build()?;
        let train_docs = template.render_panel(&panel)?;
        let valid_docs = sample(
            template.render_panel(&self.valid)?,
            self.max_valid_docs,
            seed,
            7,
        );
        let (n_workers, n_docs) = (panel.len(), train_docs.len());
        let scratch = self.base.is_scratch();
        // Documents actually trained on (a sample of them with a cap).
        let n_train = self.max_train_docs.map_or(n_docs, |m| m.min(n_docs));
        let mut o = self.options;
        o.batch_size = self.batch_size.unwrap_or(if scratch { 2 } else { 8 });
        let scaled = self.epochs.is_none();
        match self.epochs {
            Some(e) => o.epochs = e,
            None => o = o.scaled_to(n_train),
        }
        o.learning_rate = self
            .learning_rate
            .unwrap_or(match (scratch, o.lora.is_some()) {
                (true, _) => 3e-3,
                (false, true) => 1e-4,
                (false, false) => 5e-5,
            });
        o.eval_every = self.eval_every.or(o.eval_every);
        o.patience = self.patience.or(o.patience);
        let summary = JobSummary {
            workers: n_workers,
            documents: n_docs,
            train_docs: n_train,
            valid_docs: valid_docs.len(),
            options: o.clone(),
            scaled,
            checkpointing_without_cpu_kernels: self.activation_checkpointing
                && crate::cpu_kernels()
                && labor_kernels::on_cpu(&self.device),
        };
        let device = if self.activation_checkpointing {
            self.device.autodiff().gradient_checkpointing()
        } else {
            self.device.autodiff()
        };
        let run = match self.base {
            BaseModel::Scratch {
                vocab_size,
                title_tokens,
            } => {
                let titles: Vec<String> = if title_tokens {
                    panel
                        .taxonomy()
                        .outcomes()
                        .map(|(_, o)| format!(" {}", o.title))
                        .collect()
                } else {
                    Vec::new()
                };
                let mut b = ScratchBuilder::new(train_docs, valid_docs, &self.out)
                    .with_whole_tokens(titles)
                    .with_vocab_size(vocab_size)
                    .with_options(o)
                    .with_seed(seed)
                    .with_max_valid_docs(self.max_valid_docs)
                    .with_resume(self.resume)
                    .with_overwrite(self.overwrite)
                    .with_device(device);
                if let Some(n) = self.max_train_docs {
                    b = b.with_max_train_docs(n);
                }
                Run::Scratch(Box::new(b.build()?))
            }
            BaseModel::Pretrained { path, tokenizer } => {
                let (config, model, tok) = load_base(&path, tokenizer.as_deref(), &device)?;
                let train_docs = match self.max_train_docs {
                    Some(n) => sample(train_docs, n, seed.wrapping_add(1), 7),
                    None => train_docs,
                };
                let before = title_perplexity(&model.valid(), &tok, &valid_docs)?;
                let finetune = FinetuneBuilder::new(model, config, tok.clone(), &self.out)
                    .with_train(train_docs)
                    .with_valid(valid_docs.clone())
                    .with_options(o)
                    .with_resume(self.resume)
                    .with_overwrite(self.overwrite)
                    .build()?;
                Run::Pretrained(Box::new(PretrainedRun {
                    finetune,
                    tokenizer: tok,
                    valid_docs,
                    before,
                }))
            }
        };
        Ok(FinetuneJob { summary, run })
    }
}

fn invalid(detail: &str) -> Error {
    Error::InvalidOption {
        name: "finetune",
        detail: detail.into(),
    }
}

/// What a [`FinetuneJob`] will train on and how.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// Workers of the training mixture.
    pub workers: usize,
    /// Their resumes.
    pub documents: usize,
    /// Resumes trained on (a sample with [`FinetuneJobBuilder::with_max_train_docs`]).
    pub train_docs: usize,
    /// Validation resumes.
    pub valid_docs: usize,
    /// The hyper-parameters, defaults resolved.
    pub options: FinetuneOptions,
    /// Whether the epochs were scaled to the training set (no number of epochs was given).
    pub scaled: bool,
    /// Whether activation checkpointing turns labor's CPU kernels off (a run on the CPU with
    /// checkpointing): burn's operations then need more memory, not less (docs/scale.md).
    pub checkpointing_without_cpu_kernels: bool,
}

/// Two lines: the data (`training on N workers (M documents), validating on V`) and the
/// schedule (epochs, updates, validations, early stopping); a third when activation
/// checkpointing turns the CPU kernels off.
impl std::fmt::Display for JobSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "training on {} workers ({} documents), validating on {}",
            self.workers, self.documents, self.valid_docs
        )?;
        write!(
            f,
            "schedule: {} epoch{} of {} updates",
            o.epochs,
            if o.epochs == 1 { "" } else { "s" },
            self.updates_per_epoch()
        )?;
        if self.scaled {
            f.write_str(" (scaled to the training set; a number of epochs fixes it)")?;
        }
        if let Some(e) = o.eval_every {
            write!(f, ", validation every {e} updates")?;
        }
        if let Some(p) = o.patience {
            write!(
                f,
                ", early stopping after {p} validations without improvement"
            )?;
        }
        if self.checkpointing_without_cpu_kernels {
            write!(
                f,
                "\nnote: with activation checkpointing the model runs on burn's operations \
                 instead of labor's CPU kernels, which on the CPU need more memory, not less \
                 (docs/scale.md)"
            )?;
        }
        Ok(())
    }
}

impl JobSummary {
    /// Optimizer steps per epoch.
    pub fn updates_per_epoch(&self) -> usize {
        let o = &self.options;
        self.train_docs
            .div_ceil(o.batch_size.max(1) * o.grad_accum.max(1))
    }
}

#[derive(Debug)]
enum Run {
    Scratch(Box<Scratch>),
    Pretrained(Box<PretrainedRun>),
}

/// A pretrained base with what is measured before and after its run.
#[derive(Debug)]
struct PretrainedRun {
    finetune: Finetune,
    tokenizer: TextTokenizer,
    valid_docs: Vec<Document>,
    /// Validation title perplexity before training, and the titles it is taken over.
    before: (f64, usize),
}

/// A prepared fine-tuning job ([`FinetuneJobBuilder::build`]).
#[derive(Debug)]
pub struct FinetuneJob {
    summary: JobSummary,
    run: Run,
}

/// The result of [`FinetuneJob::run`].
#[derive(Debug)]
pub struct JobReport {
    /// The tokenizer of the model (trained, from scratch).
    pub tokenizer: TextTokenizer,
    /// The training report (the best model is `report.model`, also in `report.best_dir`).
    pub report: FinetuneReport,
    /// Title perplexity of the validation documents before training.
    pub title_ppl_before: f64,
    /// Title perplexity of the validation documents under the best model.
    pub title_ppl_after: f64,
    /// Titles the perplexities are taken over.
    pub n_titles: usize,
    /// Wall time of the job (from scratch: the tokenizer's training included).
    pub wall: Duration,
    /// The early-stopping patience the job ran with, in validations.
    pub patience: Option<usize>,
}

/// How the run ended (a line on early stopping first, if it stopped early), then the
/// validation title perplexity and loss before and after, the steps, the time and where the
/// best model is.
impl std::fmt::Display for JobReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        if r.stopped_early {
            writeln!(
                f,
                "stopped early at step {}: no better validation loss for {} validations",
                r.steps,
                self.patience.unwrap_or_default()
            )?;
        }
        write!(
            f,
            "validation title perplexity {:.3} -> {:.3} over {} titles; valid loss {:.4} -> {:.4}; \
             {} steps in {:.1}s; model in {}",
            self.title_ppl_before,
            self.title_ppl_after,
            self.n_titles,
            r.initial_valid_loss.unwrap_or(f64::NAN),
            r.best_valid_loss.unwrap_or(f64::NAN),
            r.steps,
            self.wall.as_secs_f64(),
            r.best_dir.display()
        )
    }
}

impl FinetuneJob {
    /// What the job trains on and how.
    pub fn summary(&self) -> &JobSummary {
        &self.summary
    }

    /// The pretrained base's validation title perplexity and the titles it is taken over
    /// (`None` from scratch, where the model does not exist before the run).
    pub fn title_ppl_before(&self) -> Option<(f64, usize)> {
        match &self.run {
            Run::Pretrained(p) => Some(p.before),
            Run::Scratch(_) => None,
        }
    }

    /// The memory the run needs (pretrained bases; see [`Finetune::memory_plan`]).
    ///
    /// # Errors
    /// As [`Finetune::memory_plan`].
    pub fn memory_plan(&self) -> Result<Option<MemoryPlan>> {
        match &self.run {
            Run::Pretrained(p) => p.finetune.memory_plan().map(Some),
            Run::Scratch(_) => Ok(None),
        }
    }

    /// Trains; `progress` as in [`Finetune::run`].
    ///
    /// # Errors
    /// As [`Finetune::run`] and [`Scratch::run`].
    pub fn run(self, progress: impl FnMut(&Progress) -> ControlFlow<()>) -> Result<JobReport> {
        let patience = self.summary.options.patience;
        match self.run {
            Run::Scratch(s) => {
                let r = s.run(progress)?;
                Ok(JobReport {
                    tokenizer: r.tokenizer,
                    report: r.report,
                    title_ppl_before: r.title_ppl_before,
                    title_ppl_after: r.title_ppl_after,
                    n_titles: r.n_titles,
                    wall: r.wall,
                    patience,
                })
            }
            Run::Pretrained(p) => {
                let PretrainedRun {
                    finetune,
                    tokenizer,
                    valid_docs,
                    before,
                } = *p;
                let report = finetune.run(progress)?;
                let (after, _) = title_perplexity(&report.model, &tokenizer, &valid_docs)?;
                Ok(JobReport {
                    tokenizer,
                    title_ppl_before: before.0,
                    title_ppl_after: after,
                    n_titles: before.1,
                    wall: report.wall,
                    report,
                    patience,
                })
            }
        }
    }
}
