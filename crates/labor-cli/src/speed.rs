//! `labor speed`: how fast a language model runs here (forward pass, scoring, full distribution),
//! printed as one JSON object so that a script can set it beside the PyTorch reference.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Int, Tensor};
use labor_data::Taxonomy;
use labor_model::{Scorer, load_llm};
use labor_template::{Document, TemplateBuilder, TemplateKind};

#[derive(clap::Args, Debug)]
pub struct SpeedArgs {
    /// forward (random tokens: forward pass + log-softmax), score (every target of rendered
    /// texts), or distribution (every title for the first targets of rendered texts).
    mode: String,
    /// The model: a GGUF file or a Hugging Face directory.
    #[arg(long)]
    model: PathBuf,
    /// Rendered texts (`labor render`), for score and distribution.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Workers of the texts used (score), or targets (distribution).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Sequences per forward pass (forward).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Tokens per sequence (forward).
    #[arg(long, default_value_t = 512)]
    seq: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Backend: flex (the CPU default, with labor-model's CPU kernels unless
    /// `LABOR_CPU_KERNELS=0`), ndarray (CPU, `ndarray` feature), wgpu (GPU through
    /// Vulkan/Metal/DX12, `wgpu` feature) or cuda (NVIDIA GPU, `cuda` feature).
    #[arg(long, default_value = "flex")]
    backend: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, Vec<f64>)> {
    f()?; // warm-up
    let mut ts = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    Ok((median(ts.clone()), ts))
}

fn read_docs(path: &PathBuf, limit: usize) -> Result<Vec<Document>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut docs = vec![];
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        if docs.len() == limit {
            break;
        }
        let line = line?;
        docs.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}: line {}", path.display(), i + 1))?,
        );
    }
    Ok(docs)
}

pub fn speed(a: &SpeedArgs) -> Result<()> {
    let device = match a.backend.as_str() {
        "flex" => Device::flex(),
        // Deprecated upstream (removed in burn 0.23); kept for backend comparisons.
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Device::new(burn::backend::NdArrayDevice::Cpu),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => {
            let mut built = vec!["flex"];
            let mut missing = vec![];
            for (name, on) in [
                ("ndarray", cfg!(feature = "ndarray")),
                ("wgpu", cfg!(feature = "wgpu")),
                ("cuda", cfg!(feature = "cuda")),
            ] {
                if on {
                    built.push(name);
                } else {
                    missing.push(format!("{name} needs `--features {name}`"));
                }
            }
            bail!(
                "backend `{other}` is not built in (built: {}{}{})",
                built.join(", "),
                if missing.is_empty() { "" } else { "; " },
                missing.join(", ")
            )
        }
    };
    crate::check_device(&device)?;
    let (config, model, tok) =
        load_llm(&a.model, &device).with_context(|| format!("loading {}", a.model.display()))?;
    let scorer = Scorer::new(&model, &tok, device.clone());
    let mut out = serde_json::json!({
        "mode": a.mode,
        "model": a.model.display().to_string(),
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
        "backend": a.backend,
        "cpu_kernels": a.backend == "flex" && labor_model::cpu_kernels(),
    });
    match a.mode.as_str() {
        "forward" => {
            // Seeded pseudo-random ids (xorshift), as the reference draws random ids.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let ids: Vec<i32> = (0..a.batch * a.seq)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % config.vocab_size as u64) as i32
                })
                .collect();
            let (med, ts) = timed(a.runs, || {
                let t =
                    Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([a.batch, a.seq]);
                let s: f32 = model.next_token_log_probs(t).sum().into_scalar();
                if !s.is_finite() {
                    bail!("non-finite log-probabilities");
                }
                Ok(())
            })?;
            let tokens = (a.batch * a.seq) as f64;
            out["batch"] = a.batch.into();
            out["seq"] = a.seq.into();
            out["median_s"] = med.into();
            out["all_s"] = ts.into();
            out["tokens_per_s"] = (tokens / med).into();
            // Matmul work per token: every projection (2 flops per weight), the output head,
            // and attention's two products (averaged over causal positions).
            let (d, hd) = (config.d_model as f64, config.head_dim() as f64);
            let per_layer = 2.0
                * (d * (config.n_heads as f64 * hd) * 2.0
                    + d * (config.n_kv_heads as f64 * hd) * 2.0
                    + 3.0 * d * config.d_ff as f64);
            let attn = 2.0 * 2.0 * config.n_heads as f64 * hd * (a.seq as f64 / 2.0);
            let head = 2.0 * d * config.vocab_size as f64;
            let flops = tokens * (config.n_layers as f64 * (per_layer + attn) + head);
            out["gflop_per_s"] = (flops / med / 1e9).into();
        }
        "score" => {
            let Some(texts) = &a.texts else {
                bail!("score needs --texts");
            };
            let docs = read_docs(texts, a.limit)?;
            let n: usize = docs.iter().map(|d| d.targets.len()).sum();
            let (med, ts) = timed(a.runs, || {
                scorer.score_documents(&docs)?;
                Ok(())
            })?;
            out["workers"] = docs.len().into();
            out["targets"] = n.into();
            out["median_s"] = med.into();
            out["all_s"] = ts.into();
            out["transitions_per_s"] = (n as f64 / med).into();
        }
        "distribution" => {
            let Some(texts) = &a.texts else {
                bail!("distribution needs --texts");
            };
            let docs = read_docs(texts, usize::MAX)?;
            let template = TemplateBuilder::new(
                std::sync::Arc::new(Taxonomy::occ1990dd()),
                TemplateKind::Resume,
            )
            .build()?;
            let conts = Taxonomy::occ1990dd()
                .outcomes()
                .map(|(id, _)| template.continuation(id))
                .collect::<Result<Vec<_>, _>>()?;
            // `limit` targets spread evenly over all of them, so that the prompts have the
            // lengths of a whole evaluation (early and late years alike).
            let all: Vec<(&Document, usize)> = docs
                .iter()
                .flat_map(|d| (0..d.targets.len()).map(move |k| (d, k)))
                .collect();
            let take = a.limit.clamp(1, all.len().max(1));
            let targets: Vec<(&Document, usize)> = (0..take)
                .filter_map(|i| all.get(i * all.len() / take).copied())
                .collect();
            let mut prompt_tokens = 0usize;
            for (d, k) in &targets {
                prompt_tokens += tok.encode(d.prompt(&d.targets[*k]))?.ids.len();
            }
            // The true title alone, with its own prompt (the usual approach), per target.
            let (alone, _) = timed(a.runs, || {
                for (d, k) in &targets {
                    let t = &d.targets[*k];
                    scorer.continuation_log_probs(d.prompt(t), &[d.continuation(t).to_string()])?;
                }
                Ok(())
            })?;
            let (full, ts) = timed(a.runs.min(2), || {
                for (d, k) in &targets {
                    scorer.distribution(d.prompt(&d.targets[*k]), &conts)?;
                }
                Ok(())
            })?;
            out["targets"] = targets.len().into();
            out["titles"] = conts.len().into();
            out["mean_prompt_tokens"] = (prompt_tokens as f64 / targets.len().max(1) as f64).into();
            out["true_title_alone_s_per_target"] = (alone / targets.len() as f64).into();
            out["full_distribution_s_per_target"] = (full / targets.len() as f64).into();
            out["all_s"] = ts.into();
            out["cost_ratio"] = (full / alone).into();
        }
        other => bail!("unknown mode `{other}`: forward, score or distribution"),
    }
    println!("{out}");
    Ok(())
}
