//! Llama-family configurations: presets and Hugging Face `config.json`.

use std::path::Path;

use burn::config::Config;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Llama-3 frequency scaling of rotary embeddings (`rope_type = "llama3"` in `config.json`).
#[derive(Config, Debug, PartialEq)]
pub struct RopeScaling {
    /// Factor by which low frequencies are divided.
    pub factor: f64,
    /// Wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled.
    pub low_freq_factor: f64,
    /// Wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// Context length the model was pretrained with.
    pub original_max_position_embeddings: usize,
}

/// Sizes and constants of a Llama-architecture causal language model.
#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Number of query heads.
    pub n_heads: usize,
    /// Number of key/value heads (grouped-query attention; equal to `n_heads` for MHA).
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU feed-forward network.
    pub d_ff: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the positions support.
    #[config(default = 2048)]
    pub max_seq_len: usize,
    /// Base of the rotary embedding frequencies.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Llama-3 frequency scaling, if any.
    #[config(default = "None")]
    pub rope_scaling: Option<RopeScaling>,
    /// Per-frequency divisors of the rotary frequencies (`head_dim / 2` of them), as GGUF files
    /// store Llama-3 scaling (the `rope_freqs.weight` tensor of llama.cpp's converter). When
    /// given, they replace `rope_scaling`.
    #[config(default = "None")]
    pub rope_freq_factors: Option<Vec<f64>>,
    /// Epsilon of the RMS norms.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Whether the output head shares the token embedding matrix.
    #[config(default = false)]
    pub tie_embeddings: bool,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks that the sizes fit together.
    ///
    /// # Errors
    /// [`Error::UnsupportedConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, detail: String| Err(Error::UnsupportedConfig { field, detail });
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(
                "n_heads",
                format!("{} does not divide d_model {}", self.n_heads, self.d_model),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(
                "d_model",
                format!(
                    "head dimension {} must be even for rotary embeddings",
                    self.head_dim()
                ),
            );
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(
                "n_kv_heads",
                format!(
                    "{} does not divide n_heads {}",
                    self.n_kv_heads, self.n_heads
                ),
            );
        }
        if let Some(f) = &self.rope_freq_factors {
            if f.len() != self.head_dim() / 2 {
                return bad(
                    "rope_freq_factors",
                    format!(
                        "{} factors for a head dimension of {} (one per rotated pair expected)",
                        f.len(),
                        self.head_dim()
                    ),
                );
            }
            if let Some(x) = f.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return bad(
                    "rope_freq_factors",
                    format!("{x} is not a positive finite factor"),
                );
            }
        }
        if self.vocab_size == 0 || self.n_layers == 0 || self.d_ff == 0 {
            return bad(
                "sizes",
                "vocab_size, n_layers and d_ff must be positive".into(),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad(
                "norm_eps",
                format!("{} is not a positive finite epsilon", self.norm_eps),
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(
                "rope_theta",
                format!("{} is not a positive finite base", self.rope_theta),
            );
        }
        Ok(())
    }

    fn llama3_scaling(factor: f64) -> Option<RopeScaling> {
        Some(RopeScaling::new(factor, 1.0, 4.0, 8192))
    }

    /// Llama-2 7B.
    pub fn llama2_7b() -> Self {
        Self::new(4096, 32, 32, 32, 11008, 32000).with_max_seq_len(4096)
    }

    /// Llama-2 13B.
    pub fn llama2_13b() -> Self {
        Self::new(5120, 40, 40, 40, 13824, 32000).with_max_seq_len(4096)
    }

    /// Llama-3.2 1B.
    pub fn llama3_2_1b() -> Self {
        Self::new(2048, 16, 32, 8, 8192, 128_256)
            .with_max_seq_len(131_072)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Self::llama3_scaling(32.0))
            .with_tie_embeddings(true)
    }

    /// Llama-3.2 3B.
    pub fn llama3_2_3b() -> Self {
        Self::new(3072, 28, 24, 8, 8192, 128_256)
            .with_max_seq_len(131_072)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Self::llama3_scaling(32.0))
            .with_tie_embeddings(true)
    }

    /// Llama-3.1 8B.
    pub fn llama3_1_8b() -> Self {
        Self::new(4096, 32, 32, 8, 14336, 128_256)
            .with_max_seq_len(131_072)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Self::llama3_scaling(8.0))
    }

    /// The named presets, as `(name, config)`: `smollm2-135m`, `smollm2-360m`, `smollm2-1.7b`,
    /// `llama3.2-1b`, `llama3.2-3b`, `llama3.1-8b`, `llama3.1-70b`, `llama2-7b`, `llama2-13b`.
    pub fn presets() -> Vec<(&'static str, LlamaConfig)> {
        vec![
            ("smollm2-135m", Self::smollm2_135m()),
            ("smollm2-360m", Self::smollm2_360m()),
            ("smollm2-1.7b", Self::smollm2_1_7b()),
            ("llama3.2-1b", Self::llama3_2_1b()),
            ("llama3.2-3b", Self::llama3_2_3b()),
            ("llama3.1-8b", Self::llama3_1_8b()),
            ("llama3.1-70b", Self::llama3_1_70b()),
            ("llama2-7b", Self::llama2_7b()),
            ("llama2-13b", Self::llama2_13b()),
        ]
    }

    /// The preset named `name` (see [`LlamaConfig::presets`]).
    pub fn preset(name: &str) -> Option<Self> {
        Self::presets()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c)
    }

    /// Llama-3.1 70B.
    pub fn llama3_1_70b() -> Self {
        Self::new(8192, 80, 64, 8, 28672, 128_256)
            .with_max_seq_len(131_072)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Self::llama3_scaling(8.0))
    }

    /// SmolLM2 135M.
    pub fn smollm2_135m() -> Self {
        Self::new(576, 30, 9, 3, 1536, 49152)
            .with_max_seq_len(8192)
            .with_rope_theta(100_000.0)
            .with_tie_embeddings(true)
    }

    /// SmolLM2 360M.
    pub fn smollm2_360m() -> Self {
        Self::new(960, 32, 15, 5, 2560, 49152)
            .with_max_seq_len(8192)
            .with_rope_theta(100_000.0)
            .with_tie_embeddings(true)
    }

    /// SmolLM2 1.7B.
    pub fn smollm2_1_7b() -> Self {
        Self::new(2048, 24, 32, 32, 8192, 49152)
            .with_max_seq_len(8192)
            .with_rope_theta(130_000.0)
            .with_tie_embeddings(true)
    }

    /// Reads a Hugging Face `config.json`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ConfigJson`], or [`Error::UnsupportedConfig`] (see
    /// [`LlamaHfConfig`]'s conversion).
    pub fn from_hf_config_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let hf: LlamaHfConfig =
            serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
                path: path.to_path_buf(),
                source,
            })?;
        Self::try_from(hf)
    }
}

/// The `rope_scaling` object of a Hugging Face config, or the `rope_parameters` object that
/// transformers 5 writes instead (which also carries `rope_theta`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HfRopeScaling {
    /// `llama3` or `default` (older files write it as `type`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scaling factor (absent for `default`).
    pub factor: Option<f64>,
    /// RoPE base (in `rope_parameters` only).
    pub rope_theta: Option<f64>,
    /// Llama-3 low-frequency factor.
    pub low_freq_factor: Option<f64>,
    /// Llama-3 high-frequency factor.
    pub high_freq_factor: Option<f64>,
    /// Pretraining context length.
    pub original_max_position_embeddings: Option<usize>,
}

/// The fields of a Hugging Face Llama `config.json` this crate reads (others are ignored).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LlamaHfConfig {
    /// Residual width.
    pub hidden_size: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (defaults to the query heads).
    pub num_key_value_heads: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub max_position_embeddings: Option<usize>,
    /// RoPE base.
    pub rope_theta: Option<f64>,
    /// RoPE scaling.
    pub rope_scaling: Option<HfRopeScaling>,
    /// RoPE base and scaling as transformers 5 writes them.
    pub rope_parameters: Option<HfRopeScaling>,
    /// RMS norm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// Whether the head is tied to the embeddings.
    pub tie_word_embeddings: Option<bool>,
    /// Explicit head width (must equal hidden_size / num_attention_heads here).
    pub head_dim: Option<usize>,
    /// `llama` (or `mistral`, which shares the layout).
    pub model_type: Option<String>,
}

impl TryFrom<LlamaHfConfig> for LlamaConfig {
    type Error = Error;

    fn try_from(hf: LlamaHfConfig) -> Result<Self> {
        if let Some(t) = hf.model_type.as_deref()
            && !matches!(t, "llama" | "mistral")
        {
            return Err(Error::UnsupportedConfig {
                field: "model_type",
                detail: format!("`{t}` is not a Llama-architecture model"),
            });
        }
        let rope_theta = hf
            .rope_theta
            .or_else(|| hf.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0);
        let rope_scaling = match hf.rope_scaling.or(hf.rope_parameters) {
            None => None,
            Some(s) if s.rope_type == "llama3" => Some(RopeScaling::new(
                s.factor.ok_or_else(|| Error::UnsupportedConfig {
                    field: "rope_scaling",
                    detail: "llama3 scaling without `factor`".into(),
                })?,
                s.low_freq_factor.unwrap_or(1.0),
                s.high_freq_factor.unwrap_or(4.0),
                s.original_max_position_embeddings.unwrap_or(8192),
            )),
            Some(s) if s.rope_type == "default" => None,
            Some(s) => {
                return Err(Error::UnsupportedConfig {
                    field: "rope_scaling",
                    detail: format!("rope type `{}` is not supported (only llama3)", s.rope_type),
                });
            }
        };
        let c = LlamaConfig::new(
            hf.hidden_size,
            hf.num_hidden_layers,
            hf.num_attention_heads,
            hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            hf.intermediate_size,
            hf.vocab_size,
        )
        .with_max_seq_len(hf.max_position_embeddings.unwrap_or(2048))
        .with_rope_theta(rope_theta)
        .with_rope_scaling(rope_scaling)
        .with_norm_eps(hf.rms_norm_eps.unwrap_or(1e-6))
        .with_tie_embeddings(hf.tie_word_embeddings.unwrap_or(false));
        if let Some(hd) = hf.head_dim
            && hd * hf.num_attention_heads != hf.hidden_size
        {
            return Err(Error::UnsupportedConfig {
                field: "head_dim",
                detail: format!(
                    "{hd} × {} heads differs from hidden_size {}",
                    hf.num_attention_heads, hf.hidden_size
                ),
            });
        }
        c.validate()?;
        Ok(c)
    }
}
