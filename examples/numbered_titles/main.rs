//! Experiment 4 of the paper: the same pretrained language model (by default SmolLM2-135M,
//! fine-tuned with LoRA) fine-tuned on resumes whose titles are English versus numbered codes
//! (`job_032`), each scored on the test workers with its own rendering.
//!
//! `cargo run --release -p labor-examples --example numbered_titles`
//! (see README.md next to this file).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Parser;
use labor_examples::{DataArgs, LmArgs, LmSource, predict, report};
use labor_model::{LlmPredictor, Scorer};
use labor_template::{TemplateBuilder, TemplateKind};

/// English titles versus numbered titles.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    lm: LmArgs,
    /// Output directory.
    #[arg(long, default_value = "target/examples/numbered_titles")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if matches!(args.lm.source(), LmSource::Pretrained(_)) {
        args.data.default_test_workers(100);
    }
    let data = args.data.load()?;
    let tax = data.test.taxonomy().clone();
    let mut rows = vec![];
    for numbered in [false, true] {
        let name = if numbered {
            "numbered titles (job_NNN)"
        } else {
            "English titles"
        };
        let build = || {
            let b = TemplateBuilder::new(tax.clone(), TemplateKind::Resume);
            if numbered {
                b.with_numbered_titles(args.data.seed).build()
            } else {
                b.build()
            }
        };
        let template = build()?;
        println!("{name} ({}):", args.lm.label());
        let (model, tok) = args.lm.train(
            template.render_panel(&data.train)?,
            template.render_panel(&data.valid)?,
            args.data.seed,
            &args.out.join(if numbered { "numbered" } else { "english" }),
        )?;
        let predictor = LlmPredictor::new(
            name,
            Scorer::new(&model, &tok, Device::default()),
            build()?,
            &tax,
        )?;
        let t = std::time::Instant::now();
        rows.push((name.to_string(), predict(&predictor, &data.test)?));
        println!("scored in {:.0} s", t.elapsed().as_secs_f64());
    }
    report(rows, data.truth.as_ref(), &data.test, &args.data, &args.out)?;
    Ok(())
}
