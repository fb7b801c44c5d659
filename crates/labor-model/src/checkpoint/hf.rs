//! Building a [`Llama`] from a Hugging Face checkpoint directory: `config.json` plus
//! `model.safetensors`, or shards listed in `model.safetensors.index.json`; tensors in f32, f16
//! or bf16 (converted to f32 on load). Pickle files are never read.
//!
//! Each safetensors file is memory-mapped once per load and its header parsed from the map;
//! tensors are converted to f32 straight from the mapped bytes (no heap copy of a shard), and
//! a converted tensor's pages are handed back to the kernel. The files must not be modified or
//! truncated during the load (see [`load_hf`]).
//!
//! Hugging Face stores a linear layer's weight as `[out, in]` and uses the rotate-half RoPE
//! layout this crate runs, so weights load without permutation (transposed to burn's `[in, out]`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::Deserialize;

use crate::checkpoint::consistency::{self, Naming};
use crate::checkpoint::mapped;
use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::model::{Llama, linear_weight};

#[derive(Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

/// One safetensors file, memory-mapped, with its parsed header.
struct Shard {
    path: PathBuf,
    map: Mmap,
    /// Offset of the data section (8 bytes of header length plus the JSON header).
    data_start: usize,
    metadata: Metadata,
}

impl Shard {
    /// Maps `path` and parses its header from the map (`read_metadata` checks that the tensors'
    /// byte ranges tile the data section, which ends at the end of the file).
    fn open(path: PathBuf) -> Result<Self> {
        let map = mapped::map_file(&path)?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| Error::Safetensors {
                path: path.clone(),
                tensor: None,
                detail: e.to_string(),
            })?;
        let data_start = header_len.saturating_add(8);
        Ok(Self {
            path,
            map,
            data_start,
            metadata,
        })
    }
}

/// The safetensors files of a checkpoint directory, each mapped once, on first use.
struct Checkpoint {
    dir: PathBuf,
    /// Tensor name → file name.
    map: BTreeMap<String, String>,
    /// File name → mapped file.
    files: BTreeMap<String, Shard>,
}

impl Checkpoint {
    fn open(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut files = BTreeMap::new();
        let map = if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
                path: index.clone(),
                source,
            })?;
            let idx: Index = serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
                path: index.clone(),
                source,
            })?;
            idx.weight_map
        } else if single.is_file() {
            let shard = Shard::open(single)?;
            let map = shard
                .metadata
                .tensors()
                .into_keys()
                .map(|n| (n, "model.safetensors".to_string()))
                .collect();
            files.insert("model.safetensors".to_string(), shard);
            map
        } else {
            return Err(Error::Io {
                path: single,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors nor model.safetensors.index.json",
                ),
            });
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            map,
            files,
        })
    }

    /// The shard holding tensor `name`, mapped on first use; `None` if no file is listed for it.
    fn shard(&mut self, name: &str) -> Result<Option<&Shard>> {
        let Some(file) = self.map.get(name) else {
            return Ok(None);
        };
        Ok(Some(match self.files.entry(file.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Shard::open(self.dir.join(file))?),
        }))
    }

    /// The shape of tensor `name` as its shard's header gives it (`None` if no file is listed
    /// for it; [`Error::Safetensors`] naming the shard if the listed file lacks it).
    fn shape(&mut self, name: &str) -> Result<Option<Vec<usize>>> {
        let Some(shard) = self.shard(name)? else {
            return Ok(None);
        };
        match shard.metadata.info(name) {
            Some(info) => Ok(Some(info.shape.clone())),
            None => Err(Error::Safetensors {
                path: shard.path.clone(),
                tensor: Some(name.to_string()),
                detail: SafeTensorError::TensorNotFound(name.to_string()).to_string(),
            }),
        }
    }

    /// Reads tensor `name` as f32 with its shape, converting straight from the mapped file.
    fn read(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let dir = self.dir.clone();
        let shard = self.shard(name)?.ok_or_else(|| Error::MissingTensor {
            path: dir,
            tensor: name.to_string(),
        })?;
        let err = |detail: String| Error::Safetensors {
            path: shard.path.clone(),
            tensor: Some(name.to_string()),
            detail,
        };
        let info = shard
            .metadata
            .info(name)
            .ok_or_else(|| err(SafeTensorError::TensorNotFound(name.to_string()).to_string()))?;
        // `read_metadata` validated the offsets against the file's length; check again before
        // slicing so that no header can make this read out of bounds.
        let (s, e) = info.data_offsets;
        let range = shard
            .data_start
            .checked_add(s)
            .zip(shard.data_start.checked_add(e));
        let Some(data) = range.and_then(|(s, e)| shard.map.get(s..e)) else {
            return Err(err(format!(
                "data bytes {s}..{e} run past the end of the file ({} bytes)",
                shard.map.len()
            )));
        };
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(err(format!(
                    "dtype {other:?} is not supported (f32, f16, bf16 are)"
                )));
            }
        };
        if let Some((s, e)) = range {
            mapped::release(&shard.map, s, e - s);
        }
        Ok((info.shape.clone(), values))
    }
}

/// Loads a Llama model from a Hugging Face checkpoint directory onto `device`.
///
/// The safetensors files are memory-mapped (each once) and converted to f32 from the map, so
/// loading needs no heap copy of a shard. They must not be modified or truncated while the
/// load runs: a concurrent write would change the weights read, and a truncation would make
/// reading the lost bytes kill the process with `SIGBUS`. A file that is short or corrupt from
/// the start gives [`Error::Safetensors`].
///
/// The layers and tensor shapes `config.json` declares are checked against the safetensors
/// headers before the model is allocated.
///
/// # Errors
/// [`Error::Io`], [`Error::ConfigJson`], [`Error::UnsupportedConfig`], [`Error::Safetensors`]
/// naming file and tensor, [`Error::MissingTensor`], [`Error::TensorShape`] or
/// [`Error::Inconsistent`] (a layer count the tensors contradict).
pub fn load_hf(dir: impl AsRef<Path>, device: &Device) -> Result<(LlamaConfig, Llama)> {
    let dir = dir.as_ref();
    let config = LlamaConfig::from_hf_config_file(dir.join("config.json"))?;
    let mut ck = Checkpoint::open(dir)?;
    let names: Vec<String> = ck.map.keys().cloned().collect();
    consistency::check_llama(
        dir,
        &config,
        Naming::Hf,
        names.iter().map(String::as_str),
        |name| ck.shape(name),
    )?;
    let mut model = config.init(device);
    let (d, hd) = (config.d_model, config.head_dim());
    let mut read = |name: &str, expected: &[usize]| -> Result<Vec<f32>> {
        let (dims, v) = ck.read(name)?;
        if dims != expected {
            return Err(Error::TensorShape {
                path: dir.to_path_buf(),
                tensor: name.to_string(),
                expected: expected.to_vec(),
                found: dims,
            });
        }
        Ok(v)
    };
    let vector =
        |v: Vec<f32>| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [d]), device));
    let linear = |v: Vec<f32>, out: usize, inp: usize| linear_weight(&v, out, inp, device);
    let embed = read("model.embed_tokens.weight", &[config.vocab_size, d])?;
    model.embed.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(embed, [config.vocab_size, d]),
        device,
    ));
    model.norm.gamma = vector(read("model.norm.weight", &[d])?);
    if let Some(head) = model.lm_head.as_mut() {
        head.weight = linear(
            read("lm_head.weight", &[config.vocab_size, d])?,
            config.vocab_size,
            d,
        );
    }
    let (q_out, kv_out) = (config.n_heads * hd, config.n_kv_heads * hd);
    for (i, block) in model.layers.iter_mut().enumerate() {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        block.attn_norm.gamma = vector(read(&n("input_layernorm"), &[d])?);
        block.ffn_norm.gamma = vector(read(&n("post_attention_layernorm"), &[d])?);
        block.attn.wq.weight = linear(read(&n("self_attn.q_proj"), &[q_out, d])?, q_out, d);
        block.attn.wk.weight = linear(read(&n("self_attn.k_proj"), &[kv_out, d])?, kv_out, d);
        block.attn.wv.weight = linear(read(&n("self_attn.v_proj"), &[kv_out, d])?, kv_out, d);
        block.attn.wo.weight = linear(read(&n("self_attn.o_proj"), &[d, q_out])?, d, q_out);
        block.ffn.gate.weight = linear(
            read(&n("mlp.gate_proj"), &[config.d_ff, d])?,
            config.d_ff,
            d,
        );
        block.ffn.up.weight = linear(read(&n("mlp.up_proj"), &[config.d_ff, d])?, config.d_ff, d);
        block.ffn.down.weight = linear(
            read(&n("mlp.down_proj"), &[d, config.d_ff])?,
            d,
            config.d_ff,
        );
    }
    Ok((config, model))
}

/// Writes `model` as a Hugging Face checkpoint directory: `config.json` and a float32
/// `model.safetensors` with Hugging Face tensor names and layouts, readable by [`load_hf`] and
/// by transformers' `LlamaForCausalLM.from_pretrained`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Safetensors`]; [`Error::UnsupportedConfig`] for a configuration
/// with GGUF-style `rope_freq_factors`, which `config.json` cannot express.
pub fn save_hf(model: &Llama, config: &LlamaConfig, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    if config.rope_freq_factors.is_some() {
        return Err(Error::UnsupportedConfig {
            field: "rope_freq_factors",
            detail: "config.json cannot hold per-frequency RoPE divisors (GGUF's rope_freqs); \
                     give the model its `rope_scaling` parameters instead"
                .into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut push = |name: String, t: TensorData| {
        let shape = t.shape().to_vec();
        let bytes = t.iter::<f32>().flat_map(f32::to_le_bytes).collect();
        tensors.push((name, shape, bytes));
    };
    // burn's [in, out] Linear weights go back to [out, in].
    let lin = |p: &Param<Tensor<2>>| p.val().transpose().into_data();
    push(
        "model.embed_tokens.weight".into(),
        model.embed.weight.val().into_data(),
    );
    push(
        "model.norm.weight".into(),
        model.norm.gamma.val().into_data(),
    );
    if let Some(head) = &model.lm_head {
        push("lm_head.weight".into(), lin(&head.weight));
    }
    for (i, b) in model.layers.iter().enumerate() {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        push(n("input_layernorm"), b.attn_norm.gamma.val().into_data());
        push(
            n("post_attention_layernorm"),
            b.ffn_norm.gamma.val().into_data(),
        );
        push(n("self_attn.q_proj"), lin(&b.attn.wq.weight));
        push(n("self_attn.k_proj"), lin(&b.attn.wk.weight));
        push(n("self_attn.v_proj"), lin(&b.attn.wv.weight));
        push(n("self_attn.o_proj"), lin(&b.attn.wo.weight));
        push(n("mlp.gate_proj"), lin(&b.ffn.gate.weight));
        push(n("mlp.up_proj"), lin(&b.ffn.up.weight));
        push(n("mlp.down_proj"), lin(&b.ffn.down.weight));
    }
    let path = dir.join("model.safetensors");
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Safetensors {
                    path: path.clone(),
                    tensor: Some(n.clone()),
                    detail: e.to_string(),
                })
        })
        .collect::<Result<_>>()?;
    let tmp = dir.join("model.safetensors.tmp");
    safetensors::serialize_to_file(views, None, &tmp).map_err(|e| Error::Safetensors {
        path: tmp.clone(),
        tensor: None,
        detail: e.to_string(),
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let mut cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_seq_len,
        "rope_theta": config.rope_theta,
        "rms_norm_eps": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    });
    if let Some(s) = &config.rope_scaling {
        cfg["rope_scaling"] = serde_json::json!({
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        });
    }
    let cfg_path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&cfg).map_err(|source| Error::ConfigJson {
        path: cfg_path.clone(),
        source,
    })?;
    std::fs::write(&cfg_path, text).map_err(|source| Error::Io {
        path: cfg_path,
        source,
    })
}
