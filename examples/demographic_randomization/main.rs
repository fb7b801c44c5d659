//! Experiment 6 of the paper: how much a model uses demographics. The test workers are scored
//! as they are, and again with gender, ethnicity, region (and combinations) replaced at test
//! time by a draw from the training split; the perplexity differences are paired (same workers,
//! same bootstrap resamples).
//!
//! `cargo run --release -p labor-examples --example demographic_randomization -- --model DIR
//! --template resume --test-workers 100 --constrained`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, default_llm, report, scored};
use labor_model::{LlmPredictor, Scorer, load_llm};
use labor_template::{DemographicFields, TemplateBuilder, TemplateKind};

/// Test-time randomisation of demographic fields.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// The language model (GGUF file or Hugging Face directory; a fine-tuned model from
    /// `labor finetune` is the paper's setting); default: SmolLM2-135M.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Template: resume (for fine-tuned models) or prompt (for models not fine-tuned).
    #[arg(long, default_value = "prompt")]
    template: String,
    /// Field sets to randomise, each a comma list of gender, ethnicity, region or all.
    #[arg(long, default_values_t = ["gender".to_string(), "ethnicity".into(), "region".into(), "gender,ethnicity".into(), "all".into()])]
    randomize: Vec<String>,
    /// Decode constrained to the titles (every token renormalised over the tokens that continue
    /// some title), so that a model's probability on text that is no title does not hide the
    /// effect of the demographics.
    #[arg(long)]
    constrained: bool,
    /// Output directory for report.md and metrics.json.
    #[arg(long, default_value = "target/examples/demographic_randomization")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.data.test_workers.is_none() && args.data.test.is_none() {
        args.data.test_workers = Some(10);
    }
    let Some(path) = args.model.clone().or_else(default_llm) else {
        bail!("no model: pass --model PATH, or run scripts/fetch-smollm2 to get SmolLM2-135M");
    };
    let kind: TemplateKind = args.template.parse()?;
    let data = args.data.load()?;
    println!(
        "test split: {} workers, {} worker-years",
        data.test.len(),
        data.test.n_worker_years()
    );
    let device = Device::default();
    let (_, model, tok) = load_llm(&path, &device)?;
    let tax = data.test.taxonomy().clone();
    let mut rows = vec![];
    let mut conditions = vec![("as observed".to_string(), None)];
    for r in &args.randomize {
        conditions.push((
            format!("randomised {r}"),
            Some(r.parse::<DemographicFields>()?),
        ));
    }
    for (name, fields) in conditions {
        let mut b = TemplateBuilder::new(tax.clone(), kind);
        if let Some(f) = fields {
            b = b.with_randomization(f, args.data.seed, data.train.clone());
        }
        let predictor = LlmPredictor::new(
            name.clone(),
            Scorer::new(&model, &tok, device.clone()),
            b.build()?,
            &tax,
        )?;
        let predictor = if args.constrained {
            predictor.constrained()?
        } else {
            predictor
        };
        rows.push(scored(&predictor, &data.test)?);
    }
    report(rows, None, &data.test, &args.data, &args.out)?;
    Ok(())
}
