//! Experiment 3 of the paper (its Table 6): the empirical transition frequencies, the logit,
//! CAREER and a fine-tuned language model (by default SmolLM2-135M with LoRA, when fetched) on
//! the same test workers, with paired differences.
//!
//! `cargo run --release -p labor-examples --example finetune_vs_baselines -- --constrained`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, LmArgs, LmSource, fmt_prob, kept_mass, predict, report};
use labor_model::{LlmPredictor, ModelKind, Scorer, TrainBuilder, load_llm};
use labor_template::{TemplateBuilder, TemplateKind};

/// Empirical frequencies, the logit, CAREER and a fine-tuned language model (Table 6).
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    lm: LmArgs,
    /// A language model already fine-tuned on the training resumes (`labor finetune ... --out
    /// DIR` writes DIR/best); default: fine-tune here as the LM options say (SmolLM2-135M with
    /// LoRA when fetched, else the small model from scratch).
    #[arg(long, conflicts_with_all = ["base", "scratch"])]
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
    let mut args = Args::parse();
    if args.llm.is_some() || matches!(args.lm.source(), LmSource::Pretrained(_)) {
        // Scoring with a pretrained-size model takes about a minute per 1,000 targets here.
        args.data.default_test_workers(100);
    }
    let data = args.data.load()?;
    println!(
        "train {} / valid {} / test {} workers",
        data.train.len(),
        data.valid.len(),
        data.test.len()
    );
    let mut rows = vec![];
    for kind in [ModelKind::Empirical, ModelKind::Logit, ModelKind::Career] {
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
        None => args.lm.train(
            resume.render_panel(&data.train)?,
            resume.render_panel(&data.valid)?,
            args.data.seed,
            &args.out.join("llm"),
        )?,
    };
    // Named for what it is: a pretrained model fine-tuned here, one fine-tuned before, or the
    // 2-layer model trained from scratch.
    let name = if args.llm.is_some() {
        "fine-tuned LLM".to_string()
    } else {
        args.lm.label()
    };
    let name = name.as_str();
    let scorer = || Scorer::new(&model, &tok, device.clone());
    let t = std::time::Instant::now();
    let predictor = LlmPredictor::new(name, scorer(), resume, &tax)?;
    let free = predict(&predictor, &data.test)?;
    println!("scored {name} in {:.0} s", t.elapsed().as_secs_f64());
    let kept = rows.len();
    rows.push((name.into(), free));
    if args.constrained {
        let name = format!("{name}, constrained");
        let t = std::time::Instant::now();
        let resume = TemplateBuilder::new(tax.clone(), TemplateKind::Resume).build()?;
        let predictor = LlmPredictor::new(name.clone(), scorer(), resume, &tax)?.constrained()?;
        let constrained = predict(&predictor, &data.test)?;
        println!(
            "scored {name} in {:.0} s; the free model keeps {} of its probability on \
             tokens that continue some title along the true titles (geometric mean)",
            t.elapsed().as_secs_f64(),
            fmt_prob(kept_mass(&rows[kept].1, &constrained)?)
        );
        rows.push((name, constrained));
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
