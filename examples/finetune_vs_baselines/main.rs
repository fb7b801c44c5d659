//! Experiment 3 of the paper (its Table 6): the empirical transition frequencies, CAREER and a
//! fine-tuned language model on the same test workers, with paired differences.
//!
//! `cargo run --release -p labor-examples --example finetune_vs_baselines`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, LmArgs, predict, render, report, train_small_lm};
use labor_model::{LlmPredictor, ModelKind, Scorer, TrainBuilder, load_llm};
use labor_template::{TemplateBuilder, TemplateKind};

/// Empirical frequencies, CAREER and a fine-tuned language model (Table 6).
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    lm: LmArgs,
    /// A language model already fine-tuned on the training resumes (`labor finetune ... --out
    /// DIR` writes DIR/best); default: train the small model from scratch here.
    #[arg(long)]
    llm: Option<PathBuf>,
    /// Also score the language model with decoding constrained to the titles (a second row):
    /// every token renormalised over the tokens that continue some title, so the titles'
    /// probabilities sum to one as CAREER's do.
    #[arg(long)]
    constrained: bool,
    /// Output directory.
    #[arg(long, default_value = "target/examples/finetune_vs_baselines")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = args.data.load()?;
    println!(
        "train {} / valid {} / test {} workers",
        data.train.len(),
        data.valid.len(),
        data.test.len()
    );
    let mut rows = vec![];
    for kind in [ModelKind::Empirical, ModelKind::Career] {
        let t = std::time::Instant::now();
        let (model, _) = TrainBuilder::new(kind, &data.train, &data.valid)
            .with_out_dir(args.out.join(kind.name()))
            .with_overwrite(true)
            .build()?
            .run(|_| {})?;
        println!(
            "trained {} in {:.1} s",
            kind.name(),
            t.elapsed().as_secs_f64()
        );
        rows.push((kind.name().to_string(), predict(&model, &data.test)?));
    }
    let tax = data.test.taxonomy().clone();
    let resume = TemplateBuilder::new(tax.clone(), TemplateKind::Resume).build()?;
    let device = Device::default();
    let (model, tok) = match &args.llm {
        Some(dir) => {
            let (_, m, t) = load_llm(dir, &device)?;
            (m, t)
        }
        None => train_small_lm(
            render(&data.train, resume.as_ref())?,
            render(&data.valid, resume.as_ref())?,
            &args.lm,
            args.data.seed,
            &args.out.join("llm"),
        )?,
    };
    // Named for what it is: the default is a 2-layer model trained from scratch here, not a
    // pretrained LLM.
    let name = if args.llm.is_some() {
        "fine-tuned LLM"
    } else {
        "small LM from scratch"
    };
    let scorer = || Scorer::new(&model, &tok, device.clone());
    let predictor = LlmPredictor::new(name, scorer(), resume, &tax)?;
    rows.push((name.into(), predict(&predictor, &data.test)?));
    if args.constrained {
        let name = format!("{name}, constrained");
        let resume = TemplateBuilder::new(tax.clone(), TemplateKind::Resume).build()?;
        let predictor = LlmPredictor::new(name.clone(), scorer(), resume, &tax)?.constrained()?;
        rows.push((name, predict(&predictor, &data.test)?));
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
