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

/// Options of the small language model the examples train from scratch (the embedded default:
/// a byte-level BPE tokenizer and a 2-layer Llama trained on the training resumes).
#[derive(clap::Args, Debug, Clone)]
pub struct LmArgs {
    /// Training resumes used (0: all).
    #[arg(long, default_value_t = 800)]
    pub lm_train_docs: usize,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    pub lm_epochs: usize,
}

/// Trains the small language model on `train` documents (validating on `valid`) under `out`
/// and returns it with its tokenizer.
///
/// # Errors
/// Training errors.
pub fn train_small_lm(
    mut train: Vec<labor_template::Document>,
    valid: Vec<labor_template::Document>,
    lm: &LmArgs,
    seed: u64,
    out: &Path,
) -> Result<(labor_model::Llama, labor_model::TextTokenizer)> {
    if lm.lm_train_docs > 0 {
        train.truncate(lm.lm_train_docs);
    }
    let pb = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} steps eta {eta} {prefix}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("llm");
    let report = labor_model::ScratchBuilder::new(train, valid, out)
        .with_epochs(lm.lm_epochs)
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

/// Renders every worker of `panel` with `template`.
///
/// # Errors
/// Template errors.
pub fn render(
    panel: &Panel,
    template: &dyn labor_template::Template,
) -> Result<Vec<labor_template::Document>> {
    let mut out = vec![];
    for w in panel.workers() {
        out.extend(template.render(w)?.into_documents());
    }
    Ok(out)
}
