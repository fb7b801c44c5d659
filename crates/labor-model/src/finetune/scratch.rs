//! The embedded default model: when no pretrained checkpoint is at hand (the quickstart), train
//! a byte-level BPE tokenizer on the training resumes and a small Llama from scratch on them,
//! in a few minutes on a laptop CPU, then score titles with it like any other model.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use labor_data::{Preset, SplitterBuilder, Split, SynthBuilder};
//! use labor_model::{ScratchBuilder, render_resumes};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let panel = SynthBuilder::new(Preset::Nlsy79).with_workers(2000).build()?.generate().panel;
//! let split = SplitterBuilder::new().build()?.split(&panel);
//! let train = render_resumes(split.get(Split::Train))?;
//! let valid = render_resumes(split.get(Split::Valid))?;
//! let out = ScratchBuilder::new(train, valid, "model-out")
//!     .with_max_train_docs(600)
//!     .build()?
//!     .run(|p| {
//!         eprintln!("step {}/{} loss {:.3}", p.row.step, p.total_steps, p.row.train_loss);
//!         ControlFlow::Continue(())
//!     })?;
//! println!("title perplexity {:.2} -> {:.2}", out.title_ppl_before, out.title_ppl_after);
//! # Ok(()) }
//! ```

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};
use labor_template::Document;

use crate::error::{Error, Result};
use crate::finetune::{
    FinetuneBuilder, FinetuneOptions, FinetuneReport, RUN_FILES, sample, title_perplexity,
};
use crate::llm::config::LlamaConfig;
use crate::llm::model::Llama;
use crate::rundir::{Progress, check_run_dir, clear_run_dir};
use crate::tokenize::bpe::BpeTrainerBuilder;
use crate::tokenize::tokenizer::TextTokenizer;

impl LlamaConfig {
    /// The embedded default: 2 blocks, width 128, 4 heads, SwiGLU width 384, tied embeddings,
    /// 1024-token context (a rendered NLSY79 resume is at most about 700 tokens of a BPE
    /// vocabulary of a thousand tokens, fewer with a larger one).
    pub fn career_tiny(vocab_size: usize) -> Self {
        Self::new(128, 2, 4, 4, 384, vocab_size)
            .with_max_seq_len(1024)
            .with_tie_embeddings(true)
    }
}

/// Re-draws every matrix (embeddings and projections) from `N(0, std²)`, as transformers
/// initialises a Llama (`initializer_range = 0.02`); burn's default `N(0, 1)` embeddings make
/// the tied output logits explode at the start of training.
struct NormalInit(f64);

impl ModuleMapper for NormalInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D != 2 {
            return param;
        }
        let std = self.0;
        param.map(|t| {
            let grad = t.is_require_grad();
            let fresh = Tensor::<D>::random(t.shape(), Distribution::Normal(0.0, std), &t.device());
            if grad { fresh.require_grad() } else { fresh }
        })
    }
}

impl LlamaConfig {
    /// A model with every matrix drawn from `N(0, 0.02²)` and unit norms (transformers'
    /// initialisation), for training from scratch; seed the device first for reproducible
    /// weights.
    pub fn init_for_training(&self, device: &Device) -> Llama {
        self.init(device).map(&mut NormalInit(0.02))
    }
}

/// Builds a [`Scratch`] run: the embedded default model, a BPE tokenizer and a
/// [`LlamaConfig::career_tiny`] model trained from scratch on the training resumes.
#[derive(Debug)]
pub struct ScratchBuilder {
    train: Vec<Document>,
    valid: Vec<Document>,
    out: PathBuf,
    vocab_size: usize,
    config: Option<LlamaConfig>,
    options: FinetuneOptions,
    max_train_docs: Option<usize>,
    max_valid_docs: usize,
    seed: u64,
    device: Device,
    resume: bool,
    overwrite: bool,
    whole_tokens: Vec<String>,
}

impl ScratchBuilder {
    /// Trains on `train`, validates on `valid`, writes under `out` (see
    /// [`Finetune`](crate::Finetune); the model ends up in `out/best`).
    pub fn new(train: Vec<Document>, valid: Vec<Document>, out: impl Into<PathBuf>) -> Self {
        let options = FinetuneOptions {
            epochs: 1,
            batch_size: 2,
            learning_rate: 3e-3,
            warmup_ratio: 0.05,
            weight_decay: 0.01,
            max_tokens: Some(1024),
            ..FinetuneOptions::default()
        };
        Self {
            train,
            valid,
            out: out.into(),
            vocab_size: 4096,
            config: None,
            options,
            max_train_docs: None,
            max_valid_docs: 200,
            seed: 0,
            device: Device::default(),
            resume: false,
            overwrite: false,
            whole_tokens: Vec::new(),
        }
    }

    /// Make each of these pieces one token of the trained vocabulary (see
    /// [`BpeTrainerBuilder::with_whole_tokens`]); `" {title}"` for every title of the taxonomy
    /// lets the model predict a title in one step.
    #[must_use]
    pub fn with_whole_tokens(mut self, pieces: impl IntoIterator<Item = String>) -> Self {
        self.whole_tokens.extend(pieces);
        self
    }

    /// Resume an interrupted run in the same output directory: its `tokenizer.json` is reused
    /// and training continues from its checkpoint.
    #[must_use]
    pub fn with_resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// Lets a new run replace the run already in the output directory (see
    /// [`FinetuneBuilder::with_overwrite`](crate::FinetuneBuilder::with_overwrite)).
    #[must_use]
    pub fn with_overwrite(mut self, on: bool) -> Self {
        self.overwrite = on;
        self
    }

    /// BPE vocabulary size (default 4096; a few hundred resumes yield about 2,200 merges before
    /// pairs seen once are all that is left).
    #[must_use]
    pub fn with_vocab_size(mut self, n: usize) -> Self {
        self.vocab_size = n;
        self
    }

    /// Model configuration (default [`LlamaConfig::career_tiny`]; its `vocab_size` is replaced
    /// by the trained tokenizer's).
    #[must_use]
    pub fn with_config(mut self, config: LlamaConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Training hyper-parameters (default: 1 epoch, batches of 2, peak learning rate 3e-3,
    /// 5% warmup, weight decay 0.01, clipping at 1).
    #[must_use]
    pub fn with_options(mut self, options: FinetuneOptions) -> Self {
        self.options = options;
        self
    }

    /// Passes over the training documents (default 1), keeping the other options.
    #[must_use]
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.options.epochs = epochs;
        self
    }

    /// Documents per optimizer step (default 2), keeping the other options.
    #[must_use]
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.options.batch_size = n;
        self
    }

    /// Train on a seeded sample of at most this many documents (to bound the time).
    #[must_use]
    pub fn with_max_train_docs(mut self, n: usize) -> Self {
        self.max_train_docs = Some(n);
        self
    }

    /// Measure title perplexity and validation loss on at most this many validation documents
    /// (default 200).
    #[must_use]
    pub fn with_max_valid_docs(mut self, n: usize) -> Self {
        self.max_valid_docs = n;
        self
    }

    /// Seed of the sampling, the initial weights and the shuffling (default 0).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Device to train on (default [`Device::default`]); autodiff is enabled on it.
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Samples the documents and checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] without training or validation documents, or as
    /// [`FinetuneOptions::validate`].
    pub fn build(mut self) -> Result<Scratch> {
        if self.train.is_empty() || self.valid.is_empty() {
            return Err(Error::InvalidOption {
                name: "documents",
                detail: "training and validation documents are both needed".into(),
            });
        }
        self.options.seed = self.seed;
        self.options.validate()?;
        let train = sample(
            self.train,
            self.max_train_docs.unwrap_or(usize::MAX),
            self.seed,
            100,
        );
        let valid = sample(self.valid, self.max_valid_docs, self.seed, 101);
        Ok(Scratch {
            train,
            valid,
            out: self.out,
            vocab_size: self.vocab_size,
            config: self.config,
            options: self.options,
            seed: self.seed,
            device: self.device,
            resume: self.resume,
            overwrite: self.overwrite,
            whole_tokens: self.whole_tokens,
        })
    }
}

/// A prepared from-scratch run.
#[derive(Debug)]
pub struct Scratch {
    train: Vec<Document>,
    valid: Vec<Document>,
    out: PathBuf,
    vocab_size: usize,
    config: Option<LlamaConfig>,
    options: FinetuneOptions,
    seed: u64,
    device: Device,
    resume: bool,
    overwrite: bool,
    whole_tokens: Vec<String>,
}

/// The result of [`Scratch::run`].
#[derive(Debug)]
pub struct ScratchReport {
    /// The trained tokenizer.
    pub tokenizer: TextTokenizer,
    /// The training report (the best model is `report.model`, also in `report.best_dir`).
    pub report: FinetuneReport,
    /// Title perplexity of the validation documents under the untrained model.
    pub title_ppl_before: f64,
    /// Title perplexity of the validation documents under the best model.
    pub title_ppl_after: f64,
    /// Targets scored.
    pub n_titles: usize,
    /// Time spent training the tokenizer.
    pub tokenizer_time: Duration,
    /// Total wall time.
    pub wall: Duration,
}

impl Scratch {
    /// Trains the tokenizer and the model; `progress` as in
    /// [`Finetune::run`](crate::Finetune::run).
    ///
    /// # Errors
    /// As [`Finetune::run`](crate::Finetune::run) and [`BpeTrainer::train`](crate::BpeTrainer::train).
    pub fn run(self, progress: impl FnMut(&Progress) -> ControlFlow<()>) -> Result<ScratchReport> {
        let t0 = Instant::now();
        std::fs::create_dir_all(&self.out).map_err(|source| Error::Io {
            path: self.out.clone(),
            source,
        })?;
        // The tokenizer is written first, so the directory is checked (and cleared when
        // overwriting) here rather than by the fine-tuning builder.
        let files: Vec<&str> = RUN_FILES
            .iter()
            .copied()
            .chain(["tokenizer.json"])
            .collect();
        check_run_dir(&self.out, &files, self.resume, self.overwrite)?;
        if self.overwrite && !self.resume {
            clear_run_dir(&self.out, &files)?;
        }
        let tok_path = self.out.join("tokenizer.json");
        let tokenizer = if self.resume && tok_path.is_file() {
            TextTokenizer::from_file(&tok_path)?
        } else {
            let texts: Vec<String> = self.train.iter().map(|d| d.text.clone()).collect();
            let t = BpeTrainerBuilder::new(self.vocab_size)
                .with_whole_tokens(self.whole_tokens.iter().cloned())
                .build()?
                .train(&texts)?;
            t.save(&tok_path)?;
            t
        };
        let tokenizer_time = t0.elapsed();
        let mut config = self.config.unwrap_or_else(|| LlamaConfig::career_tiny(0));
        config.vocab_size = tokenizer.vocab_size();
        config.validate()?;
        let ad = self.device.clone().autodiff();
        ad.seed(self.seed);
        let model = config.init_for_training(&ad);
        let (title_ppl_before, _) = title_perplexity(&model.valid(), &tokenizer, &self.valid)?;
        let report = FinetuneBuilder::new(model, config, tokenizer.clone(), &self.out)
            .with_train(self.train)
            .with_valid(self.valid.clone())
            .with_options(self.options)
            .with_resume(self.resume)
            .with_overwrite(self.overwrite)
            .build()?
            .run(progress)?;
        let (title_ppl_after, n_titles) = title_perplexity(&report.model, &tokenizer, &self.valid)?;
        Ok(ScratchReport {
            tokenizer,
            report,
            title_ppl_before,
            title_ppl_after,
            n_titles,
            tokenizer_time,
            wall: t0.elapsed(),
        })
    }
}
