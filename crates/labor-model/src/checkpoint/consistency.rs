//! Checks that a checkpoint agrees with itself before anything is allocated.
//!
//! A checkpoint declares its sizes twice: in its configuration (GGUF metadata, `config.json`,
//! `model.json`) and in the table of tensors it holds. The loaders compare the two before they
//! build a model, so an edited or corrupt configuration is an error naming what disagrees, not
//! an allocation sized by the configuration alone (one edited `num_hidden_layers` used to ask
//! for terabytes): once the check passes, every buffer the model allocates has a tensor of the
//! same size in the file, whose bytes were checked to lie inside it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;

/// How a checkpoint format names a Llama's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// llama.cpp's GGUF names (`blk.0.attn_q.weight`).
    Gguf,
    /// Hugging Face names (`model.layers.0.self_attn.q_proj.weight`).
    Hf,
}

impl Naming {
    /// The prefix of layer `i`'s tensors, without the index.
    fn layer_prefix(self) -> &'static str {
        match self {
            Self::Gguf => "blk.",
            Self::Hf => "model.layers.",
        }
    }

    /// The layer index a tensor name belongs to, if it is a layer tensor.
    fn layer_of(self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(self.layer_prefix())?;
        let (index, _) = rest.split_once('.')?;
        index.parse().ok()
    }
}

/// Every tensor a Llama with `config` reads from a checkpoint, with its row-major shape
/// (`[out, in]` for projections, as both formats store them).
pub(crate) fn llama_tensors(config: &LlamaConfig, naming: Naming) -> Vec<(String, Vec<usize>)> {
    let (d, hd, ff, vocab) = (
        config.d_model,
        config.head_dim(),
        config.d_ff,
        config.vocab_size,
    );
    let (q_out, kv_out) = (config.n_heads * hd, config.n_kv_heads * hd);
    let (embed, norm, head) = match naming {
        Naming::Gguf => ("token_embd.weight", "output_norm.weight", "output.weight"),
        Naming::Hf => (
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
        ),
    };
    let mut out = vec![
        (embed.to_string(), vec![vocab, d]),
        (norm.to_string(), vec![d]),
    ];
    if !config.tie_embeddings {
        out.push((head.to_string(), vec![vocab, d]));
    }
    let layer: [(&str, &str, [usize; 2]); 9] = [
        ("attn_norm", "input_layernorm", [d, 0]),
        ("ffn_norm", "post_attention_layernorm", [d, 0]),
        ("attn_q", "self_attn.q_proj", [q_out, d]),
        ("attn_k", "self_attn.k_proj", [kv_out, d]),
        ("attn_v", "self_attn.v_proj", [kv_out, d]),
        ("attn_output", "self_attn.o_proj", [d, q_out]),
        ("ffn_gate", "mlp.gate_proj", [ff, d]),
        ("ffn_up", "mlp.up_proj", [ff, d]),
        ("ffn_down", "mlp.down_proj", [d, ff]),
    ];
    for i in 0..config.n_layers {
        for (gguf, hf, shape) in &layer {
            let name = match naming {
                Naming::Gguf => format!("blk.{i}.{gguf}.weight"),
                Naming::Hf => format!("model.layers.{i}.{hf}.weight"),
            };
            let shape = if shape[1] == 0 {
                vec![shape[0]]
            } else {
                shape.to_vec()
            };
            out.push((name, shape));
        }
    }
    out
}

/// Checks a Llama configuration against the tensors of its checkpoint at `path`: the layers
/// the file holds (the distinct layer indices among `names`) must be the layers
/// the configuration declares, and every tensor the model reads must be present with the
/// shape the configuration implies (`shape_of` gives a tensor's row-major shape, `None` when
/// absent). Runs before the model is allocated.
///
/// # Errors
/// [`Error::Inconsistent`] for a layer count that differs, [`Error::MissingTensor`],
/// [`Error::TensorShape`], or what `shape_of` returns.
pub(crate) fn check_llama<'a>(
    path: &Path,
    config: &LlamaConfig,
    naming: Naming,
    names: impl IntoIterator<Item = &'a str>,
    mut shape_of: impl FnMut(&str) -> Result<Option<Vec<usize>>>,
) -> Result<()> {
    // Distinct layer indices, so that the count is bounded by the file's tensor table (a
    // gap in the indices is a missing tensor below).
    let found = names
        .into_iter()
        .filter_map(|n| naming.layer_of(n))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    let declared = config.n_layers as u64;
    if found != declared {
        return Err(Error::Inconsistent {
            path: path.to_path_buf(),
            what: "transformer layers",
            declared,
            found,
        });
    }
    for (name, expected) in llama_tensors(config, naming) {
        match shape_of(&name)? {
            None => {
                return Err(Error::MissingTensor {
                    path: path.to_path_buf(),
                    tensor: name,
                });
            }
            Some(found) if found != expected => {
                return Err(Error::TensorShape {
                    path: path.to_path_buf(),
                    tensor: name,
                    expected,
                    found,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks a burn weights file (`model.bpk`) against the number of parameters its
/// `model.json` declares, before the model is allocated: the tensors the file's table lists
/// must hold exactly `declared` values, and their bytes must fit in the file.
///
/// # Errors
/// [`Error::Checkpoint`] if the file cannot be read or its table is impossible,
/// [`Error::Inconsistent`] if the counts differ.
pub(crate) fn check_record(path: &Path, declared: u64) -> Result<()> {
    use burn::store::{BurnpackStore, ModuleStore};
    let checkpoint_err = |detail: String| Error::Checkpoint {
        path: path.to_path_buf(),
        detail,
    };
    let len = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let tensors = store
        .get_all_tensors()
        .map_err(|e| checkpoint_err(e.to_string()))?;
    let mut values = 0u64;
    let mut bytes = 0u64;
    for t in tensors.values() {
        let n = t
            .shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d as u64));
        let b = n.and_then(|n| n.checked_mul(t.dtype.size() as u64));
        match (n, b) {
            (Some(n), Some(b)) => {
                values = values.saturating_add(n);
                bytes = bytes.saturating_add(b);
            }
            _ => {
                return Err(checkpoint_err(format!(
                    "tensor `{}` has impossible shape {:?}",
                    t.name,
                    t.shape.as_slice()
                )));
            }
        }
    }
    if bytes > len {
        return Err(checkpoint_err(format!(
            "its tensors declare {bytes} bytes of data, more than the file's {len}"
        )));
    }
    if values != declared {
        return Err(Error::Inconsistent {
            path: path.to_path_buf(),
            what: "parameters",
            declared,
            found: values,
        });
    }
    Ok(())
}

/// Parameters of an embedding table.
pub(crate) fn embedding_params(rows: usize, width: usize) -> u64 {
    (rows as u64).saturating_mul(width as u64)
}

/// Parameters of a linear layer.
pub(crate) fn linear_params(d_in: usize, d_out: usize, bias: bool) -> u64 {
    (d_in as u64)
        .saturating_mul(d_out as u64)
        .saturating_add(if bias { d_out as u64 } else { 0 })
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::Device;

    use super::*;
    use crate::{BagOfJobsConfig, CareerConfig, LogitConfig, SeqVocab};

    #[test]
    fn parameter_counts_computed_without_allocating_equal_the_initialised_models() {
        let device = Device::default();
        for (n_states, years) in [(1, (2000, 2000)), (9, (1979, 2018)), (335, (1980, 2020))] {
            let vocab = SeqVocab::new(n_states, years.0, years.1);
            for c in [
                CareerConfig::small(vocab.clone()),
                CareerConfig::paper(vocab.clone()),
                CareerConfig::new(vocab.clone())
                    .with_n_layers(3)
                    .with_d_model(12)
                    .with_n_heads(3)
                    .with_d_ff(20),
            ] {
                assert_eq!(c.num_params(), c.init(&device).num_params() as u64);
            }
            let logit = LogitConfig::new(vocab.clone());
            assert_eq!(logit.num_params(), logit.init(&device).num_params() as u64);
            for d in [8, 64] {
                let bag = BagOfJobsConfig::new(vocab.clone()).with_d_embed(d);
                assert_eq!(bag.num_params(), bag.init(&device).num_params() as u64);
            }
        }
    }

    #[test]
    fn layer_indices_are_read_from_both_namings() {
        assert_eq!(Naming::Gguf.layer_of("blk.12.attn_q.weight"), Some(12));
        assert_eq!(Naming::Gguf.layer_of("token_embd.weight"), None);
        assert_eq!(
            Naming::Hf.layer_of("model.layers.3.mlp.up_proj.weight"),
            Some(3)
        );
        assert_eq!(Naming::Hf.layer_of("model.layers.x.mlp.weight"), None);
        assert_eq!(Naming::Hf.layer_of("model.norm.weight"), None);
    }

    /// [`check_llama`] of `config` against the tensor table `tensors`.
    fn check_against(
        path: &str,
        config: &LlamaConfig,
        naming: Naming,
        tensors: &[(String, Vec<usize>)],
    ) -> Result<()> {
        check_llama(
            Path::new(path),
            config,
            naming,
            tensors.iter().map(|(n, _)| n.as_str()),
            |name| Ok(tensors.iter().find(|(n, _)| n == name).map(|t| t.1.clone())),
        )
    }

    #[test]
    fn a_layer_count_that_differs_from_the_tensors_is_named() {
        let config = LlamaConfig::new(8, 3, 2, 2, 16, 10);
        let tensors = llama_tensors(&LlamaConfig::new(8, 2, 2, 2, 16, 10), Naming::Gguf);
        let err = check_against("m.gguf", &config, Naming::Gguf, &tensors).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.gguf: transformer layers: the configuration declares 3, the file holds 2"
        );
    }

    #[test]
    fn a_width_that_differs_from_the_tensors_is_a_shape_error() {
        let config = LlamaConfig::new(8, 1, 2, 2, 16, 10);
        let tensors = llama_tensors(&LlamaConfig::new(8, 1, 2, 2, 32, 10), Naming::Hf);
        let err = check_against("dir", &config, Naming::Hf, &tensors).unwrap_err();
        assert!(
            matches!(&err, Error::TensorShape { tensor, expected, found, .. }
                if tensor == "model.layers.0.mlp.gate_proj.weight"
                    && expected == &[16, 8] && found == &[32, 8]),
            "{err}"
        );
    }
}
