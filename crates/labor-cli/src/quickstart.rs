//! `labor quickstart`: the whole pipeline on the embedded synthetic default, in the shape of the
//! paper's Table 6: synthesise an NLSY79-like panel with a known truth, split it by worker, train
//! the empirical, logit and CAREER baselines and a small language model (its own BPE tokenizer,
//! with every title one token, trained from scratch on the training resumes), score the test
//! split with each, and evaluate them all with worker-level bootstrap standard errors next to the
//! true model's floor.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use labor_cli::eval::{predict_with_progress, spinner};
use labor_data::{Predictions, Preset, SynthBuilder, io};
use labor_eval::{EvalOptions, LossCurve, evaluate_predictions};
use labor_model::{
    LlmPredictor, ModelKind, Scorer, ScratchBuilder, TrainBuilder, TruthPredictor, predict_panel,
    render_resumes,
};
use labor_template::{TemplateBuilder, TemplateKind};

use crate::{DescribeArgs, SplitArgs, SynthArgs, describe, split, synth};

#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// Working directory for the files the pipeline writes.
    #[arg(long, default_value = "labor-quickstart")]
    out: PathBuf,
    /// Number of workers of the synthetic NLSY79-like panel (the survey has 12,479; the default
    /// keeps the run within minutes on a laptop CPU).
    #[arg(long, default_value_t = 4000)]
    workers: usize,
    /// Training resumes for the small language model (all of them: 0).
    #[arg(long, default_value_t = 0)]
    lm_train_docs: usize,
    /// Epochs of the small language model.
    #[arg(long, default_value_t = 2)]
    lm_epochs: usize,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(s) = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {prefix}",
    ) {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

pub fn quickstart(a: &QuickstartArgs) -> Result<()> {
    let t0 = Instant::now();
    let step = |n: usize, what: &str| {
        println!(
            "[{n}/7] {what} ({:.0} s so far)",
            t0.elapsed().as_secs_f64()
        );
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let panel_path = a.out.join("panel.parquet");
    step(
        1,
        &format!("synthesising an NLSY79-like panel of {} workers", a.workers),
    );
    synth(&SynthArgs {
        preset: "nlsy79".into(),
        workers: Some(a.workers),
        seed: a.seed,
        world_seed: 1990,
        out: panel_path.clone(),
        truth: Some(a.out.join("truth.parquet")),
        full_distribution: false,
    })?;
    step(2, "splitting by worker (70/10/20)");
    let [train_p, valid_p, test_p] = split(&SplitArgs {
        panel: panel_path,
        seed: a.seed,
        fractions: vec![0.7, 0.1, 0.2],
        out_dir: a.out.join("split"),
    })?;
    describe(&DescribeArgs {
        panel: train_p.clone(),
        json: false,
    })?;
    let read =
        |p: &PathBuf| io::read_parquet(p).with_context(|| format!("reading {}", p.display()));
    let (train, valid, test) = (read(&train_p)?, read(&valid_p)?, read(&test_p)?);
    let mut models: Vec<Predictions> = vec![];
    let mut curves: Vec<LossCurve> = vec![];

    step(3, "training the empirical, logit and CAREER baselines");
    for kind in [ModelKind::Empirical, ModelKind::Logit, ModelKind::Career] {
        let dir = a.out.join("models").join(kind.name());
        let pb = bar(0, kind.name());
        let t = Instant::now();
        // The quickstart's directory is its own: a rerun replaces its models.
        let (model, summary) = TrainBuilder::new(kind, &train, &valid)
            .with_out_dir(&dir)
            .with_overwrite(true)
            .build()?
            .run(|e| {
                pb.set_length(e.total_steps as u64);
                pb.set_position(e.step as u64);
                pb.set_prefix(format!(
                    "loss {:.3} {:.0} worker-years/s",
                    e.train_loss, e.tokens_per_second
                ));
            })?;
        pb.finish_and_clear();
        println!(
            "  {:<10} best validation loss {:.4} nats/worker-year (perplexity {:.3}), {:.1} s",
            kind.name(),
            summary.state.best_valid,
            summary.state.best_valid.exp(),
            t.elapsed().as_secs_f64()
        );
        let loss_csv = dir.join("loss.csv");
        if let Ok(text) = std::fs::read_to_string(&loss_csv)
            && let Ok(c) = LossCurve::from_csv_str(kind.name(), &text)
        {
            curves.push(c);
        }
        models.push(predict_with_progress(&model, &test, false)?);
    }

    step(
        4,
        "training a small language model from scratch on the training resumes (BPE tokenizer with every title one token + 2-layer Llama)",
    );
    let lm_dir = a.out.join("models").join("llm");
    let mut train_docs = render_resumes(&train)?;
    if a.lm_train_docs > 0 {
        train_docs.truncate(a.lm_train_docs);
    }
    let valid_docs = render_resumes(&valid)?;
    let pb = bar(0, "llm");
    // The scratch defaults, with the epochs asked for, batches of 4, and every title of the
    // taxonomy one token of the vocabulary (a title is then one prediction, as for CAREER).
    let titles = train
        .taxonomy()
        .outcomes()
        .map(|(_, o)| format!(" {}", o.title));
    let report = ScratchBuilder::new(train_docs, valid_docs, &lm_dir)
        .with_whole_tokens(titles)
        .with_epochs(a.lm_epochs)
        .with_batch_size(4)
        .with_max_valid_docs(100)
        .with_seed(a.seed)
        .with_overwrite(true)
        .build()?
        .run(|p| {
            pb.set_length(p.total_steps as u64);
            pb.set_position(p.row.step as u64);
            pb.set_prefix(format!(
                "loss {:.3} {:.0} tokens/s",
                p.row.train_loss, p.tokens_per_sec
            ));
            ControlFlow::Continue(())
        })?;
    pb.finish_and_clear();
    println!(
        "  llm        {} steps in {:.0} s; validation title perplexity {:.1} before, {:.1} after",
        report.report.steps,
        report.wall.as_secs_f64(),
        report.title_ppl_before,
        report.title_ppl_after
    );
    if let Ok(text) = std::fs::read_to_string(lm_dir.join("loss.csv"))
        && let Ok(c) = LossCurve::from_csv_str("llm (from scratch)", &text)
    {
        curves.push(c);
    }

    step(5, "scoring the test split with the language model");
    let template =
        TemplateBuilder::new(Arc::clone(test.taxonomy()), TemplateKind::Resume).build()?;
    let predictor = LlmPredictor::new(
        "llm (from scratch)",
        Scorer::new(&report.report.model, &report.tokenizer, Device::default()),
        template,
        test.taxonomy(),
    )?;
    models.push(predict_with_progress(&predictor, &test, false)?);

    step(
        6,
        "the true career law on the test split: the perplexity floor",
    );
    let truth = SynthBuilder::new(Preset::Nlsy79)
        .with_world_seed(1990)
        .build()?;
    let floor = predict_panel(&TruthPredictor::new(truth.law()), &test, false, |_| {})?;
    models.push(floor);
    for p in &models {
        let file = a.out.join("predictions").join(format!(
            "{}.parquet",
            p.model().replace([' ', '(', ')'], "_")
        ));
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        p.write_parquet(&file)?;
    }

    step(
        7,
        "evaluating every model with worker-level bootstrap standard errors",
    );
    let pb = spinner();
    let out = evaluate_predictions(
        &models,
        Some(&test),
        &EvalOptions {
            resamples: a.resamples,
            seed: a.seed,
            loss_curves: curves,
            ..EvalOptions::default()
        },
        |s| pb.set_message(s.to_string()),
    )?;
    pb.finish_and_clear();
    let eval_dir = a.out.join("eval");
    let written = out.write_dir(&eval_dir)?;
    println!("\n{}", out.table());
    println!(
        "done in {:.0} s; report, metrics.json and {} plots under {}; predictions under {}",
        t0.elapsed().as_secs_f64(),
        written
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .count(),
        eval_dir.display(),
        a.out.join("predictions").display()
    );
    Ok(())
}
