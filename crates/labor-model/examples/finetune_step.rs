//! Times fine-tuning steps of a Llama checkpoint at the batch shape of
//! `shared/anchors/torch_llm.py train` (4 resumes × 256 tokens, AdamW, float32), full
//! fine-tuning or LoRA r8 on the q and v projections, and prints one JSON line with the median
//! step's tokens/s and the peak resident memory. `benches/finetune-vs-torch.sh` runs it beside
//! PyTorch:
//!
//! `cargo run --release -p labor-model --example finetune_step -- MODEL_DIR TOKENIZER_JSON [--lora] [--steps N]`
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use labor_data::{Preset, SynthBuilder};
use labor_model::{
    FinetuneBuilder, FinetuneOptions, LoraOptions, TextTokenizer, load_hf, render_resumes,
};
use labor_template::Document;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(tok_path)) = (args.first(), args.get(1)) else {
        bail!("usage: finetune_step MODEL_DIR TOKENIZER_JSON [--lora] [--steps N]");
    };
    let lora = args.iter().any(|a| a == "--lora");
    let steps: usize = match args.iter().position(|a| a == "--steps") {
        Some(i) => args.get(i + 1).context("--steps needs a number")?.parse()?,
        None => 4,
    };
    if steps < 2 {
        bail!("--steps must be at least 2 (the first step is warm-up)");
    }
    let panel = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(200)
        .with_seed(3)
        .build()?
        .generate()
        .panel;
    let tok = TextTokenizer::from_file(tok_path)?;
    // Resumes of at least 256 tokens, truncated to 256: every batch is 4 × 256.
    let mut docs: Vec<Document> = vec![];
    for d in render_resumes(&panel)? {
        if docs.len() == 4 * steps {
            break;
        }
        if tok.encode(&d.text)?.ids.len() >= 256 {
            docs.push(d);
        }
    }
    if docs.len() < 4 * steps {
        bail!("only {} resumes of 256 tokens or more", docs.len());
    }
    // burn's default device: the CPU (flex), or the GPU in a build with `wgpu` or `cuda`
    // (`BURN_DEVICE` picks one).
    let device = Device::default();
    let (config, model) = load_hf(dir, &device.clone().autodiff())?;
    let mut o = FinetuneOptions::default();
    o.batch_size = 4;
    o.max_tokens = Some(256);
    o.learning_rate = 1e-5;
    o.warmup_ratio = 0.0;
    if lora {
        o.lora = Some(LoraOptions::with_rank(8));
    }
    let out = std::env::temp_dir().join(format!("labor-finetune-step-{}", std::process::id()));
    let mut times = Vec::new();
    let mut last = Instant::now();
    let report = FinetuneBuilder::new(model, config, tok, PathBuf::from(&out))
        .with_train(docs)
        .with_options(o)
        .build()?
        .run(|_| {
            times.push(last.elapsed().as_secs_f64());
            last = Instant::now();
            ControlFlow::Continue(())
        })?;
    std::fs::remove_dir_all(&out).ok();
    if report.steps != steps || times.len() < 2 {
        bail!("ran {} steps instead of {steps}", report.steps);
    }
    // The first step is warm-up (allocations); the median of the others.
    let mut t: Vec<f64> = times[1..].to_vec();
    t.sort_by(f64::total_cmp);
    let med = t[t.len() / 2];
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "impl": "labor",
            "device": format!("{device:?}"),
            "lora": lora,
            "batch": 4,
            "seq": 256,
            "median_s": med,
            "tokens_per_s": 1024.0 / med,
            "all_s": times,
            "max_rss_gib": hwm_kib / 1_048_576.0,
        })
    );
    Ok(())
}
