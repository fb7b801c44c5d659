//! CAREER (Vafa et al., TMLR 2024) on burn, following the authors' fairseq code
//! (`gsbDBI/career-code`, `--arch career --two-stage`):
//!
//! ```text
//! x_t = √d·E_job[prev_t] + PE(t) + E_year[year_t] + E_edu[edu_t] + E_eth + E_gender + E_region
//! x   = Dropout(x) → n_layers × pre-LN block (attention, GELU FFN) → LayerNorm → W_out (d → n+1)
//! z   = clamp(W_out x, −10, 10)
//! ```
//!
//! `PE` is fairseq's fixed sinusoidal table (`[sin ‖ cos]`, positions from 2), only the job
//! embedding is scaled by √d, and the year and education are those of the record being
//! predicted (see [`crate::seq`] for the alignment and the two-stage output). Embeddings are
//! initialised `N(0, d^-1/2)`, the head `N(0, d^-1/2)` without bias, q/k/v Xavier-uniform with gain
//! `1/√2`, the attention output Xavier-uniform with zero bias, the FFN with PyTorch's default.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Bool, Device, Tensor};
use labor_kernels::ops;

use crate::checkpoint::consistency::{embedding_params, linear_params};
use crate::error::{Error, Result};
use crate::seq::{LOGIT_CLAMP, SeqBatch, SeqModel, SeqVocab};

/// Sizes and regularisation of [`Career`].
#[derive(Config, Debug, PartialEq)]
pub struct CareerConfig {
    /// The vocabularies (states, years).
    pub vocab: SeqVocab,
    /// Transformer layers.
    #[config(default = 12)]
    pub n_layers: usize,
    /// Residual width.
    #[config(default = 192)]
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 3)]
    pub n_heads: usize,
    /// Inner width of the feed-forward network.
    #[config(default = 768)]
    pub d_ff: usize,
    /// Dropout on the embedding sum and on each sublayer's output.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Dropout on the attention weights.
    #[config(default = 0.1)]
    pub attention_dropout: f64,
    /// Longest career (positions of the sinusoidal table).
    #[config(default = 512)]
    pub max_seq_len: usize,
}

impl CareerConfig {
    /// The paper's size: 12 layers, width 192, 3 heads, FFN 768, dropout 0.1.
    pub fn paper(vocab: SeqVocab) -> Self {
        Self::new(vocab)
    }

    /// A small model for tests and the quickstart: 2 layers, width 64, 2 heads, FFN 256.
    pub fn small(vocab: SeqVocab) -> Self {
        Self::new(vocab)
            .with_n_layers(2)
            .with_d_model(64)
            .with_n_heads(2)
            .with_d_ff(256)
    }

    /// Checks that the sizes fit together (a configuration read from a file is checked before
    /// [`CareerConfig::init`], which panics on one that does not).
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
        if self.d_model == 0 || !self.d_model.is_multiple_of(2) {
            return bad(
                "d_model",
                format!("{} is not a positive even width", self.d_model),
            );
        }
        for (field, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(field, format!("{p} is not a probability in [0, 1)"));
            }
        }
        Ok(())
    }

    /// The number of parameters [`CareerConfig::init`] allocates (computed without allocating).
    pub fn num_params(&self) -> u64 {
        let d = self.d_model;
        let v = &self.vocab;
        let tables = [
            v.n_inputs(),
            v.n_years(),
            SeqVocab::n_education(),
            SeqVocab::n_ethnicity(),
            SeqVocab::n_gender(),
            SeqVocab::n_region(),
        ];
        let norm = (d as u64).saturating_mul(2);
        let layer = [
            norm,
            norm,
            linear_params(d, d, true).saturating_mul(4),
            linear_params(d, self.d_ff, true),
            linear_params(self.d_ff, d, true),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add);
        tables
            .into_iter()
            .map(|rows| embedding_params(rows, d))
            .chain([
                layer.saturating_mul(self.n_layers as u64),
                norm,
                linear_params(d, v.n_states + 1, false),
            ])
            .fold(0, u64::saturating_add)
    }

    /// Initialises the model.
    ///
    /// # Panics
    /// If `d_model` is odd or not a multiple of `n_heads` (a configuration error; see
    /// [`CareerConfig::validate`]).
    pub fn init(&self, device: &Device) -> Career {
        assert!(
            self.d_model.is_multiple_of(2) && self.d_model.is_multiple_of(self.n_heads),
            "d_model must be even and a multiple of n_heads"
        );
        let d = self.d_model;
        let std = (d as f64).powf(-0.5);
        let emb = |rows: usize| {
            EmbeddingConfig::new(rows, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
        };
        let v = &self.vocab;
        Career {
            job: emb(v.n_inputs()),
            year: emb(v.n_years()),
            education: emb(SeqVocab::n_education()),
            ethnicity: emb(SeqVocab::n_ethnicity()),
            gender: emb(SeqVocab::n_gender()),
            region: emb(SeqVocab::n_region()),
            layers: (0..self.n_layers)
                .map(|_| self.init_layer(device))
                .collect(),
            norm: layer_norm_config(d).init(device),
            head: LinearConfig::new(d, v.n_states + 1)
                .with_bias(false)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            vocab: v.clone(),
            d_model: d,
            max_seq_len: self.max_seq_len,
        }
    }

    fn init_layer(&self, device: &Device) -> CareerLayer {
        let d = self.d_model;
        let qkv = Initializer::XavierUniform {
            gain: 1.0 / 2f64.sqrt(),
        };
        let lin = |i: usize, o: usize, init: Option<Initializer>| {
            let c = LinearConfig::new(i, o);
            match init {
                Some(init) => c.with_initializer(init).init(device),
                None => c.init(device),
            }
        };
        let mut out = lin(d, d, Some(Initializer::XavierUniform { gain: 1.0 }));
        out.bias = out.bias.map(|b| b.map(|t| t.zeros_like()));
        CareerLayer {
            attn_norm: layer_norm_config(d).init(device),
            q: lin(d, d, Some(qkv.clone())),
            k: lin(d, d, Some(qkv.clone())),
            v: lin(d, d, Some(qkv)),
            out,
            ffn_norm: layer_norm_config(d).init(device),
            fc1: lin(d, self.d_ff, None),
            fc2: lin(self.d_ff, d, None),
            dropout: DropoutConfig::new(self.dropout).init(),
            attention_dropout: DropoutConfig::new(self.attention_dropout).init(),
            n_heads: self.n_heads,
        }
    }
}

/// fairseq's sinusoidal position table for positions `2..2 + len`: row `t` holds
/// `[sin((t+2)·ω_i) for i < d/2] ‖ [cos((t+2)·ω_i)]` with `ω_i = exp(−i·ln(10000)/(d/2 − 1))`.
pub fn sinusoidal_positions(len: usize, d_model: usize) -> Vec<f32> {
    let half = d_model / 2;
    let step = if half > 1 {
        (10000f64).ln() / (half - 1) as f64
    } else {
        0.0
    };
    let mut out = Vec::with_capacity(len * d_model);
    for t in 0..len {
        let pos = (t + 2) as f64;
        for i in 0..half {
            out.push((pos * (-(i as f64) * step).exp()).sin() as f32);
        }
        for i in 0..half {
            out.push((pos * (-(i as f64) * step).exp()).cos() as f32);
        }
    }
    out
}

fn sinusoidal_table(len: usize, d: usize, device: &Device) -> Tensor<2> {
    Tensor::<1>::from_floats(sinusoidal_positions(len, d).as_slice(), device).reshape([len, d])
}

/// The epsilon of every LayerNorm of [`Career`] (burn's and PyTorch's default).
const LAYER_NORM_EPSILON: f64 = 1e-5;

/// A LayerNorm of [`Career`] (burn keeps a built layer's epsilon private).
///
/// # Shapes
/// - x: `[batch, len, d_model]`
/// - output: like `x`
fn layer_norm(layer: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
    ops::layer_norm(layer, x, LAYER_NORM_EPSILON)
}

fn layer_norm_config(d: usize) -> LayerNormConfig {
    LayerNormConfig::new(d).with_epsilon(LAYER_NORM_EPSILON)
}

/// One pre-LayerNorm transformer block.
#[derive(Module, Debug)]
pub struct CareerLayer {
    /// LayerNorm before attention.
    pub attn_norm: LayerNorm,
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Attention output projection.
    pub out: Linear,
    /// LayerNorm before the FFN.
    pub ffn_norm: LayerNorm,
    /// FFN input projection.
    pub fc1: Linear,
    /// FFN output projection.
    pub fc2: Linear,
    dropout: Dropout,
    attention_dropout: Dropout,
    n_heads: usize,
}

impl CareerLayer {
    /// # Shapes
    /// - x: `[batch, len, d_model]`, mask: `[len, len]` (true = hidden)
    /// - output: `[batch, len, d_model]`
    fn forward(&self, x: Tensor<3>, mask: &Tensor<2, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, hd) = (self.n_heads, d / self.n_heads);
        let y = layer_norm(&self.attn_norm, x.clone());
        let split = |z: Tensor<3>| z.reshape([b, t, h, hd]).swap_dims(1, 2);
        let q = split(ops::linear(&self.q, y.clone()));
        let k = split(ops::linear(&self.k, y.clone()));
        let v = split(ops::linear(&self.v, y));
        let a = ops::causal_attention(q, k, v, mask, &self.attention_dropout);
        let x = x + ops::dropout(&self.dropout, ops::linear(&self.out, a));
        let y = layer_norm(&self.ffn_norm, x.clone());
        let h = ops::linear(&self.fc1, y);
        let h = ops::gelu(h);
        let y = ops::linear(&self.fc2, h);
        x + ops::dropout(&self.dropout, y)
    }
}

/// The CAREER transformer.
#[derive(Module, Debug)]
pub struct Career {
    /// Job (previous state) embedding, `n_states + 1` rows (the last is the begin token).
    pub job: Embedding,
    /// Year of the predicted record (last row: unknown / out of range).
    pub year: Embedding,
    /// Education of the predicted record.
    pub education: Embedding,
    /// Ethnicity (static).
    pub ethnicity: Embedding,
    /// Gender (static).
    pub gender: Embedding,
    /// Region (static).
    pub region: Embedding,
    /// The blocks.
    pub layers: Vec<CareerLayer>,
    /// Final LayerNorm.
    pub norm: LayerNorm,
    /// Output head, `n_states + 1` columns (the last is the stay logit), no bias.
    pub head: Linear,
    dropout: Dropout,
    #[module(skip)]
    vocab: SeqVocab,
    d_model: usize,
    max_seq_len: usize,
}

impl Career {
    /// Longest career the model reads.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The summed input embeddings, before dropout.
    ///
    /// # Shapes
    /// - output: `[batch, len, d_model]`
    pub fn embed(&self, batch: &SeqBatch) -> Tensor<3> {
        let [b, t] = batch.prev.dims();
        let d = self.d_model;
        let stat = |e: &Embedding, ids: &burn::tensor::Tensor<1, burn::tensor::Int>| {
            e.forward(ids.clone().reshape([b, 1])).expand([b, t, d])
        };
        let pos = sinusoidal_table(t, d, &batch.prev.device())
            .unsqueeze_dim::<3>(0)
            .expand([b, t, d]);
        self.job
            .forward(batch.prev.clone())
            .mul_scalar((d as f64).sqrt())
            + pos
            + self.year.forward(batch.year.clone())
            + self.education.forward(batch.education.clone())
            + stat(&self.ethnicity, &batch.ethnicity)
            + stat(&self.gender, &batch.gender)
            + stat(&self.region, &batch.region)
    }
}

impl SeqModel for Career {
    fn vocab(&self) -> &SeqVocab {
        &self.vocab
    }

    /// # Shapes
    /// - output: `[batch, len, n_states + 1]`; `len` must not exceed `max_seq_len`
    fn logits(&self, batch: &SeqBatch) -> Tensor<3> {
        let [_, t] = batch.prev.dims();
        let device = batch.prev.device();
        let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &device);
        let mut x = ops::dropout(&self.dropout, self.embed(batch));
        for layer in &self.layers {
            x = layer.forward(x, &mask);
        }
        let z = ops::linear(&self.head, layer_norm(&self.norm, x));
        ops::clamp(z, -LOGIT_CLAMP, LOGIT_CLAMP)
    }
}
