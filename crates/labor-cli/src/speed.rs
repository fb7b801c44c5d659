//! `labor speed`: how fast a language model runs here (forward pass, scoring, full distribution),
//! printed as one JSON object so that a script can set it beside the PyTorch reference.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use labor_data::Taxonomy;
use labor_model::{
    Scorer, distribution_speed, forward_speed, load_llm, scoring_speed, title_continuations,
};
use labor_template::Document;

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

pub fn speed(a: &SpeedArgs) -> Result<()> {
    let device = labor_model::device_named(&a.backend)?;
    labor_model::check_device(&device)?;
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
    let texts = || {
        a.texts
            .as_ref()
            .with_context(|| format!("{} needs --texts", a.mode))
    };
    let measured = match a.mode.as_str() {
        "forward" => serde_json::to_value(forward_speed(
            &model,
            &config,
            &device,
            [a.batch, a.seq],
            a.runs,
        )?)?,
        "score" => {
            let docs = read_docs(texts()?, a.limit)?;
            serde_json::to_value(scoring_speed(&scorer, &docs, a.runs)?)?
        }
        "distribution" => {
            let docs = read_docs(texts()?, usize::MAX)?;
            let titles = title_continuations(&std::sync::Arc::new(Taxonomy::occ1990dd()), None)?;
            serde_json::to_value(distribution_speed(
                &scorer, &docs, &titles, a.limit, a.runs,
            )?)?
        }
        other => bail!("unknown mode `{other}`: forward, score or distribution"),
    };
    if let (Some(out), serde_json::Value::Object(m)) = (out.as_object_mut(), measured) {
        out.extend(m);
    }
    println!("{out}");
    Ok(())
}

fn read_docs(path: &std::path::Path, limit: usize) -> Result<Vec<Document>> {
    let docs = labor_data::io::read_json_lines::<Document>(path)?;
    Ok(docs.into_iter().take(limit).map(|(_, d)| d).collect())
}
