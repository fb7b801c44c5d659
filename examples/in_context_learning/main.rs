//! Experiment 2 of the paper: in-context learning. The same language model scores the test
//! workers with 0 and with K (default 3) complete careers of *training* workers written before
//! the prompt, with free decoding and (`--constrained`) with decoding constrained to the titles.
//!
//! `cargo run --release -p labor-examples --example in_context_learning -- --constrained`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, default_llm, fmt_prob, kept_mass, report, scored};
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
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Draw new examples for every target (the paper's setting; one forward pass per target)
    /// instead of one set per worker shared by its targets.
    #[arg(long)]
    per_target: bool,
    /// Also score with decoding constrained to the titles (a row per prompt): every token
    /// renormalised over the tokens that continue some title, so that the titles' probabilities
    /// sum to one; prints the probability the free model keeps on the titles.
    #[arg(long)]
    constrained: bool,
    /// Output directory for report.md and metrics.json.
    #[arg(long, default_value = "target/examples/in_context_learning")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    args.data.default_test_workers(50);
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
        let template = || {
            if k == 0 {
                TemplateBuilder::new(tax.clone(), TemplateKind::Prompt).build()
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
                    .build()
            }
        };
        let name = format!("{k} examples");
        let scorer = || Scorer::new(&model, &tok, device.clone());
        let free = scored(
            &LlmPredictor::new(name.clone(), scorer(), template()?, &tax)?,
            &data.test,
        )?;
        if args.constrained {
            let constrained = scored(
                &LlmPredictor::new(format!("{name}, constrained"), scorer(), template()?, &tax)?
                    .constrained()?,
                &data.test,
            )?;
            println!(
                "{name}: the free model keeps {} of its probability on tokens that continue \
                 some title along the true titles (geometric mean over targets)",
                fmt_prob(kept_mass(&free.1, &constrained.1)?)
            );
            rows.push(free);
            rows.push(constrained);
        } else {
            rows.push(free);
        }
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
