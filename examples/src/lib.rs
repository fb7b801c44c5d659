//! Shared helpers of the example programs: the data every experiment starts from (a synthetic
//! preset, or a user's own split panels), running a predictor over a test panel with a progress
//! bar, and the evaluation `labor eval` runs ([`labor_eval::evaluate_predictions`]), with
//! worker-level bootstrap standard errors.
//!
//! Each experiment lives in `examples/<name>/main.rs` with a README giving its exact command,
//! what it reproduces and the output it produced.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use labor_data::{Panel, Predictions, Preset, SplitterBuilder, SynthBuilder, Taxonomy, io};
use labor_eval::{EvalOptions, EvalOutput, evaluate_predictions};
use labor_model::{Predictor, TruthPredictor, predict_panel};

/// Where an experiment's workers come from (the flags every example shares).
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Synthetic preset: nlsy79, nlsy97 or psid81 (ignored with --train/--valid/--test).
    #[arg(long, default_value = "nlsy79")]
    pub preset: String,
    /// Workers drawn for the synthetic panel (before the 70/10/20 split).
    #[arg(long, default_value_t = 2000)]
    pub workers: usize,
    /// Your own training split (Parquet, from `labor ingest` + `labor split`).
    #[arg(long, requires_all = ["valid", "test"])]
    pub train: Option<PathBuf>,
    /// Your own validation split.
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Your own test split.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Evaluate on the first N test workers only (language models are slow on a CPU).
    #[arg(long)]
    pub test_workers: Option<usize>,
    /// Seed of the synthetic draw, the split and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
}

/// Train, validation and test panels, and the true model when they are synthetic.
#[derive(Debug)]
pub struct Data {
    /// Training split.
    pub train: Arc<Panel>,
    /// Validation split.
    pub valid: Arc<Panel>,
    /// Test split (cut to `--test-workers`).
    pub test: Arc<Panel>,
    /// The predictions of the true law on the test split (synthetic data only).
    pub truth: Option<Predictions>,
}

impl DataArgs {
    /// Evaluates on the first `n` test workers unless `--test-workers` or `--test` says
    /// otherwise (for experiments whose language models are slow on a CPU).
    pub fn default_test_workers(&mut self, n: usize) {
        if self.test_workers.is_none() && self.test.is_none() {
            self.test_workers = Some(n);
        }
    }

    /// Loads or draws the data.
    ///
    /// # Errors
    /// Unreadable files, an unknown preset.
    pub fn load(&self) -> Result<Data> {
        let (train, valid, mut test, law) = match (&self.train, &self.valid, &self.test) {
            (Some(a), Some(b), Some(c)) => {
                let read = |p: &Path| {
                    io::read_parquet(p).with_context(|| format!("reading {}", p.display()))
                };
                (read(a)?, read(b)?, read(c)?, None)
            }
            _ => {
                let preset: Preset = self.preset.parse()?;
                let synth = SynthBuilder::new(preset)
                    .with_workers(self.workers)
                    .with_seed(self.seed)
                    .build()?;
                let panel = synth.generate().panel;
                let parts = SplitterBuilder::new()
                    .with_seed(self.seed)
                    .build()?
                    .split(&panel);
                (parts.train, parts.valid, parts.test, Some(synth))
            }
        };
        if let Some(n) = self.test_workers {
            let keep: std::collections::HashSet<String> = test
                .workers()
                .iter()
                .take(n)
                .map(|w| w.id.clone())
                .collect();
            test = test.filter(|w| keep.contains(&w.id));
        }
        let truth = match &law {
            Some(s) => Some(
                predict_panel(&TruthPredictor::new(s.law()), &test, false, |_| {})?
                    .with_model("truth (perplexity floor)"),
            ),
            None => None,
        };
        if test.is_empty() {
            bail!("the test split is empty");
        }
        Ok(Data {
            train: Arc::new(train),
            valid: Arc::new(valid),
            test: Arc::new(test),
            truth,
        })
    }
}

/// Runs `predictor` over `panel` with a progress bar (worker-years per second).
///
/// # Errors
/// The predictor's.
pub fn predict(predictor: &dyn Predictor, panel: &Panel) -> Result<Predictions> {
    let pb = ProgressBar::new(panel.n_worker_years() as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>24} [{bar:30}] {pos}/{len} worker-years {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(predictor.name().to_string());
    let p = predict_panel(predictor, panel, false, |done| pb.set_position(done as u64))?;
    pb.finish_and_clear();
    Ok(p)
}

/// Runs `predictor` over `panel` (see [`predict`]), prints how long it took, and returns the
/// model's name with its predictions, ready for [`report`].
///
/// # Errors
/// The predictor's.
pub fn scored(predictor: &dyn Predictor, panel: &Panel) -> Result<(String, Predictions)> {
    let t = std::time::Instant::now();
    let preds = predict(predictor, panel)?;
    println!(
        "{}: {} worker-years in {:.1} s",
        predictor.name(),
        preds.len(),
        t.elapsed().as_secs_f64()
    );
    Ok((predictor.name().to_string(), preds))
}

/// Evaluates the models on the workers of `test` (with the truth last, when known) as `labor
/// eval` does, prints the table in the shape of the paper's tables, and writes the report
/// directory (`report.md`, `report.csv`, `metrics.json`, plots) to `out`.
///
/// # Errors
/// Models that do not cover the test workers; unwritable `out`.
pub fn report(
    models: Vec<(String, Predictions)>,
    truth: Option<&Predictions>,
    test: &Panel,
    data: &DataArgs,
    out: &Path,
) -> Result<EvalOutput> {
    let mut all: Vec<Predictions> = models
        .into_iter()
        .map(|(name, p)| p.with_model(name))
        .collect();
    all.extend(truth.cloned());
    let opts = EvalOptions {
        resamples: data.resamples,
        seed: data.seed,
        ..EvalOptions::default()
    };
    let report = evaluate_predictions(&all, Some(test), &opts, |_| {})?;
    report.write_dir(out)?;
    println!("{}", report.table());
    println!(
        "wrote report.md, report.csv, metrics.json and plots to {}",
        out.display()
    );
    Ok(report)
}

/// The SmolLM2-135M GGUF that `scripts/fetch-smollm2` downloads, when present
/// (`LABOR_SMOLLM2_GGUF`, else `~/.cache/labor/smollm2/`).
pub fn default_llm() -> Option<PathBuf> {
    let p = std::env::var_os("LABOR_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                PathBuf::from(h).join(".cache/labor/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
            })
        })?;
    p.is_file().then_some(p)
}

/// The built-in taxonomy (for experiments that need one without data).
pub fn occ1990dd() -> Arc<Taxonomy> {
    Arc::new(Taxonomy::occ1990dd())
}

/// The language model an experiment trains: a pretrained base fine-tuned with LoRA (the
/// paper's setting; by default SmolLM2-135M when `scripts/fetch-smollm2` has fetched it), or the
/// small 2-layer model trained from scratch (`--scratch`, and the fallback without SmolLM2).
///
/// The defaults are sized for a 2-core CPU (11-14 minutes of fine-tuning per model there); the
/// paper's scale needs `--lm-train-docs 0 --lm-epochs 3` or more, which is hours per model on
/// such a CPU and minutes on a GPU (`labor finetune` built with `--features cuda`, docs/gpu.md).
#[derive(clap::Args, Debug, Clone)]
pub struct LmArgs {
    /// Pretrained base to fine-tune with LoRA: a GGUF file or a Hugging Face directory (default:
    /// SmolLM2-135M from `scripts/fetch-smollm2`, when fetched).
    #[arg(long, conflicts_with = "scratch")]
    pub base: Option<PathBuf>,
    /// Train the small 2-layer model from scratch instead of fine-tuning a pretrained base.
    #[arg(long)]
    pub scratch: bool,
    /// Training resumes used, a seeded sample (0: all; default 160 when fine-tuning a
    /// pretrained base, 800 from scratch).
    #[arg(long)]
    pub lm_train_docs: Option<usize>,
    /// Epochs (default 1 when fine-tuning a pretrained base, 2 from scratch).
    #[arg(long)]
    pub lm_epochs: Option<usize>,
    /// Rank of the LoRA adapters (on all seven projections of every block).
    #[arg(long, default_value_t = 16)]
    pub lora_rank: usize,
    /// Peak learning rate of the LoRA fine-tuning (5% warm-up, then linear decay).
    #[arg(long, default_value_t = 1e-3)]
    pub lm_lr: f64,
}

/// Validation resumes the fine-tuning's validation loss is taken over.
const FINETUNE_VALID_DOCS: usize = 30;

/// Which language model [`LmArgs`] selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmSource {
    /// Fine-tune this pretrained checkpoint with LoRA.
    Pretrained(PathBuf),
    /// Train the small model from scratch.
    Scratch,
}

impl LmArgs {
    /// The model these options select: `--base`, else SmolLM2-135M when fetched (see
    /// [`default_llm`]), else (and with `--scratch`) the small model from scratch.
    pub fn source(&self) -> LmSource {
        if self.scratch {
            return LmSource::Scratch;
        }
        match self.base.clone().or_else(default_llm) {
            Some(p) => LmSource::Pretrained(p),
            None => LmSource::Scratch,
        }
    }

    /// What the tables call the model: "fine-tuned <base file stem> (LoRA)" or "small LM from
    /// scratch".
    pub fn label(&self) -> String {
        match self.source() {
            LmSource::Pretrained(p) => format!("fine-tuned {} (LoRA)", labor_model::model_name(&p)),
            LmSource::Scratch => "small LM from scratch".into(),
        }
    }

    /// Trains the selected model on a seeded sample of the `train` documents (validating on
    /// `valid`) under `out`, prints what it did, and returns the model with its tokenizer.
    ///
    /// # Errors
    /// Loading the base, training errors.
    pub fn train(
        &self,
        mut train: Vec<labor_template::Document>,
        mut valid: Vec<labor_template::Document>,
        seed: u64,
        out: &Path,
    ) -> Result<(labor_model::Llama, labor_model::TextTokenizer)> {
        let source = self.source();
        if self.base.is_none() && !self.scratch && source == LmSource::Scratch {
            println!(
                "SmolLM2-135M is not fetched (scripts/fetch-smollm2) and no --base was given: \
                 training the small model from scratch instead"
            );
        }
        let pretrained = matches!(source, LmSource::Pretrained(_));
        let cap = self
            .lm_train_docs
            .unwrap_or(if pretrained { 160 } else { 800 });
        let epochs = self.lm_epochs.unwrap_or(if pretrained { 1 } else { 2 });
        // A seeded sample, so that a cap keeps a random subset of the training workers (of every
        // survey of a mixture) rather than the first ones.
        labor_data::SeededRng::with_stream(seed, 11).shuffle(&mut train);
        if cap > 0 {
            train.truncate(cap);
        }
        match source {
            LmSource::Scratch => train_small_lm(train, valid, epochs, seed, out),
            LmSource::Pretrained(base) => {
                labor_data::SeededRng::with_stream(seed, 12).shuffle(&mut valid);
                valid.truncate(FINETUNE_VALID_DOCS);
                self.finetune(&base, train, valid, epochs, seed, out)
            }
        }
    }

    fn finetune(
        &self,
        base: &Path,
        train: Vec<labor_template::Document>,
        valid: Vec<labor_template::Document>,
        epochs: usize,
        seed: u64,
        out: &Path,
    ) -> Result<(labor_model::Llama, labor_model::TextTokenizer)> {
        use labor_model::{FinetuneBuilder, FinetuneOptions, LoraOptions, LoraTarget, LossOn};
        let device = burn::tensor::Device::default().autodiff();
        let (config, model, tok) = labor_model::load_base(base, None, &device)
            .with_context(|| format!("loading {}", base.display()))?;
        let mut lora = LoraOptions::with_rank(self.lora_rank);
        lora.targets = LoraTarget::ALL.to_vec();
        let mut o = FinetuneOptions::default();
        o.epochs = epochs;
        o.batch_size = 4;
        o.learning_rate = self.lm_lr;
        o.loss_on = LossOn::Titles;
        o.seed = seed;
        o.lora = Some(lora);
        let n_train = train.len();
        let pb = steps_bar("finetune");
        let report = FinetuneBuilder::new(model, config, tok.clone(), out)
            .with_train(train)
            .with_valid(valid)
            .with_options(o)
            .with_overwrite(true)
            .build()?
            .run(|p| {
                pb.set_length(p.total_steps as u64);
                pb.set_position(p.row.step as u64);
                pb.set_prefix(format!(
                    "loss {:.3} {:.0} tok/s",
                    p.row.train_loss, p.tokens_per_sec
                ));
                std::ops::ControlFlow::Continue(())
            })?;
        pb.finish_and_clear();
        let tokens = report.curve.last().map_or(0, |r| r.tokens);
        println!(
            "fine-tuned {} on {n_train} resumes in {:.0} s: {} updates, {tokens} tokens; \
             validation loss per title token {:.3} -> {:.3}",
            base.display(),
            report.wall.as_secs_f64(),
            report.steps,
            report.initial_valid_loss.unwrap_or(f64::NAN),
            report.best_valid_loss.unwrap_or(f64::NAN),
        );
        Ok((report.model, tok))
    }
}

fn steps_bar(name: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} steps eta {eta} {prefix}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(name.to_string());
    pb
}

/// Trains the small language model from scratch on `train` documents (validating on `valid`)
/// under `out` and returns it with its tokenizer.
fn train_small_lm(
    train: Vec<labor_template::Document>,
    valid: Vec<labor_template::Document>,
    epochs: usize,
    seed: u64,
    out: &Path,
) -> Result<(labor_model::Llama, labor_model::TextTokenizer)> {
    let pb = steps_bar("llm");
    let report = labor_model::ScratchBuilder::new(train, valid, out)
        .with_epochs(epochs)
        .with_batch_size(4)
        .with_max_valid_docs(100)
        .with_seed(seed)
        .with_overwrite(true)
        .build()?
        .run(|p| {
            pb.set_length(p.total_steps as u64);
            pb.set_position(p.row.step as u64);
            pb.set_prefix(format!("loss {:.3}", p.row.train_loss));
            std::ops::ControlFlow::Continue(())
        })?;
    pb.finish_and_clear();
    println!(
        "trained the small LM in {:.0} s: validation title perplexity {:.1} -> {:.1}",
        report.wall.as_secs_f64(),
        report.title_ppl_before,
        report.title_ppl_after
    );
    Ok((report.report.model, report.tokenizer))
}

/// A probability for a table: four decimals, or three significant digits below 0.01.
pub fn fmt_prob(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.4}")
    } else {
        format!("{p:.3e}")
    }
}

/// The geometric mean, over the targets, of the probability the free model keeps on tokens that
/// continue some title along each true title: `exp(mean(log P_free - log P_constrained))`, from
/// the same model's free and constrained predictions of the same panel (1 when no probability
/// goes to text that is no title).
///
/// # Errors
/// Predictions of different targets.
pub fn kept_mass(free: &Predictions, constrained: &Predictions) -> Result<f64> {
    if free.len() != constrained.len() || free.is_empty() {
        bail!(
            "{} and {} cover {} and {} targets",
            free.model(),
            constrained.model(),
            free.len(),
            constrained.len()
        );
    }
    let mut sum = 0.0;
    for (a, b) in free.rows().iter().zip(constrained.rows()) {
        if a.worker_id != b.worker_id || a.year != b.year {
            bail!(
                "{} and {} differ at worker {} year {}",
                free.model(),
                constrained.model(),
                a.worker_id,
                a.year
            );
        }
        sum += a.log_prob - b.log_prob;
    }
    Ok((sum / free.len() as f64).exp())
}
