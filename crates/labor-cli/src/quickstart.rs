//! `labor quickstart`: [`labor_pipeline::Quickstart`] with progress bars.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use indicatif::ProgressBar;
use labor_pipeline::{QuickstartBuilder, QuickstartEvent, STAGES};

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

pub fn quickstart(a: &QuickstartArgs) -> Result<()> {
    let t0 = Instant::now();
    let quickstart = QuickstartBuilder::new(&a.out)
        .with_workers(a.workers)
        .with_lm_train_docs(a.lm_train_docs)
        .with_lm_epochs(a.lm_epochs)
        .with_resamples(a.resamples)
        .with_seed(a.seed)
        .build()?;
    // One bar per task (a model training or predicting, the evaluation).
    let mut bar: Option<(String, ProgressBar)> = None;
    let report = quickstart.run(|event| match event {
        QuickstartEvent::Stage { number, what } => {
            if let Some((_, pb)) = bar.take() {
                pb.finish_and_clear();
            }
            println!(
                "[{number}/{}] {what} ({:.0} s so far)",
                STAGES.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        QuickstartEvent::Progress {
            task,
            done,
            total,
            status,
        } => {
            if bar.as_ref().is_none_or(|(t, _)| t != task) {
                if let Some((_, pb)) = bar.take() {
                    pb.finish_and_clear();
                }
                let pb = if task == "eval" {
                    crate::progress::spinner()
                } else {
                    crate::progress::bar(0, task, "{per_sec} eta {eta} {msg}")
                };
                bar = Some((task.to_string(), pb));
            }
            if let Some((_, pb)) = &bar {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
                pb.set_message(status);
            }
        }
        QuickstartEvent::Done(line) => match &bar {
            Some((_, pb)) => pb.suspend(|| println!("{line}")),
            None => println!("{line}"),
        },
    })?;
    if let Some((_, pb)) = bar {
        pb.finish_and_clear();
    }
    println!("\n{}", report.output.table());
    println!(
        "done in {:.0} s; report, metrics.json and {} plots under {}; predictions under {}",
        t0.elapsed().as_secs_f64(),
        report
            .written
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .count(),
        report.eval_dir.display(),
        report.predictions_dir.display()
    );
    Ok(())
}
