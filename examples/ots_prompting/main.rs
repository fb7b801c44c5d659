//! Experiment 1 of the paper: language models that were *not* fine-tuned on careers, prompted
//! with a worker's history, without and with the list of valid job titles in the prompt.
//!
//! `cargo run --release -p labor-examples --example ots_prompting -- --test-workers 10`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, default_llm, report, scored};
use labor_model::{LlmPredictor, Scorer, load_llm};
use labor_template::{TemplateBuilder, TemplateKind};

/// Off-the-shelf language models on prompts without and with the list of titles.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// Language models (GGUF files or Hugging Face directories); default: SmolLM2-135M from
    /// `scripts/fetch-smollm2`.
    #[arg(long)]
    model: Vec<PathBuf>,
    /// Also score every model and prompt with decoding constrained to the titles (a row each):
    /// every token renormalised over the tokens that continue some title.
    #[arg(long)]
    constrained: bool,
    /// Output directory for report.md and metrics.json.
    #[arg(long, default_value = "target/examples/ots_prompting")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.data.test_workers.is_none() && args.data.test.is_none() {
        args.data.test_workers = Some(10);
    }
    let models = if args.model.is_empty() {
        match default_llm() {
            Some(p) => vec![p],
            None => bail!(
                "no model: pass --model PATH, or run scripts/fetch-smollm2 to get SmolLM2-135M"
            ),
        }
    } else {
        args.model.clone()
    };
    let data = args.data.load()?;
    println!(
        "test split: {} workers, {} worker-years",
        data.test.len(),
        data.test.n_worker_years()
    );
    let device = Device::default();
    let mut rows = vec![];
    for path in &models {
        let (_, model, tok) = load_llm(path, &device)?;
        let stem = labor_model::model_name(path);
        for (kind, label) in [
            (TemplateKind::Prompt, "prompt"),
            (TemplateKind::PromptWithTitles, "prompt + list of titles"),
        ] {
            let decodings: &[bool] = if args.constrained {
                &[false, true]
            } else {
                &[false]
            };
            for &constrained in decodings {
                let template = TemplateBuilder::new(data.test.taxonomy().clone(), kind).build()?;
                let name = if constrained {
                    format!("{stem}, {label}, constrained")
                } else {
                    format!("{stem}, {label}")
                };
                let predictor = LlmPredictor::new(
                    name.clone(),
                    Scorer::new(&model, &tok, device.clone()),
                    template,
                    data.test.taxonomy(),
                )?;
                let predictor = if constrained {
                    predictor.constrained()?
                } else {
                    predictor
                };
                rows.push(scored(&predictor, &data.test)?);
            }
        }
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
