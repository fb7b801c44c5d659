//! `labor eval`: perplexity with worker-cluster bootstrap SEs, paired differences, subgroup
//! perplexity, accuracy, calibration and event metrics for one or more predictions files, with
//! a Markdown/CSV/JSON report and PNG plots.
//!
//! The conversion from `labor_data::Predictions` (the Parquet predictions every model writes)
//! to `labor_eval::ModelPredictions` lives here, so that `labor-eval` depends on neither
//! `labor-data` nor Parquet/Arrow. The quickstart and the example programs call
//! [`evaluate`] with in-memory predictions and [`EvalOutput::write_dir`].
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use labor_cli::eval::{EvalOptions, evaluate};
//! let truth = labor_data::Predictions::read_parquet("truth.parquet")?;
//! let test = labor_data::io::read_parquet("split/test.parquet")?;
//! let out = evaluate(&[truth], Some(&test), &EvalOptions::default())?;
//! println!("{}", out.table());
//! out.write_dir("eval".as_ref())?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use labor_data::{Panel, Predictions, SpecialState, Worker};
use labor_eval::{
    Bootstrap, Evaluation, Evaluator, Event, LossCurve, ModelPredictions, Subgroups, TargetRow,
    TargetRule,
};
use serde::Serialize;

/// Arguments of `labor eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Predictions files (Parquet, from `labor predict`, `labor score` or `labor synth --truth`);
    /// the first is the baseline of the paired differences.
    #[arg(long, num_args = 1.., required_unless_present = "model")]
    pub predictions: Vec<PathBuf>,
    /// Models to predict `--panel` with before evaluating (after any `--predictions`): a
    /// directory from `labor train` (CAREER, logit, bag-of-jobs, empirical), or a language
    /// model (a GGUF file, or a Hugging Face directory with `tokenizer.json`) scored with the
    /// resume template.
    #[arg(long, num_args = 1.., requires = "panel")]
    pub model: Vec<PathBuf>,
    /// With `--model`: predict the full distribution over outcomes (calibration, top-k
    /// accuracy, and for language models the mass on valid titles).
    #[arg(long)]
    pub full_distribution: bool,
    /// With `--model`: language models decode constrained to the taxonomy's titles (each
    /// token renormalised over the tokens that continue some title; see `labor score
    /// --constrained`).
    #[arg(long)]
    pub constrained: bool,
    /// The test panel (Parquet): restricts the targets to its workers, gives the previous
    /// states and the subgroup attributes (gender, ethnicity, region, dataset).
    #[arg(long)]
    pub panel: Option<PathBuf>,
    /// Which worker-years are targets: all, exclude-first, changes (moves) or stays.
    #[arg(long, default_value = "all")]
    pub targets: String,
    /// Bootstrap replicates (workers resampled with replacement).
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Target weights: none (every target counts 1) or survey (the survey weight of the
    /// predictions file, else of the panel).
    #[arg(long, default_value = "none")]
    pub weights: String,
    /// A training log to plot, as NAME=CSV (header step,epoch,tokens,train_loss,valid_loss,
    /// learning_rate); repeat for several runs.
    #[arg(long, value_parser = parse_named)]
    pub loss_curve: Vec<(String, PathBuf)>,
    /// Calibration bins.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Output directory for metrics.json, report.md, report.csv and the PNG plots.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_named(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=CSV, got `{s}`")),
    }
}

/// Which weights the targets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// Every target counts 1 (what the paper reports).
    #[default]
    None,
    /// The survey weight of the worker (from the predictions file, else the panel).
    Survey,
}

impl std::str::FromStr for Weights {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "unit" => Ok(Weights::None),
            "survey" => Ok(Weights::Survey),
            other => bail!("unknown weights `{other}` (none, survey)"),
        }
    }
}

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Which worker-years are targets.
    pub targets: TargetRule,
    /// Bootstrap replicates.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Target weights.
    pub weights: Weights,
    /// Calibration bins.
    pub bins: usize,
    /// Training logs to plot.
    pub loss_curves: Vec<LossCurve>,
    /// Show a spinner with the current step on stderr.
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            targets: TargetRule::All,
            resamples: 1000,
            seed: 0,
            weights: Weights::None,
            bins: 10,
            loss_curves: Vec::new(),
            progress: true,
        }
    }
}

/// What was read from one predictions input.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// The model's name in the report.
    pub model: String,
    /// Rows in the predictions.
    pub rows: usize,
    /// Rows kept (their worker is in the panel, when one is given).
    pub rows_in_panel: usize,
    /// Whether the rows carry full distributions.
    pub full_distribution: bool,
}

/// `metrics.json`: the evaluation and what it was computed from.
#[derive(Debug, Clone, Serialize)]
pub struct EvalOutput {
    /// The metrics.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Target weights used.
    pub weights: Weights,
    /// One entry per model.
    pub inputs: Vec<InputSummary>,
    /// The training logs plotted.
    #[serde(skip)]
    pub loss_curves: Vec<LossCurve>,
    /// Seconds spent in [`evaluate`].
    pub seconds: f64,
}

fn spinner(on: bool) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(s) = ProgressStyle::with_template("{spinner} eval {elapsed:>4} {msg}") {
        pb.set_style(s);
    }
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Unique model names: a repeated name gets `#2`, `#3`, ...
fn unique_names(models: &[Predictions]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    models
        .iter()
        .map(|m| {
            let base = if m.model().is_empty() {
                "model"
            } else {
                m.model()
            };
            let n = seen.entry(base.to_string()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base.to_string()
            } else {
                format!("{base}#{n}")
            }
        })
        .collect()
}

/// Converts one model's predictions (restricted to `panel`'s workers when given).
fn convert(
    p: &Predictions,
    name: &str,
    panel: Option<&HashMap<&str, &Worker>>,
    weights: Weights,
) -> Result<(ModelPredictions, InputSummary)> {
    let n_states = p.taxonomy().len();
    let mut out = ModelPredictions::new(name, n_states);
    // Previous states from the predictions themselves (when no panel is given).
    let mut last: Option<(&str, u32, usize)> = None;
    for row in p.rows() {
        let (position, previous, weight) = match panel {
            Some(workers) => {
                let Some(w) = workers.get(row.worker_id.as_str()) else {
                    continue;
                };
                let Some(k) = w.records.iter().position(|r| r.year == row.year) else {
                    bail!(
                        "model `{name}`: worker `{}` has no record in {} in the panel",
                        row.worker_id,
                        row.year
                    );
                };
                if w.records[k].state != row.state {
                    bail!(
                        "model `{name}`: worker `{}` year {}: the predictions' observed state differs from the panel's",
                        row.worker_id,
                        row.year
                    );
                }
                let prev = k.checked_sub(1).map(|j| w.records[j].state.index());
                (k as u32, prev, row.weight.or(w.weight))
            }
            None => {
                let prev = match last {
                    Some((id, pos, s)) if id == row.worker_id && pos + 1 == row.position => Some(s),
                    _ => None,
                };
                (row.position, prev, row.weight)
            }
        };
        last = Some((row.worker_id.as_str(), row.position, row.state.index()));
        let weight = match weights {
            Weights::None => 1.0,
            Weights::Survey => weight.with_context(|| {
                format!(
                    "model `{name}`: worker `{}` has no survey weight (use --weights none)",
                    row.worker_id
                )
            })?,
        };
        let t = TargetRow::new(
            row.worker_id.clone(),
            row.year,
            position,
            row.state.index(),
            previous,
            row.log_prob,
        )
        .with_weight(weight);
        out.push(t, row.probs.as_deref())
            .with_context(|| format!("model `{name}`"))?;
    }
    let summary = InputSummary {
        model: name.to_string(),
        rows: p.len(),
        rows_in_panel: out.rows().len(),
        full_distribution: out.has_distribution(),
    };
    Ok((out, summary))
}

/// Evaluates `models` (the first is the baseline of the paired differences) on the workers of
/// `panel` when given (which also supplies previous states and the subgroup attributes).
///
/// # Errors
/// Models over different taxonomies, a model with no target, a predictions row that
/// contradicts the panel, or a missing survey weight under [`Weights::Survey`].
pub fn evaluate(
    models: &[Predictions],
    panel: Option<&Panel>,
    opts: &EvalOptions,
) -> Result<EvalOutput> {
    let t0 = Instant::now();
    let Some(first) = models.first() else {
        bail!("no predictions to evaluate");
    };
    let taxonomy = first.taxonomy();
    for m in models {
        if **m.taxonomy() != **taxonomy {
            bail!(
                "model `{}` uses taxonomy `{}`, `{}` uses `{}`",
                m.model(),
                m.taxonomy().name(),
                first.model(),
                taxonomy.name()
            );
        }
    }
    if let Some(p) = panel
        && **p.taxonomy() != **taxonomy
    {
        bail!(
            "the panel uses taxonomy `{}`, the predictions `{}`",
            p.taxonomy().name(),
            taxonomy.name()
        );
    }
    let pb = spinner(opts.progress);
    let by_id: Option<HashMap<&str, &Worker>> =
        panel.map(|p| p.workers().iter().map(|w| (w.id.as_str(), w)).collect());
    let names = unique_names(models);
    let mut converted = Vec::with_capacity(models.len());
    let mut inputs = Vec::with_capacity(models.len());
    for (m, name) in models.iter().zip(&names) {
        pb.set_message(format!("{name}: reading {} rows", m.len()));
        let (c, s) = convert(m, name, by_id.as_ref(), opts.weights)?;
        if c.rows().is_empty() {
            bail!("model `{name}` has no prediction for a worker of the panel");
        }
        converted.push(c);
        inputs.push(s);
    }
    let subgroups = match panel {
        Some(p) => {
            let mut sg = Subgroups::new(&["gender", "ethnicity", "region", "dataset"]);
            for w in p.workers() {
                sg.insert(
                    &w.id,
                    vec![
                        w.gender.key().to_string(),
                        w.ethnicity.key().to_string(),
                        w.region.key().to_string(),
                        w.dataset.clone(),
                    ],
                )?;
            }
            Some(sg)
        }
        None => None,
    };
    let id = |s: SpecialState| taxonomy.special(s).index();
    let evaluator = Evaluator::builder()
        .with_rule(opts.targets)
        .with_bootstrap(
            Bootstrap::new()
                .with_resamples(opts.resamples)
                .with_seed(opts.seed),
        )
        .with_events(vec![
            Event::change(),
            Event::in_states("unemployment", vec![id(SpecialState::Unemployed)]),
            Event::enter(
                "leaving_labor_force",
                vec![id(SpecialState::NotInLaborForce)],
            ),
            Event::in_states("education", vec![id(SpecialState::InEducation)]),
        ])
        .with_calibration_bins(opts.bins)
        .build()?;
    let evaluation = evaluator.run_with_progress(&converted, subgroups.as_ref(), |s| {
        pb.set_message(s.to_string())
    })?;
    pb.finish_and_clear();
    Ok(EvalOutput {
        evaluation,
        weights: opts.weights,
        inputs,
        loss_curves: opts.loss_curves.clone(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

impl EvalOutput {
    /// The perplexity table in the shape of the paper's Table 6 (Markdown).
    pub fn table(&self) -> String {
        self.evaluation.report().to_markdown()
    }

    /// The PNG figures as (file name, bytes): `calibration.png` (models with full
    /// distributions), `perplexity_by_<dimension>.png`, and `loss_curves.png` when training
    /// logs were given.
    ///
    /// # Errors
    /// A figure that cannot be drawn.
    pub fn plots(&self) -> Result<Vec<(String, Vec<u8>)>> {
        use labor_eval::plots;
        let ev = &self.evaluation;
        let mut out = Vec::new();
        let cal: Vec<(&str, &labor_eval::Calibration)> = ev
            .models
            .iter()
            .filter_map(|m| m.calibration.as_ref().map(|c| (m.name.as_str(), c)))
            .collect();
        if !cal.is_empty() {
            let title = format!("Top-1 calibration ({} targets)", ev.target_rule);
            out.push((
                "calibration.png".to_string(),
                plots::reliability_png(&cal, &title)?,
            ));
        }
        let mut dims: Vec<&String> = ev.models.iter().flat_map(|m| m.subgroups.keys()).collect();
        dims.sort();
        dims.dedup();
        for dim in dims {
            let rows: Vec<(&str, &[labor_eval::GroupEstimate])> = ev
                .models
                .iter()
                .filter_map(|m| {
                    m.subgroups
                        .get(dim)
                        .map(|g| (m.name.as_str(), g.as_slice()))
                })
                .collect();
            if rows.iter().all(|(_, g)| g.is_empty()) {
                continue;
            }
            out.push((
                format!("perplexity_by_{dim}.png"),
                plots::subgroup_png(dim, &rows, 1.96)?,
            ));
        }
        if !self.loss_curves.is_empty() {
            out.push((
                "loss_curves.png".to_string(),
                plots::loss_curves_png(&self.loss_curves)?,
            ));
        }
        Ok(out)
    }

    /// Writes `metrics.json`, `report.md`, `report.csv` and the [plots](Self::plots) into `dir`
    /// (created if missing) as one set (see [`labor_data::atomic::AtomicDir`]); returns the
    /// paths written.
    ///
    /// # Errors
    /// I/O errors naming the file, or a figure that cannot be drawn.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // The files are staged beside `dir` and moved in together on commit: a failure (a full
        // disk) leaves the old report whole, never new files beside old ones.
        let staged = labor_data::atomic::AtomicDir::create(dir)?;
        let mut written = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
            labor_data::atomic::write(staged.path().join(name), bytes)?;
            written.push(dir.join(name));
            Ok(())
        };
        put(
            "metrics.json",
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        let mut md = String::from("# Evaluation\n\n");
        for i in &self.inputs {
            md.push_str(&format!(
                "- `{}`: {} of {} predictions on the evaluated workers{}\n",
                i.model,
                i.rows_in_panel,
                i.rows,
                if i.full_distribution {
                    ", full distributions"
                } else {
                    ""
                }
            ));
        }
        md.push('\n');
        md.push_str(&self.evaluation.to_markdown());
        put("report.md", md.as_bytes())?;
        put("report.csv", self.evaluation.to_csv().as_bytes())?;
        for (name, png) in self.plots()? {
            put(&name, &png)?;
        }
        staged.commit()?;
        Ok(written)
    }
}

/// Runs `labor eval`.
///
/// # Errors
/// Unreadable inputs, invalid options, or as [`evaluate`] and [`EvalOutput::write_dir`].
pub fn run(a: &EvalArgs) -> Result<()> {
    let t0 = Instant::now();
    if !(2..=labor_eval::MAX_RESAMPLES).contains(&a.resamples) {
        bail!(
            "--resamples {} is not in 2..={} (1,000 give SEs to about 2%)",
            a.resamples,
            labor_eval::MAX_RESAMPLES
        );
    }
    if a.bins == 0 || a.bins > 1000 {
        bail!("--bins {} is not in 1..=1000", a.bins);
    }
    let targets: TargetRule = a.targets.parse()?;
    let weights: Weights = a.weights.parse()?;
    let mut loss_curves = Vec::new();
    for (name, path) in &a.loss_curve {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        loss_curves.push(LossCurve::from_csv_str(name, &text)?);
    }
    let panel = match &a.panel {
        Some(p) => Some(
            labor_data::io::read_parquet(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => None,
    };
    let mut models = Vec::new();
    for p in &a.predictions {
        eprintln!("reading {}", p.display());
        models.push(
            Predictions::read_parquet(p).with_context(|| format!("reading {}", p.display()))?,
        );
    }
    for p in &a.model {
        let Some(panel) = &panel else {
            bail!("--model needs --panel (the workers to predict)");
        };
        models.push(predict_with(p, panel, a.full_distribution, a.constrained)?);
    }
    let t_read = t0.elapsed().as_secs_f64();
    let opts = EvalOptions {
        targets,
        resamples: a.resamples,
        seed: a.seed,
        weights,
        bins: a.bins,
        loss_curves,
        progress: true,
    };
    let out = evaluate(&models, panel.as_ref(), &opts)?;
    let written = out.write_dir(&a.out)?;
    println!("{}", out.table());
    let ev = &out.evaluation;
    for m in &ev.models {
        if let (Some(t1), Some(t5)) = (m.top1_accuracy, m.top5_accuracy) {
            println!(
                "{}: top-1 {:.3}, top-5 {:.3}, ECE {:.3}, mass on valid titles {:.4}",
                m.name,
                t1,
                t5,
                m.calibration.as_ref().map_or(f64::NAN, |c| c.ece),
                m.valid_mass.map_or(f64::NAN, |v| v.mean)
            );
        }
    }
    println!(
        "{} targets ({}), {} bootstrap replicates; read in {:.1}s, evaluated in {:.1}s; wrote {} files to {}",
        ev.models.first().map_or(0, |m| m.n_targets),
        ev.target_rule,
        ev.resamples,
        t_read,
        out.seconds,
        written.len(),
        a.out.display()
    );
    Ok(())
}

/// Runs `predictor` over every worker-year of `panel` (see [`labor_model::predict_panel`]) with
/// a progress bar, and prints how long it took.
///
/// # Errors
/// As [`labor_model::predict_panel`].
pub fn predict_with_progress(
    predictor: &dyn labor_model::Predictor,
    panel: &Panel,
    full_distribution: bool,
) -> Result<Predictions> {
    let pb = ProgressBar::new(panel.n_worker_years() as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} worker-years {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(predictor.name().to_string());
    let start = Instant::now();
    let preds = labor_model::predict_panel(predictor, panel, full_distribution, |done| {
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    eprintln!(
        "{}: {} worker-years predicted in {:.1}s",
        preds.model(),
        preds.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(preds)
}

/// Loads the `labor train` model directory `dir` for predicting `panel`, whose taxonomy must be
/// the one the model was trained on.
///
/// # Errors
/// A model directory that does not load, or a panel over another taxonomy.
pub fn load_trained(dir: &Path, panel: &Panel) -> Result<labor_model::TrainedModel> {
    let meta = labor_model::read_meta(dir)?;
    if panel.taxonomy().name() != meta.taxonomy || panel.taxonomy().len() != meta.n_states {
        bail!(
            "the panel uses taxonomy `{}` ({} states); {} was trained on `{}` ({} states)",
            panel.taxonomy().name(),
            panel.taxonomy().len(),
            dir.display(),
            meta.taxonomy,
            meta.n_states
        );
    }
    labor_model::load_model(dir, &burn::tensor::Device::default())
        .with_context(|| format!("loading {}", dir.display()))
}

/// Predicts every target of `panel` with the model at `path`: a `labor train` directory, or a
/// language model scored with the resume template.
fn predict_with(
    path: &Path,
    panel: &Panel,
    full_distribution: bool,
    constrained: bool,
) -> Result<Predictions> {
    let device = burn::tensor::Device::default();
    if labor_model::read_meta(path).is_ok() {
        let model = load_trained(path, panel)?;
        return predict_with_progress(&model, panel, full_distribution);
    }
    let (_, model, tok) = labor_model::load_llm(path, &device).with_context(|| {
        format!(
            "loading {}: neither a `labor train` directory nor a language model",
            path.display()
        )
    })?;
    let name = path
        .file_stem()
        .map_or_else(|| "llm".into(), |s| s.to_string_lossy().into_owned());
    let template = labor_template::TemplateBuilder::new(
        std::sync::Arc::clone(panel.taxonomy()),
        labor_template::TemplateKind::Resume,
    )
    .build()?;
    let predictor = labor_model::LlmPredictor::new(
        name,
        labor_model::Scorer::new(&model, &tok, device.clone()),
        template,
        panel.taxonomy(),
    )?;
    let predictor = if constrained {
        predictor.constrained()?
    } else {
        predictor
    };
    predict_with_progress(&predictor, panel, full_distribution)
}
