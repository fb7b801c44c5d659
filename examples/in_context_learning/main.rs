//! Experiment 2 of the paper: in-context learning. The same language model scores the test
//! workers with 0 and with K (default 10) complete careers of *training* workers written before
//! the prompt.
//!
//! `cargo run --release -p labor-examples --example in_context_learning -- --test-workers 5`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, default_llm, report, scored};
use labor_model::{LlmPredictor, Scorer, load_llm};
use labor_template::{IclSampling, TemplateBuilder, TemplateKind};

/// A language model with 0 versus K in-context example careers.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// The language model (GGUF file or Hugging Face directory); default: SmolLM2-135M from
    /// `scripts/fetch-smollm2`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Example careers in the prompt.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Draw new examples for every target (the paper's setting; one forward pass per target)
    /// instead of one set per worker shared by its targets.
    #[arg(long)]
    per_target: bool,
    /// Output directory for report.md and metrics.json.
    #[arg(long, default_value = "target/examples/in_context_learning")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.data.test_workers.is_none() && args.data.test.is_none() {
        args.data.test_workers = Some(5);
    }
    let Some(path) = args.model.clone().or_else(default_llm) else {
        bail!("no model: pass --model PATH, or run scripts/fetch-smollm2 to get SmolLM2-135M");
    };
    let data = args.data.load()?;
    println!(
        "test split: {} workers, {} worker-years; {} training workers to draw examples from",
        data.test.len(),
        data.test.n_worker_years(),
        data.train.len()
    );
    let device = Device::default();
    let (_, model, tok) = load_llm(&path, &device)?;
    let tax = data.test.taxonomy().clone();
    let mut rows = vec![];
    for k in [0, args.k] {
        let template = if k == 0 {
            TemplateBuilder::new(tax.clone(), TemplateKind::Prompt).build()?
        } else {
            TemplateBuilder::new(tax.clone(), TemplateKind::Icl { with_titles: false })
                .with_icl_examples(k)
                .with_icl_pool(data.train.clone())
                .with_icl_seed(args.data.seed)
                .with_icl_sampling(if args.per_target {
                    IclSampling::PerTarget
                } else {
                    IclSampling::PerWorker
                })
                .build()?
        };
        let name = format!("{k} examples");
        let predictor = LlmPredictor::new(
            name.clone(),
            Scorer::new(&model, &tok, device.clone()),
            template,
            &tax,
        )?;
        rows.push(scored(&predictor, &data.test)?);
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
