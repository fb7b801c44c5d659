//! `labor eval`: perplexity with worker-cluster bootstrap SEs, paired differences, subgroup
//! perplexity, accuracy, calibration and event metrics for one or more predictions files, with
//! a Markdown/CSV/JSON report and PNG plots. The evaluation itself is
//! [`labor_eval::evaluate_predictions`], which the quickstart and the example programs call too.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use labor_data::Predictions;
use labor_eval::{EvalOptions, LossCurve, evaluate_predictions};

/// Arguments of `labor eval`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct EvalArgs {
    /// Predictions files (Parquet, from `labor predict`, `labor score` or `labor synth --truth`);
    /// the first is the baseline of the paired differences.
    #[arg(long, num_args = 1.., required_unless_present = "model")]
    predictions: Vec<PathBuf>,
    /// Models to predict `--panel` with before evaluating (after any `--predictions`): a
    /// directory from `labor train` (CAREER, logit, bag-of-jobs, empirical), or a language
    /// model (a GGUF file, or a Hugging Face directory with `tokenizer.json`) scored with the
    /// resume template.
    #[arg(long, num_args = 1.., requires = "panel")]
    model: Vec<PathBuf>,
    /// With `--model`: predict the full distribution over outcomes (calibration, top-k
    /// accuracy, and for language models the mass on valid titles).
    #[arg(long)]
    full_distribution: bool,
    /// With `--model`: predict on these devices at once, each a shard of the workers
    /// (comma-separated: `flex,flex`, `cuda:0,cuda:1`; default: the default device).
    #[arg(long, value_delimiter = ',', requires = "model")]
    devices: Vec<String>,
    /// With `--model`: language models decode constrained to the taxonomy's titles (each
    /// token renormalised over the tokens that continue some title; see `labor score
    /// --constrained`).
    #[arg(long)]
    constrained: bool,
    /// The test panel (Parquet): restricts the targets to its workers, gives the previous
    /// states and the subgroup attributes (gender, ethnicity, region, dataset).
    #[arg(long)]
    panel: Option<PathBuf>,
    /// Which worker-years are targets: all, exclude-first, changes (moves) or stays.
    #[arg(long, default_value = "all")]
    targets: String,
    /// Bootstrap replicates (workers resampled with replacement).
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Target weights: none (every target counts 1) or survey (the survey weight of the
    /// predictions file, else of the panel).
    #[arg(long, default_value = "none")]
    weights: String,
    /// A training log to plot, as NAME=CSV (header step,epoch,tokens,train_loss,valid_loss,
    /// learning_rate); repeat for several runs.
    #[arg(long, value_parser = crate::parse_named)]
    loss_curve: Vec<(String, PathBuf)>,
    /// Calibration bins.
    #[arg(long, default_value_t = 10)]
    bins: usize,
    /// Output directory for metrics.json, report.md, report.csv and the PNG plots.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `labor eval`.
///
/// # Errors
/// Unreadable inputs, invalid options, or as [`evaluate_predictions`] and
/// [`labor_eval::EvalOutput::write_dir`].
pub(crate) fn run(a: &EvalArgs) -> Result<()> {
    let t0 = Instant::now();
    let mut opts = EvalOptions {
        targets: a.targets.parse()?,
        resamples: a.resamples,
        seed: a.seed,
        weights: a.weights.parse()?,
        bins: a.bins,
        loss_curves: Vec::new(),
    };
    opts.validate()?;
    for (name, path) in &a.loss_curve {
        opts.loss_curves.push(LossCurve::from_csv_path(name, path)?);
    }
    let panel = match &a.panel {
        Some(p) => Some(labor_data::io::read_parquet(p)?),
        None => None,
    };
    let mut models = Vec::new();
    for p in &a.predictions {
        eprintln!("reading {}", p.display());
        models.push(Predictions::read_parquet(p)?);
    }
    for p in &a.model {
        let Some(panel) = &panel else {
            bail!("--model needs --panel (the workers to predict)");
        };
        models.push(crate::progress::predict_model(
            p,
            panel,
            a.constrained,
            a.full_distribution,
            &a.devices,
        )?);
    }
    let t_read = t0.elapsed().as_secs_f64();
    let pb = crate::progress::spinner();
    let out = evaluate_predictions(&models, panel.as_ref(), &opts, |s| {
        pb.set_message(s.to_string())
    })?;
    pb.finish_and_clear();
    let written = out.write_dir(&a.out)?;
    println!("{}", out.table());
    print!("{}", out.accuracy_lines());
    let ev = &out.evaluation;
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
