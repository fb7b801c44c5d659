//! Building a [`Llama`] from a GGUF checkpoint.
//!
//! llama.cpp's converter permutes the rows of the query and key projections of every head from
//! the Hugging Face "rotate-half" layout to the interleaved layout its RoPE uses
//! (`reshape(n_head, 2, head_dim / 2, ·).swapaxes(1, 2)`); this loader undoes that permutation,
//! so the model runs the same rotate-half RoPE for both checkpoint formats.

use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use crate::checkpoint::consistency::{self, Naming};
use crate::checkpoint::gguf::{GgufFile, GgufValue};
use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::model::{Llama, linear_weight};
use crate::tokenize::tokenizer::TextTokenizer;

/// Undoes llama.cpp's query/key row permutation on a `[n_heads · head_dim, d_in]` weight.
/// A weight whose size does not factor that way (or an even head width) is returned unchanged.
pub fn unpermute_qk_rows(w: &[f32], n_heads: usize, d_in: usize) -> Vec<f32> {
    if d_in == 0
        || n_heads == 0
        || !w.len().is_multiple_of(d_in * n_heads)
        || !(w.len() / d_in / n_heads).is_multiple_of(2)
    {
        return w.to_vec();
    }
    let rows = w.len() / d_in;
    let hd = rows / n_heads;
    let half = hd / 2;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_heads {
        for i in 0..half {
            for j in 0..2 {
                let src = h * hd + 2 * i + j;
                let dst = h * hd + j * half + i;
                out[dst * d_in..(dst + 1) * d_in].copy_from_slice(&w[src * d_in..(src + 1) * d_in]);
            }
        }
    }
    out
}

fn meta_u64(f: &GgufFile, key: &str) -> Result<u64> {
    f.get(key)
        .and_then(GgufValue::as_u64)
        .ok_or_else(|| Error::MissingMetadata {
            path: f.path().to_path_buf(),
            key: key.to_string(),
            expected: "non-negative integer",
        })
}

/// The configuration of a model named by a preset of [`LlamaConfig::presets`], a Hugging Face
/// directory (its `config.json`) or a GGUF file (its metadata); no weights are read.
///
/// ```
/// let c = labor_model::llm_config("smollm2-135m").unwrap();
/// assert_eq!(c.n_layers, 30);
/// assert!(labor_model::llm_config("no-such-model").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidOption`] for a name that is none of these; the readers' errors.
pub fn llm_config(model: &str) -> Result<LlamaConfig> {
    if let Some(c) = LlamaConfig::preset(model) {
        return Ok(c);
    }
    let path = Path::new(model);
    if path.is_dir() {
        return LlamaConfig::from_hf_config_file(path.join("config.json"));
    }
    if path.is_file() {
        return gguf_config(&GgufFile::open(path)?);
    }
    let names: Vec<&str> = LlamaConfig::presets().into_iter().map(|(n, _)| n).collect();
    Err(Error::InvalidOption {
        name: "model",
        detail: format!(
            "`{model}` is neither a preset ({}) nor a GGUF file or model directory",
            names.join(", ")
        ),
    })
}

/// The model configuration a GGUF file describes (architecture `llama`).
///
/// # Errors
/// [`Error::MissingMetadata`], [`Error::MissingTensor`] (the token embeddings give the
/// vocabulary size), or [`Error::UnsupportedConfig`].
pub fn gguf_config(f: &GgufFile) -> Result<LlamaConfig> {
    let arch = f
        .get("general.architecture")
        .and_then(GgufValue::as_str)
        .ok_or_else(|| Error::MissingMetadata {
            path: f.path().to_path_buf(),
            key: "general.architecture".into(),
            expected: "string",
        })?;
    if arch != "llama" {
        return Err(Error::UnsupportedConfig {
            field: "general.architecture",
            detail: format!("`{arch}` is not supported (llama is)"),
        });
    }
    let k = |s: &str| format!("{arch}.{s}");
    let n_heads = meta_u64(f, &k("attention.head_count"))? as usize;
    let embed = f
        .tensor_info("token_embd.weight")
        .ok_or_else(|| Error::MissingTensor {
            path: f.path().to_path_buf(),
            tensor: "token_embd.weight".into(),
        })?;
    let vocab = embed.dims.first().copied().unwrap_or(0);
    let c = LlamaConfig::new(
        meta_u64(f, &k("embedding_length"))? as usize,
        meta_u64(f, &k("block_count"))? as usize,
        n_heads,
        f.get(&k("attention.head_count_kv"))
            .and_then(GgufValue::as_u64)
            .map_or(n_heads, |v| v as usize),
        meta_u64(f, &k("feed_forward_length"))? as usize,
        vocab,
    )
    .with_max_seq_len(
        f.get(&k("context_length"))
            .and_then(GgufValue::as_u64)
            .unwrap_or(2048) as usize,
    )
    .with_rope_theta(
        f.get(&k("rope.freq_base"))
            .and_then(GgufValue::as_f64)
            .unwrap_or(10_000.0),
    )
    .with_norm_eps(
        f.get(&k("attention.layer_norm_rms_epsilon"))
            .and_then(GgufValue::as_f64)
            .unwrap_or(1e-5),
    )
    .with_tie_embeddings(f.tensor_info("output.weight").is_none());
    // Llama-3 scaling, as llama.cpp's converter stores it: one divisor per rotary frequency.
    let c = if f.tensor_info("rope_freqs.weight").is_some() {
        let (dims, v) = f.read_f32("rope_freqs.weight")?;
        let half = c.head_dim() / 2;
        if dims != [half] {
            return Err(Error::TensorShape {
                path: f.path().to_path_buf(),
                tensor: "rope_freqs.weight".into(),
                expected: vec![half],
                found: dims,
            });
        }
        c.with_rope_freq_factors(Some(v.into_iter().map(f64::from).collect()))
    } else {
        c
    };
    c.validate()?;
    Ok(c)
}

/// Loads a Llama model from a GGUF file onto `device`, dequantising every tensor to f32 from a
/// memory map of the file (which must not be modified or truncated during the load; see
/// [`GgufFile::open`]).
///
/// The layers and tensor shapes the metadata declares are checked against the file's tensor
/// table before the model is allocated.
///
/// # Errors
/// [`Error::Io`], [`Error::Gguf`], [`Error::MissingTensor`], [`Error::TensorShape`],
/// [`Error::Inconsistent`] (a layer count the tensors contradict),
/// [`Error::UnsupportedTensorType`], or as [`gguf_config`].
pub fn load_gguf(path: impl AsRef<Path>, device: &Device) -> Result<(LlamaConfig, Llama)> {
    load_gguf_file(&GgufFile::open(path)?, device)
}

/// [`load_gguf`] from an opened file (so that [`load_llm`] maps the file once for the weights
/// and the tokenizer).
fn load_gguf_file(f: &GgufFile, device: &Device) -> Result<(LlamaConfig, Llama)> {
    let config = gguf_config(f)?;
    consistency::check_llama(
        f.path(),
        &config,
        Naming::Gguf,
        f.tensors().iter().map(|t| t.name.as_str()),
        |name| Ok(f.tensor_info(name).map(|t| t.dims.clone())),
    )?;
    let mut model = config.init(device);
    let (d, hd) = (config.d_model, config.head_dim());
    let read = |name: &str, expected: &[usize]| -> Result<Vec<f32>> {
        let (dims, v) = f.read_f32(name)?;
        if dims != expected {
            return Err(Error::TensorShape {
                path: f.path().to_path_buf(),
                tensor: name.to_string(),
                expected: expected.to_vec(),
                found: dims,
            });
        }
        Ok(v)
    };
    let vector = |name: &str| -> Result<Param<Tensor<1>>> {
        let v = read(name, &[d])?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(v, [d]),
            device,
        )))
    };
    // A `[out, in]` weight becomes burn's `[in, out]` Linear weight.
    let linear = |v: Vec<f32>, out: usize, inp: usize| linear_weight(&v, out, inp, device);
    let embed = read("token_embd.weight", &[config.vocab_size, d])?;
    model.embed.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(embed, [config.vocab_size, d]),
        device,
    ));
    model.norm.gamma = vector("output_norm.weight")?;
    if let Some(head) = model.lm_head.as_mut() {
        head.weight = linear(
            read("output.weight", &[config.vocab_size, d])?,
            config.vocab_size,
            d,
        );
    }
    let (q_out, kv_out) = (config.n_heads * hd, config.n_kv_heads * hd);
    for (i, block) in model.layers.iter_mut().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        block.attn_norm.gamma = vector(&n("attn_norm"))?;
        block.ffn_norm.gamma = vector(&n("ffn_norm"))?;
        let q = unpermute_qk_rows(&read(&n("attn_q"), &[q_out, d])?, config.n_heads, d);
        let k = unpermute_qk_rows(&read(&n("attn_k"), &[kv_out, d])?, config.n_kv_heads, d);
        block.attn.wq.weight = linear(q, q_out, d);
        block.attn.wk.weight = linear(k, kv_out, d);
        block.attn.wv.weight = linear(read(&n("attn_v"), &[kv_out, d])?, kv_out, d);
        block.attn.wo.weight = linear(read(&n("attn_output"), &[d, q_out])?, d, q_out);
        block.ffn.gate.weight = linear(read(&n("ffn_gate"), &[config.d_ff, d])?, config.d_ff, d);
        block.ffn.up.weight = linear(read(&n("ffn_up"), &[config.d_ff, d])?, config.d_ff, d);
        block.ffn.down.weight = linear(read(&n("ffn_down"), &[d, config.d_ff])?, d, config.d_ff);
    }
    Ok((config, model))
}

/// A model and its tokenizer, loaded from a GGUF file (tokenizer from its metadata) or a Hugging
/// Face directory (`config.json`, safetensors weights, `tokenizer.json`).
///
/// # Errors
/// As [`load_gguf`] and [`crate::load_hf`]; [`Error::Io`] for a directory without
/// `tokenizer.json`; [`Error::TokenizerMismatch`] when the tokenizer has more tokens than the
/// model's embedding rows.
pub fn load_llm(
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<(LlamaConfig, Llama, TextTokenizer)> {
    let path = path.as_ref();
    let (config, model, tokenizer) = if path.is_dir() {
        let tok_path = path.join("tokenizer.json");
        if !tok_path.is_file() {
            return Err(Error::Io {
                path: tok_path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "a Hugging Face model directory needs tokenizer.json",
                ),
            });
        }
        let (config, model) = crate::checkpoint::hf::load_hf(path, device)?;
        (config, model, TextTokenizer::from_file(&tok_path)?)
    } else {
        let f = GgufFile::open(path)?;
        let (config, model) = load_gguf_file(&f, device)?;
        let tokenizer = TextTokenizer::from_gguf(&f)?;
        (config, model, tokenizer)
    };
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::TokenizerMismatch {
            path: path.to_path_buf(),
            tokenizer_vocab: tokenizer.vocab_size(),
            model_vocab: config.vocab_size,
        });
    }
    Ok((config, model, tokenizer))
}
