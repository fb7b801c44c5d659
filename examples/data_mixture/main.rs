//! Experiment 5 of the paper, the value of data. Setting 1: a specialist trained on the target
//! survey alone versus generalists trained on subsamples of the union of all three surveys'
//! training splits. Setting 2: the target survey plus P% extra workers from the other two. Every
//! model is evaluated on the target survey's test workers.
//!
//! `cargo run --release -p labor-examples --example data_mixture`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Parser;
use labor_data::{MixtureBuilder, Preset, SplitterBuilder, SynthBuilder};
use labor_examples::{DataArgs, LmArgs, LmSource, predict, report};
use labor_model::{LlmPredictor, Scorer};
use labor_template::{TemplateBuilder, TemplateKind};

/// Specialist versus generalist training data.
#[derive(Parser, Debug)]
struct Args {
    /// The target survey's data (its test split is the evaluation set).
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    lm: LmArgs,
    /// Fractions of the union of the three surveys (setting 1).
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    mix: Vec<f64>,
    /// Extra workers from the other surveys, as fractions of the target's size (setting 2).
    #[arg(long, value_delimiter = ',', default_value = "0.3")]
    extra: Vec<f64>,
    /// Output directory.
    #[arg(long, default_value = "target/examples/data_mixture")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if matches!(args.lm.source(), LmSource::Pretrained(_)) {
        args.data.default_test_workers(100);
    }
    let data = args.data.load()?;
    // The other two surveys, synthetic, the same size as the target.
    let target: Preset = args.data.preset.parse()?;
    let others: Vec<labor_data::Panel> = [Preset::Nlsy79, Preset::Nlsy97, Preset::Psid81]
        .into_iter()
        .filter(|p| *p != target)
        .enumerate()
        .map(|(i, p)| -> Result<labor_data::Panel> {
            let panel = SynthBuilder::new(p)
                .with_workers(args.data.workers)
                .with_seed(args.data.seed + 1 + i as u64)
                .build()?
                .generate()
                .panel;
            Ok(SplitterBuilder::new()
                .with_seed(args.data.seed)
                .build()?
                .split(&panel)
                .train)
        })
        .collect::<Result<_>>()?;
    let base = (*data.train).clone();
    let mut all = vec![base.clone()];
    all.extend(others.iter().cloned());
    let mut mixtures = vec![("specialist (target survey only)".to_string(), base.clone())];
    for f in &args.mix {
        let m = MixtureBuilder::new(all.clone())
            .with_fraction(*f)
            .with_seed(args.data.seed)
            .build()?;
        mixtures.push((format!("{:.0}% of the three surveys", f * 100.0), m));
    }
    for p in &args.extra {
        let m = MixtureBuilder::new(vec![base.clone()])
            .with_extra(others.clone(), *p)
            .with_seed(args.data.seed)
            .build()?;
        mixtures.push((format!("target + {:.0}% extra", p * 100.0), m));
    }
    let tax = data.test.taxonomy().clone();
    let template = TemplateBuilder::new(tax.clone(), TemplateKind::Resume).build()?;
    let valid = template.render_panel(&data.valid)?;
    let mut rows = vec![];
    for (i, (name, train)) in mixtures.iter().enumerate() {
        println!(
            "{name}: {} training workers ({})",
            train.len(),
            args.lm.label()
        );
        let (model, tok) = args.lm.train(
            template.render_panel(train)?,
            valid.clone(),
            args.data.seed,
            &args.out.join(format!("mix{i}")),
        )?;
        let predictor = LlmPredictor::new(
            name.clone(),
            Scorer::new(&model, &tok, Device::default()),
            TemplateBuilder::new(tax.clone(), TemplateKind::Resume).build()?,
            &tax,
        )?;
        let t = std::time::Instant::now();
        rows.push((name.clone(), predict(&predictor, &data.test)?));
        println!("scored in {:.0} s", t.elapsed().as_secs_f64());
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
