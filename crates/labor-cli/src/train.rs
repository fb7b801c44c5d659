//! `labor train` and `labor predict`: CAREER and the baselines.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use labor_data::atomic::check_output;
use labor_data::{io, resume_corpus};
use labor_model::{CareerSize, ModelKind, TrainBuilder};

/// Arguments of `labor train`.
///
/// Training validates after every epoch, keeps the best validation model, and stops once the
/// validation loss has not improved for a patience of max(3 epochs, 300 updates) (rounded up to
/// whole epochs), or after 200 epochs: small panels get as many updates as they need, large ones
/// stop after a few epochs. `--patience`, `--patience-updates` and `--epochs` change the rule;
/// `--no-early-stopping` runs every epoch.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Stopping rule: validation after every epoch; stop when the validation \
loss has not improved for max(--patience epochs, --patience-updates updates) (default 3 epochs, \
300 updates, rounded up to whole epochs) or after --epochs epochs (default 200); the best \
validation model is kept."
)]
pub struct TrainArgs {
    /// Model: career, empirical, logit or bag-of-jobs.
    #[arg(long)]
    kind: ModelKind,
    /// Training panel (Parquet).
    #[arg(long)]
    train: PathBuf,
    /// Validation panel (Parquet), evaluated after every epoch; the best model is kept.
    #[arg(long)]
    valid: PathBuf,
    /// Fine-tune every weight of this model directory (same kind and taxonomy) with a fresh optimizer.
    #[arg(long)]
    pretrained: Option<PathBuf>,
    /// Most epochs (default 200; training usually stops earlier, see --patience).
    #[arg(long)]
    epochs: Option<usize>,
    /// Early stopping: epochs without a better validation loss before stopping, at least.
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Early stopping: updates without a better validation loss before stopping, at least
    /// (rounded up to whole epochs; this is what makes the patience scale with the panel).
    #[arg(long, default_value_t = 300)]
    patience_updates: usize,
    /// Run every epoch (no early stopping).
    #[arg(long)]
    no_early_stopping: bool,
    /// Stop after this many updates.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Peak learning rate, in (0, 1] (default: the kind's default).
    #[arg(long, value_parser = crate::parse_lr)]
    lr: Option<f64>,
    /// Warm-up updates of the inverse-square-root schedule (default: the kind's default).
    #[arg(long)]
    warmup: Option<usize>,
    /// Padded worker-years per batch (default: the kind's default).
    #[arg(long)]
    max_tokens: Option<usize>,
    /// CAREER size: small or paper (12 layers, width 192, 3 heads, FFN 768).
    #[arg(long, default_value = "small")]
    size: CareerSize,
    /// Additive smoothing of the empirical model.
    #[arg(long, default_value_t = 0.1)]
    alpha: f64,
    /// Seed of initialisation, batch order and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Turn both panels into a resume-like pretraining corpus first (jobs only, no ethnicity or gender).
    #[arg(long)]
    as_resumes: bool,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Replace the model already in --out (model, loss curve, checkpoint); without it, a new
    /// run into a directory that holds one is refused.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Model directory: model.json, model.bpk, loss.csv, checkpoint/.
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `labor predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Model directory written by `labor train`, or a language model (a GGUF file or a Hugging
    /// Face directory) scored with the resume template.
    #[arg(long)]
    model: PathBuf,
    /// Panel to predict (Parquet).
    #[arg(long)]
    panel: PathBuf,
    /// Output predictions (Parquet).
    #[arg(long)]
    out: PathBuf,
    /// Also write the probability of every state for every worker-year.
    #[arg(long)]
    full_distribution: bool,
    /// Name of the model in the predictions file and in reports (default: its kind, e.g.
    /// `career`).
    #[arg(long)]
    name: Option<String>,
    /// Predict on these devices at once, each a shard of the workers (comma-separated:
    /// `flex,flex`, `cuda:0,cuda:1`, `wgpu:0`; default: the default device); the file equals
    /// one device's.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
}

/// `labor train`.
pub fn train(a: &TrainArgs) -> Result<()> {
    let (mut train, mut valid) = (io::read_parquet(&a.train)?, io::read_parquet(&a.valid)?);
    if a.as_resumes {
        train = resume_corpus(&train)?;
        valid = resume_corpus(&valid)?;
    }
    let mut opts = a.kind.default_options();
    opts.epochs = a.epochs.unwrap_or(opts.epochs);
    opts.max_steps = a.max_steps;
    opts.lr = a.lr.unwrap_or(opts.lr);
    opts.warmup = a.warmup.unwrap_or(opts.warmup);
    opts.max_tokens = a.max_tokens.unwrap_or(opts.max_tokens);
    opts.seed = a.seed;
    if a.no_early_stopping {
        opts.early_stopping = None;
    } else if let Some(e) = opts.early_stopping.as_mut() {
        if a.patience == 0 {
            bail!("--patience must be at least 1 (--no-early-stopping runs every epoch)");
        }
        e.epochs = a.patience;
        e.updates = a.patience_updates;
    }
    let b = TrainBuilder::new(a.kind, &train, &valid)
        .with_options(opts)
        .with_size(a.size)
        .with_alpha(a.alpha)
        .with_resume(a.resume)
        .with_overwrite(a.force)
        .with_out_dir(&a.out);
    let trainer = crate::opt(b, a.pretrained.as_ref(), TrainBuilder::with_pretrained).build()?;
    let pb = crate::progress::bar(0, a.kind.name(), "steps, {msg}");
    let (_, summary) = trainer.run(|p| crate::progress::training(&pb, p))?;
    pb.finish_and_clear();
    eprintln!(
        "trained {}: {summary}; wrote {}",
        a.kind.name(),
        a.out.display()
    );
    Ok(())
}

/// `labor predict`.
pub fn predict(a: &PredictArgs) -> Result<()> {
    let model_files: Vec<PathBuf> = ["model.json", "model.bpk", "empirical.json"]
        .iter()
        .map(|n| a.model.join(n))
        .collect();
    check_output(
        &a.out,
        [a.panel.as_path(), a.model.as_path()]
            .into_iter()
            .chain(model_files.iter().map(PathBuf::as_path)),
    )?;
    let panel = io::read_parquet(&a.panel)?;
    if panel.n_worker_years() == 0 {
        bail!("{} has no worker-years to predict", a.panel.display());
    }
    let mut preds =
        crate::progress::predict_model(&a.model, &panel, false, a.full_distribution, &a.devices)?;
    if let Some(name) = &a.name {
        preds = preds.with_model(name);
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    preds
        .write_parquet(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "{}: perplexity {:.3}; wrote {}",
        preds.model(),
        preds.perplexity(),
        a.out.display()
    );
    Ok(())
}
