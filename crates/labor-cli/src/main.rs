//! `labor`: the command line of the labor workspace.
//!
//! Synthesise, ingest, split and describe career panels. Later subcommands render careers as
//! text, train and score models, and evaluate them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use labor_data::atomic::{self, check_output};
use labor_data::ingest::{Format, IngestBuilder, OnError};
use labor_data::{PanelSummary, Preset, SplitterBuilder, SynthBuilder, TargetRule, Taxonomy, io};
use labor_template::DemographicFields;

mod eval;
mod finetune;
mod llm;
mod plan;
mod progress;
mod quickstart;
mod speed;
mod train;

/// Predict workers' next occupation from their career history, and measure how well.
#[derive(Parser, Debug)]
#[command(name = "labor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Draw a synthetic panel shaped like a survey, with the true probability of every state.
    Synth(SynthArgs),
    /// Read a survey file (long CSV/Parquet, NLSY79/97 wide CSV, PSID fixed width) into a panel.
    Ingest(IngestArgs),
    /// Split a panel by worker into train/valid/test Parquet files (70/10/20 by default).
    Split(SplitArgs),
    /// Keep N workers of a panel, chosen by a keyed hash of their ids (samples of growing sizes
    /// with one seed are nested: for comparisons at several training sizes).
    Sample(SampleArgs),
    /// Print counts, years, state shares and the transition rate of a panel.
    Describe(DescribeArgs),
    /// Render careers as text (resume, prompts, in-context examples) with the span of every title.
    Render(RenderArgs),
    /// Log-probability of every token of texts under a language model (GGUF or Hugging Face).
    Logprobs(llm::LogprobsArgs),
    /// Score every target of rendered texts with a language model (optionally the full distribution).
    Score(llm::ScoreArgs),
    /// Measure a language model's speed on this machine (forward tokens/s, scored transitions/s,
    /// full-distribution cost), printed as JSON.
    Speed(speed::SpeedArgs),
    /// Evaluate predictions: perplexity with bootstrap SEs, paired differences, subgroups, calibration, plots.
    Eval(eval::EvalArgs),
    /// Train CAREER or a baseline (empirical, logit, bag-of-jobs) on a panel.
    Train(train::TrainArgs),
    /// Predict every worker-year of a panel with a trained model (Parquet predictions).
    Predict(train::PredictArgs),
    /// The whole pipeline on a synthetic NLSY79-like panel: baselines, a small language model,
    /// evaluation with bootstrap standard errors against the true floor (Table 6 shape).
    Quickstart(quickstart::QuickstartArgs),
    /// Fine-tune a Llama-family model (or train the embedded default from scratch) on resumes.
    Finetune(Box<finetune::FinetuneArgs>),
    /// The memory a fine-tuning or scoring run needs on each device (weights, optimizer,
    /// activations, logits), for one configuration or a table of them; refuses a plan that
    /// does not fit `--device-memory`.
    Plan(plan::PlanArgs),
}

#[derive(clap::Args, Debug)]
struct SynthArgs {
    /// Preset: psid81, nlsy79 or nlsy97.
    #[arg(long, default_value = "nlsy79")]
    preset: Preset,
    /// Number of workers (default: the survey's sample size).
    #[arg(long)]
    workers: Option<usize>,
    /// Seed of the careers drawn.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the occupational world (keep fixed to compare seeds under one law).
    #[arg(long, default_value_t = 1990)]
    world_seed: u64,
    /// Output panel (Parquet, or JSON Lines if it ends in .jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Also write the true log-probability of every worker-year here (Parquet).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// With --truth: also write the full true distribution over all outcomes per worker-year.
    #[arg(long, requires = "truth")]
    full_distribution: bool,
}

#[derive(clap::Args, Debug)]
struct IngestArgs {
    /// Input layout: long, nlsy79, nlsy97 or psid.
    #[arg(long)]
    format: Format,
    /// The survey file.
    #[arg(long)]
    input: PathBuf,
    /// Mapping (long) or variable map (nlsy79, nlsy97, psid), TOML.
    #[arg(long)]
    mapping: PathBuf,
    /// A taxonomy CSV (code,title) instead of the built-in occ1990dd.
    #[arg(long)]
    taxonomy: Option<PathBuf>,
    /// With --taxonomy: a crosswalk CSV (source_code,target_code) from SCHEME's codes onto it,
    /// as SCHEME=FILE; repeat for several schemes.
    #[arg(long, requires = "taxonomy", value_parser = parse_named)]
    crosswalk: Vec<(String, PathBuf)>,
    /// Output panel (Parquet, or JSON Lines if it ends in .jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Write the ingestion report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// What to do with a bad row: fail (stop with an error) or drop (count it in the report).
    #[arg(long, default_value = "fail")]
    on_error: OnError,
}

#[derive(clap::Args, Debug)]
struct SampleArgs {
    /// The panel (Parquet).
    #[arg(long)]
    panel: PathBuf,
    /// Number of workers to keep.
    #[arg(long)]
    workers: usize,
    /// Seed of the keyed hash.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output panel (Parquet, or JSON Lines if it ends in .jsonl); must not be the input.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct SplitArgs {
    /// The panel (Parquet).
    #[arg(long)]
    panel: PathBuf,
    /// Seed of the keyed hash.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train, valid and test fractions.
    #[arg(long, num_args = 1..=3, value_delimiter = ',', default_values_t = [0.7, 0.1, 0.2])]
    fractions: Vec<f64>,
    /// Directory for train.parquet, valid.parquet and test.parquet.
    #[arg(long)]
    out_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct DescribeArgs {
    /// The panel (Parquet).
    #[arg(long)]
    panel: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// The panel to render (Parquet).
    #[arg(long)]
    panel: PathBuf,
    /// resume, prompt, prompt-titles, icl, icl-titles, or numbered (the resume with job_NNN titles).
    #[arg(long, default_value = "resume")]
    template: String,
    /// Replace titles by job_NNN codes (any template); `--template numbered` implies it.
    #[arg(long)]
    numbered: bool,
    /// Number of in-context example resumes.
    #[arg(long, default_value_t = 10)]
    icl_k: usize,
    /// The training split: the pool of in-context examples and of randomised demographics.
    #[arg(long)]
    train: Option<PathBuf>,
    /// Randomise these fields per worker from the training split: gender,ethnicity,region or all.
    #[arg(long)]
    randomize: Option<DemographicFields>,
    /// Which worker-years are targets: all, exclude-first, changes (moves) or stays.
    #[arg(long, default_value = "all")]
    targets: TargetRule,
    /// Write the birth-year sentence (default: in prompts, not in resumes).
    #[arg(long)]
    birth_year: Option<bool>,
    /// Seed of example draws, randomisation and the numbered-title permutation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output JSON Lines: one object per worker (one per target for per-target layouts).
    #[arg(long)]
    out: PathBuf,
}

/// `--lr`: a finite learning rate in (0, 1] (beyond 1, Adam-type updates diverge at once; a
/// value like `1e9` is a typo, not an experiment).
pub(crate) fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1.0 => Ok(x),
        Ok(x) => Err(format!("the learning rate must be in (0, 1], not {x}")),
        Err(e) => Err(e.to_string()),
    }
}

/// `NAME=FILE` (`--crosswalk SCHEME=FILE`, `--loss-curve NAME=CSV`).
pub(crate) fn parse_named(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=FILE, got `{s}`")),
    }
}

/// `f(b, v)` when an optional argument `v` is given, else `b`: a builder's `with_*` for an
/// option whose default the library decides.
pub(crate) fn opt<T, V>(b: T, v: Option<V>, f: impl FnOnce(T, V) -> T) -> T {
    match v {
        Some(v) => f(b, v),
        None => b,
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if matches!(
        cli.command,
        Command::Quickstart(_)
            | Command::Logprobs(_)
            | Command::Score(_)
            | Command::Train(_)
            | Command::Predict(_)
            | Command::Finetune(_)
    ) {
        labor_model::check_device(&burn::tensor::Device::default())?;
    }
    match cli.command {
        Command::Synth(a) => synth(&a),
        Command::Ingest(a) => ingest(&a),
        Command::Split(a) => split(&a),
        Command::Sample(a) => sample(&a),
        Command::Describe(a) => describe(&a),
        Command::Plan(a) => plan::run(&a),
        Command::Render(a) => render(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Quickstart(a) => quickstart::quickstart(&a),
        Command::Logprobs(a) => llm::logprobs(&a),
        Command::Score(a) => llm::score(&a),
        Command::Speed(a) => speed::speed(&a),
        Command::Train(a) => train::train(&a),
        Command::Predict(a) => train::predict(&a),
        Command::Finetune(a) => finetune::finetune(&a),
    }
}

fn synth(a: &SynthArgs) -> Result<()> {
    let mut b = SynthBuilder::new(a.preset)
        .with_seed(a.seed)
        .with_world_seed(a.world_seed);
    if let Some(n) = a.workers {
        b = b.with_workers(n);
    }
    if let Some(t) = &a.truth
        && atomic::same_file(t, &a.out)
    {
        bail!(
            "--truth {} is --out; write the truth to another file",
            t.display()
        );
    }
    let synth = b.build()?;
    let n = a.workers.unwrap_or(synth.spec().workers);
    let t0 = Instant::now();
    let pb = progress::bar(n as u64, "synth", "{per_sec} eta {eta}");
    let out = synth.generate_with_progress(|done| pb.set_position(done as u64));
    pb.finish_and_clear();
    io::write_panel(&out.panel, &a.out)?;
    println!(
        "wrote {} workers, {} worker-years to {} in {:.1}s; true perplexity {:.3}",
        out.panel.len(),
        out.panel.n_worker_years(),
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        out.truth.perplexity()
    );
    if let Some(path) = &a.truth {
        let truth = labor_model::TruthPredictor::new(synth.law());
        labor_model::predict_panel(&truth, &out.panel, a.full_distribution, |_| {})?
            .write_parquet(path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote the truth to {}", path.display());
    }
    Ok(())
}

fn ingest(a: &IngestArgs) -> Result<()> {
    let inputs: Vec<&Path> = [a.input.as_path(), a.mapping.as_path()]
        .into_iter()
        .chain(a.taxonomy.as_deref())
        .chain(a.crosswalk.iter().map(|(_, p)| p.as_path()))
        .collect();
    for out in std::iter::once(&a.out).chain(&a.report) {
        check_output(out, inputs.iter().copied())?;
    }
    if let Some(report) = a.report.as_ref().filter(|r| atomic::same_file(r, &a.out)) {
        bail!(
            "--report {} is --out; write the report to another file",
            report.display()
        );
    }
    let taxonomy = Taxonomy::from_files(a.taxonomy.as_deref(), &a.crosswalk)?;
    let b = IngestBuilder::new(a.format, &a.input, &a.mapping)
        .with_on_error(a.on_error)
        .with_taxonomy(Arc::new(taxonomy));
    let t0 = Instant::now();
    let out = b.build()?.run()?;
    io::write_panel(&out.panel, &a.out)?;
    let r = &out.report;
    let secs = t0.elapsed().as_secs_f64();
    println!("read {r}\nwrote {} in {secs:.2}s", a.out.display());
    if let Some(warning) = r.empty_panel_warning() {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(r)?;
        atomic::write(path, json.as_bytes())?;
        println!("report: {}", path.display());
    }
    Ok(())
}

fn split(a: &SplitArgs) -> Result<()> {
    let [train, valid, test] = a.fractions[..] else {
        bail!("--fractions takes three numbers");
    };
    let splitter = SplitterBuilder::new()
        .with_seed(a.seed)
        .with_fractions(train, valid, test)
        .build()?;
    for s in labor_data::Split::ALL {
        check_output(&a.out_dir.join(s.file_name()), [a.panel.as_path()])?;
    }
    let panel = io::read_parquet(&a.panel)?;
    let parts = splitter.split(&panel);
    parts
        .write_dir(&a.out_dir)
        .with_context(|| format!("replacing {}", a.out_dir.display()))?;
    print!("{parts}");
    println!("wrote {}", a.out_dir.display());
    for warning in parts.empty_part_warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}

fn sample(a: &SampleArgs) -> Result<()> {
    check_output(&a.out, [a.panel.as_path()])?;
    let panel = io::read_parquet(&a.panel)?;
    let part = labor_data::subsample(&panel, a.workers, a.seed)?;
    io::write_panel(&part, &a.out)?;
    println!(
        "kept {} of {} workers ({} worker-years) -> {}",
        part.len(),
        panel.len(),
        part.n_worker_years(),
        a.out.display()
    );
    Ok(())
}

fn describe(a: &DescribeArgs) -> Result<()> {
    let panel = io::read_parquet(&a.panel)?;
    let s = PanelSummary::of(&panel);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{s}");
    }
    Ok(())
}

fn render(a: &RenderArgs) -> Result<()> {
    use labor_template::{TemplateBuilder, TemplateKind};
    check_output(
        &a.out,
        std::iter::once(a.panel.as_path()).chain(a.train.as_deref()),
    )?;
    let panel = io::read_parquet(&a.panel)?;
    let (kind, numbered) = match a.template.as_str() {
        "numbered" => (TemplateKind::Resume, true),
        other => (other.parse::<TemplateKind>()?, a.numbered),
    };
    let train = match &a.train {
        Some(p) => Some(Arc::new(io::read_parquet(p)?)),
        None => None,
    };
    let mut b = TemplateBuilder::new(Arc::clone(panel.taxonomy()), kind)
        .with_targets(a.targets)
        .with_icl_examples(a.icl_k)
        .with_icl_seed(a.seed);
    if numbered {
        b = b.with_numbered_titles(a.seed);
    }
    if let Some(on) = a.birth_year {
        b = b.with_birth_year(on);
    }
    if let Some(t) = &train {
        b = b.with_icl_pool(Arc::clone(t));
    }
    if let Some(fields) = a.randomize {
        let Some(t) = &train else {
            bail!("--randomize draws from the training split: give it with --train");
        };
        b = b.with_randomization(fields, a.seed, Arc::clone(t));
    }
    let template = b.build()?;
    let docs = template.render_panel(&panel)?;
    let targets: usize = docs.iter().map(|d| d.targets.len()).sum();
    let docs = io::write_json_lines(&a.out, &docs)?;
    println!(
        "rendered {} workers as {docs} texts with {targets} targets ({}) -> {}",
        panel.len(),
        template.name(),
        a.out.display()
    );
    Ok(())
}
