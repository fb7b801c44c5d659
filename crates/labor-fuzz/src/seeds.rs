//! The seed corpus: the repository's fixtures for the text formats, and small files written
//! by the crates' own writers for the binary ones (a GGUF file has no writer in the crates, so
//! a minimal one is here).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use labor_data::ingest::{Format, IngestBuilder, OnError};
use labor_data::{Prediction, Predictions, io};
use labor_model::gguf::{GgufTensor, GgufValue, write_gguf};
use labor_model::{
    CareerConfig, LlamaConfig, SeqPredictor, SeqVocab, TrainedModel, save_hf, save_model,
};

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Writes the seed corpus under `root` (normally [`crate::corpus_root`]), one folder per
/// target, from the fixtures in `fixtures` (normally [`crate::fixtures_root`]), and returns the
/// files written.
///
/// # Errors
/// I/O errors naming the file, or an error of the writers used.
pub fn write_seeds(root: &Path, fixtures: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    for (target, rel) in [
        ("long-csv", "long/panel.csv"),
        ("long-mapping", "long/mapping.toml"),
        ("nlsy79-csv", "nlsy79/extract.csv"),
        ("nlsy79-variables", "nlsy79/variables.toml"),
        ("psid-fixed-width", "psid/individual.txt"),
        ("taxonomy-csv", "taxonomy/toy.csv"),
        ("tokenizer-json", "models/tiny-bpe/tokenizer.json"),
    ] {
        let name = Path::new(rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = fixtures.join(rel);
        let bytes = std::fs::read(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        put(target, &name, &bytes)?;
    }

    let scratch = std::env::temp_dir().join(format!("labor-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    // A panel from the long fixture, as Parquet and JSON Lines.
    let long = fixtures.join("long");
    let panel = IngestBuilder::new(
        Format::Long,
        long.join("panel.csv"),
        long.join("mapping.toml"),
    )
    .with_on_error(OnError::Drop)
    .build()
    .and_then(|i| i.run())
    .map_err(other)?
    .panel;
    for (target, name) in [
        ("panel-parquet", "panel.parquet"),
        ("panel-jsonl", "panel.jsonl"),
    ] {
        let path = scratch.join(name);
        if name.ends_with("parquet") {
            io::write_parquet(&panel, &path).map_err(other)?;
        } else {
            io::write_jsonl(&panel, &path).map_err(other)?;
        }
        put(target, name, &std::fs::read(&path)?)?;
    }
    // Predictions of the first workers, one file with full distributions and one without.
    let n_states = panel.taxonomy().len();
    for (name, with_probs) in [
        ("log-probs.parquet", false),
        ("distributions.parquet", true),
    ] {
        let mut preds = Predictions::new("seed", panel.taxonomy().clone());
        for w in panel.workers().iter().take(3) {
            for (i, r) in w.records.iter().enumerate() {
                preds
                    .push(Prediction {
                        worker_id: w.id.clone(),
                        year: r.year,
                        position: i as u32,
                        state: r.state,
                        previous: i.checked_sub(1).map(|j| w.records[j].state),
                        log_prob: -(n_states as f64).ln(),
                        weight: Some(1.5),
                        probs: with_probs.then(|| vec![1.0 / n_states as f32; n_states]),
                    })
                    .map_err(other)?;
            }
        }
        let path = scratch.join(name);
        preds.write_parquet(&path).map_err(other)?;
        put("predictions-parquet", name, &std::fs::read(&path)?)?;
    }
    // A tiny Llama as GGUF (with a byte-level BPE vocabulary) and as a Hugging Face directory.
    let config = LlamaConfig::new(16, 1, 2, 1, 24, 20).with_tie_embeddings(true);
    put("gguf", "tiny.gguf", &tiny_gguf(&config))?;
    let hf = scratch.join("hf");
    save_hf(&config.init(&Device::default()), &config, &hf).map_err(other)?;
    put(
        "hf-config",
        "config.json",
        &std::fs::read(hf.join("config.json"))?,
    )?;
    put(
        "safetensors",
        "model.safetensors",
        &std::fs::read(hf.join("model.safetensors"))?,
    )?;
    // A tiny CAREER model directory.
    let career = CareerConfig::new(SeqVocab::new(5, 2000, 2003))
        .with_n_layers(1)
        .with_d_model(4)
        .with_n_heads(2)
        .with_d_ff(8)
        .with_max_seq_len(16);
    let model = career.init(&Device::default());
    let dir = scratch.join("career");
    save_model(
        &TrainedModel::Career(SeqPredictor::new(model, "career", 16), career),
        "test",
        None,
        &dir,
    )
    .map_err(other)?;
    put(
        "career-model-json",
        "model.json",
        &std::fs::read(dir.join("model.json"))?,
    )?;
    put(
        "career-weights",
        "model.bpk",
        &std::fs::read(dir.join("model.bpk"))?,
    )?;
    std::fs::remove_dir_all(&scratch).ok();
    Ok(written)
}

/// A GGUF v3 file of a Llama with `config` (tied embeddings, f32 weights of a fixed pattern)
/// and a byte-level BPE tokenizer of `config.vocab_size` tokens.
fn tiny_gguf(config: &LlamaConfig) -> Vec<u8> {
    let (d, ff, v) = (config.d_model, config.d_ff, config.vocab_size);
    let hd = config.head_dim();
    let (q, kv) = (config.n_heads * hd, config.n_kv_heads * hd);
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("token_embd.weight".into(), vec![v, d]),
        ("output_norm.weight".into(), vec![d]),
    ];
    for i in 0..config.n_layers {
        for (name, dims) in [
            ("attn_norm", vec![d]),
            ("ffn_norm", vec![d]),
            ("attn_q", vec![q, d]),
            ("attn_k", vec![kv, d]),
            ("attn_v", vec![kv, d]),
            ("attn_output", vec![d, q]),
            ("ffn_gate", vec![ff, d]),
            ("ffn_up", vec![ff, d]),
            ("ffn_down", vec![d, ff]),
        ] {
            tensors.push((format!("blk.{i}.{name}.weight"), dims));
        }
    }
    // Single characters, then merges of the first pairs.
    let mut tokens: Vec<String> = (b'a'..)
        .take(v - 2)
        .map(|c| (c as char).to_string())
        .collect();
    tokens.extend(["ab".to_string(), "cd".to_string()]);
    let merges = ["a b", "c d"];
    let u32v = |x: usize| GgufValue::U32(x as u32);
    let strs = |items: &[&str]| {
        GgufValue::Array(
            items
                .iter()
                .map(|s| GgufValue::String(s.to_string()))
                .collect(),
        )
    };
    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let meta = [
        ("general.architecture", GgufValue::String("llama".into())),
        ("llama.embedding_length", u32v(d)),
        ("llama.block_count", u32v(config.n_layers)),
        ("llama.attention.head_count", u32v(config.n_heads)),
        ("llama.attention.head_count_kv", u32v(config.n_kv_heads)),
        ("llama.feed_forward_length", u32v(ff)),
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strs(&token_refs)),
        ("tokenizer.ggml.merges", strs(&merges)),
    ];
    // Norm weights 1, matrices a fixed pattern.
    let data: Vec<Vec<f32>> = tensors
        .iter()
        .enumerate()
        .map(|(k, (_, dims))| {
            let n: usize = dims.iter().product();
            (0..n)
                .map(|i| {
                    if dims.len() == 1 {
                        1.0
                    } else {
                        (((i * 7 + k * 13) % 17) as f32 - 8.0) * 0.02
                    }
                })
                .collect()
        })
        .collect();
    let tensors: Vec<GgufTensor<'_>> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), data)| GgufTensor { name, shape, data })
        .collect();
    write_gguf(&meta, &tensors).expect("a well-formed GGUF")
}
