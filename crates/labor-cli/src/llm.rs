//! `labor logprobs` and `labor score`: language models on text.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use labor_data::atomic::check_output;
use labor_data::{Taxonomy, io};
use labor_model::{Scorer, ShardedScoring, TextTokenizer, load_llm, score_texts_sharded};
use labor_template::Document;

use crate::progress;

#[derive(clap::Args, Debug)]
pub struct LogprobsArgs {
    /// The model: a GGUF file or a Hugging Face directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// JSON Lines, one `{"text": ...}` per line.
    #[arg(long)]
    input: PathBuf,
    /// JSON Lines, one `{"tokens": [...], "logprobs": [null, ...]}` per input line.
    #[arg(long)]
    output: PathBuf,
    /// Prepend the tokenizer's BOS token (when it has one).
    #[arg(long)]
    bos: bool,
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// The model: a GGUF file or a Hugging Face directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Rendered texts, as `labor render` writes them (JSON Lines with worker_id, text, targets).
    #[arg(long)]
    texts: PathBuf,
    /// Output predictions (Parquet): one row per target.
    #[arg(long)]
    out: PathBuf,
    /// Also compute the model's probability of every title of the taxonomy for each target
    /// (one trie pass per target), the mass on valid titles and the top 5.
    #[arg(long)]
    full_distribution: bool,
    /// Score as decoding constrained to the taxonomy's titles: each token's probability is
    /// renormalised over the tokens that continue some title, so the titles' probabilities sum
    /// to one (no mass on text that is not a title). Same cost as free scoring.
    #[arg(long)]
    constrained: bool,
    /// The texts use numbered titles (`job_NNN`) drawn with this seed (`labor render --numbered --seed S`).
    #[arg(long)]
    numbered_seed: Option<u64>,
    /// A taxonomy CSV (code,title) instead of the built-in occ1990dd.
    #[arg(long)]
    taxonomy: Option<PathBuf>,
    /// Name of the model in the predictions file (default: the model file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Padded tokens per forward pass.
    #[arg(long, default_value_t = 4096)]
    batch_tokens: usize,
    /// Score on these devices at once, each a shard of the texts (comma-separated: `flex`,
    /// `cuda:0,cuda:1`, `wgpu:0`; default: the default device); the file equals one device's.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
}

fn load(path: &Path) -> Result<(labor_model::Llama, TextTokenizer)> {
    let t = Instant::now();
    let (config, model, tok) = load_llm(path, &Device::default())
        .with_context(|| format!("loading {}", path.display()))?;
    eprintln!(
        "loaded {} ({} layers, d_model {}, vocab {}) in {:.1} s",
        path.display(),
        config.n_layers,
        config.d_model,
        config.vocab_size,
        t.elapsed().as_secs_f64()
    );
    Ok((model, tok))
}

pub fn logprobs(a: &LogprobsArgs) -> Result<()> {
    check_output(&a.output, [a.input.as_path(), a.model.as_path()])?;
    let lines = io::read_json_lines::<serde_json::Value>(&a.input)?;
    let (model, tok) = load(&a.model)?;
    let tok = tok.with_bos(a.bos);
    let scorer = Scorer::new(&model, &tok, Device::default());
    let pb = progress::bar(lines.len() as u64, "logprobs", "{msg} eta {eta}");
    let start = Instant::now();
    let mut tokens = 0usize;
    let mut rows = Vec::with_capacity(lines.len());
    for (n, v) in &lines {
        let Some(text) = v.get("text").and_then(|t| t.as_str()) else {
            bail!("{}: line {n}: no \"text\" string", a.input.display());
        };
        let (ids, lps) = scorer
            .token_log_probs(text)
            .with_context(|| format!("{}: line {n} ({})", a.input.display(), a.model.display()))?;
        tokens += ids.len();
        rows.push(serde_json::json!({"tokens": ids, "logprobs": lps}));
        pb.inc(1);
        pb.set_message(format!(
            "{:.0} tok/s",
            tokens as f64 / start.elapsed().as_secs_f64()
        ));
    }
    pb.finish_and_clear();
    io::write_json_lines(&a.output, rows)?;
    eprintln!(
        "{} texts, {tokens} tokens in {:.1} s ({:.0} tokens/s) -> {}",
        lines.len(),
        start.elapsed().as_secs_f64(),
        tokens as f64 / start.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

pub fn score(a: &ScoreArgs) -> Result<()> {
    let taxonomy = Arc::new(Taxonomy::from_files(a.taxonomy.as_deref(), &[])?);
    let inputs = [a.texts.as_path(), a.model.as_path()];
    check_output(&a.out, inputs.into_iter().chain(a.taxonomy.as_deref()))?;
    let docs: Vec<Document> = io::read_json_lines(&a.texts)
        .with_context(|| format!("{}: not rendered texts", a.texts.display()))?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let how = ShardedScoring {
        batch_tokens: a.batch_tokens,
        ..ShardedScoring::over_titles(
            &taxonomy,
            a.numbered_seed,
            a.constrained,
            a.full_distribution,
        )?
    };
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| labor_model::model_name(&a.model));
    let n_targets: usize = docs.iter().map(|d| d.targets.len()).sum();
    let devices = labor_model::devices_or_default(&a.devices)?;
    let pb = progress::bar(n_targets as u64, "score", "{msg} eta {eta}");
    let start = Instant::now();
    let progress = |done: usize, tokens: usize| {
        pb.set_position(done as u64);
        pb.set_message(format!(
            "{:.0} tok/s",
            tokens as f64 / start.elapsed().as_secs_f64()
        ));
    };
    let scores = score_texts_sharded(&a.model, &docs, &name, &taxonomy, &devices, &how, &progress)
        .with_context(|| format!("scoring with {}", a.model.display()))?;
    pb.finish_and_clear();
    scores
        .predictions
        .write_parquet(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{n_targets} targets in {} texts ({} tokens) in {secs:.1} s: {:.1} targets/s, \
         {:.0} tokens/s; {} -> {}",
        docs.len(),
        scores.tokens,
        n_targets as f64 / secs,
        scores.tokens as f64 / secs,
        scores.summary(a.constrained.then_some(how.constrained_to.len())),
        a.out.display()
    );
    Ok(())
}
