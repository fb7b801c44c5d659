//! The Llama architecture on burn: token embeddings, RMSNorm, rotary position embeddings (with
//! the Llama-3 frequency scaling), grouped-query attention, SwiGLU feed-forward network, tied or
//! untied output head, and a key-value cache for incremental decoding.
//!
//! Rotary embeddings use the Hugging Face "rotate-half" layout (the first and second halves of
//! each head are the two coordinates of a rotated pair), so Hugging Face weights load as they
//! are; GGUF files, whose query/key rows are permuted to the interleaved layout, are un-permuted
//! on load.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use labor_kernels::ops::{self, Rope};

use crate::llm::config::{LlamaConfig, RopeScaling};

/// Inverse frequencies of the rotary embedding, `θ^(-2i/d)`, with Llama-3 scaling applied.
pub fn rope_inv_freq(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f64> {
    (0..head_dim / 2)
        .map(|i| {
            let f = theta.powf(-((2 * i) as f64) / head_dim as f64);
            match scaling {
                None => f,
                Some(s) => {
                    let orig = s.original_max_position_embeddings as f64;
                    let low_wavelen = orig / s.low_freq_factor;
                    let high_wavelen = orig / s.high_freq_factor;
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / s.factor
                    } else {
                        let smooth = (orig / wavelen - s.low_freq_factor)
                            / (s.high_freq_factor - s.low_freq_factor);
                        (1.0 - smooth) * f / s.factor + smooth * f
                    }
                }
            }
        })
        .collect()
}

/// burn's `[in, out]` [`Linear`] weight from a checkpoint's row-major `[out, in]` matrix, stored
/// contiguously (transposed here once, so that no forward pass works on a strided view).
pub(crate) fn linear_weight(
    v: &[f32],
    out: usize,
    inp: usize,
    device: &Device,
) -> burn::module::Param<Tensor<2>> {
    let mut t = vec![0.0f32; v.len()];
    // Blocks of 32 × 32 keep both sides in cache.
    for o0 in (0..out).step_by(32) {
        for i0 in (0..inp).step_by(32) {
            for o in o0..(o0 + 32).min(out) {
                for i in i0..(i0 + 32).min(inp) {
                    t[i * out + o] = v[o * inp + i];
                }
            }
        }
    }
    burn::module::Param::from_tensor(Tensor::<2>::from_data(
        burn::tensor::TensorData::new(t, [inp, out]),
        device,
    ))
}

/// Configuration of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Residual width.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
}

impl AttentionConfig {
    /// Initialises the projections (no biases, as in Llama).
    pub fn init(&self, device: &Device) -> Attention {
        let hd = self.d_model / self.n_heads;
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Attention {
            wq: lin(self.d_model, self.n_heads * hd),
            wk: lin(self.d_model, self.n_kv_heads * hd),
            wv: lin(self.d_model, self.n_kv_heads * hd),
            wo: lin(self.n_heads * hd, self.d_model),
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: hd,
        }
    }
}

/// Causal grouped-query self-attention.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection.
    pub wq: Linear,
    /// Key projection.
    pub wk: Linear,
    /// Value projection.
    pub wv: Linear,
    /// Output projection.
    pub wo: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// Keys and values of earlier positions, per layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` before the first forward.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cache of the first `len` positions only (sharing the tensors' storage).
    pub fn truncated(&self, len: usize) -> Self {
        let len = len.min(self.len);
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| {
                    l.as_ref()
                        .map(|(k, v)| (k.clone().narrow(2, 0, len), v.clone().narrow(2, 0, len)))
                })
                .collect(),
            len,
        }
    }
}

impl Attention {
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - rope: tables `[batch or 1, seq, head_dim]` for the positions of `x`
    /// - past: `[batch, n_kv_heads, past, head_dim]` keys and values, if any
    /// - mask: `[batch or 1, seq, past + seq]`, `true` where a query must not see a key;
    ///   `None` for causal attention (every cached position and the new ones up to itself)
    /// - output: `[batch, seq, d_model]`, and the keys and values including `x`'s
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        past: Option<(Tensor<4>, Tensor<4>)>,
        mask: Option<&Tensor<3, Bool>>,
    ) -> (Tensor<3>, (Tensor<4>, Tensor<4>)) {
        let (h, kvh) = (self.n_heads, self.n_kv_heads);
        let [b, s, _] = x.dims();
        let q = ops::rotary_linear(&self.wq, &x, rope, h);
        let k = ops::rotary_linear(&self.wk, &x, rope, kvh);
        let v = ops::linear(&self.wv, x)
            .reshape([b, s, kvh, self.head_dim])
            .swap_dims(1, 2);
        let (k, v) = match past {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        let out = ops::attention(q, k.clone(), v.clone(), mask);
        (ops::linear(&self.wo, out), (k, v))
    }
}

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Residual width.
    pub d_model: usize,
    /// Hidden width.
    pub d_ff: usize,
}

impl FeedForwardConfig {
    /// Initialises the three projections.
    pub fn init(&self, device: &Device) -> FeedForward {
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        FeedForward {
            gate: lin(self.d_model, self.d_ff),
            up: lin(self.d_model, self.d_ff),
            down: lin(self.d_ff, self.d_model),
        }
    }
}

/// SwiGLU: `down(silu(gate(x)) ⊙ up(x))`.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// Gate projection.
    pub gate: Linear,
    /// Up projection.
    pub up: Linear,
    /// Down projection.
    pub down: Linear,
}

impl FeedForward {
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = ops::linear(&self.gate, x.clone());
        let up = ops::linear(&self.up, x);
        ops::linear(&self.down, ops::silu_mul(gate, up))
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub attn_norm: RmsNorm,
    /// Attention.
    pub attn: Attention,
    /// Norm before the feed-forward network.
    pub ffn_norm: RmsNorm,
    /// Feed-forward network.
    pub ffn: FeedForward,
}

impl LlamaConfig {
    /// Initialises a model with random weights (burn's default initialisers).
    ///
    /// # Panics
    /// If the configuration is invalid; check it with [`LlamaConfig::validate`] first (the
    /// loaders do).
    pub fn init(&self, device: &Device) -> Llama {
        let norm = || {
            RmsNormConfig::new(self.d_model)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let layers = (0..self.n_layers)
            .map(|_| Block {
                attn_norm: norm(),
                attn: AttentionConfig::new(self.d_model, self.n_heads, self.n_kv_heads)
                    .init(device),
                ffn_norm: norm(),
                ffn: FeedForwardConfig::new(self.d_model, self.d_ff).init(device),
            })
            .collect();
        Llama {
            embed: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            layers,
            norm: norm(),
            lm_head: (!self.tie_embeddings).then(|| {
                LinearConfig::new(self.d_model, self.vocab_size)
                    .with_bias(false)
                    .init(device)
            }),
            rope_theta: self.rope_theta,
            rope_scaling: self
                .rope_scaling
                .as_ref()
                .map(|s| {
                    [
                        s.factor,
                        s.low_freq_factor,
                        s.high_freq_factor,
                        s.original_max_position_embeddings as f64,
                    ]
                })
                .map(|a| a.to_vec())
                .unwrap_or_default(),
            rope_freq_factors: self.rope_freq_factors.clone().unwrap_or_default(),
            head_dim: self.head_dim(),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// A Llama-architecture causal language model.
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embeddings `[vocab, d_model]`.
    pub embed: Embedding,
    /// The blocks.
    pub layers: Vec<Block>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output head; `None` when tied to the embeddings.
    pub lm_head: Option<Linear>,
    rope_theta: f64,
    /// Llama-3 scaling as `[factor, low, high, original context]`, empty when absent.
    rope_scaling: Vec<f64>,
    /// Divisors of the rotary frequencies (GGUF's `rope_freqs`), empty when absent.
    rope_freq_factors: Vec<f64>,
    head_dim: usize,
    max_seq_len: usize,
}

impl Llama {
    /// Longest sequence the model accepts.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    fn inv_freq(&self) -> Vec<f64> {
        if !self.rope_freq_factors.is_empty() {
            return rope_inv_freq(self.head_dim, self.rope_theta, None)
                .into_iter()
                .zip(&self.rope_freq_factors)
                .map(|(f, d)| f / d)
                .collect();
        }
        let scaling = (self.rope_scaling.len() == 4).then(|| {
            RopeScaling::new(
                self.rope_scaling[0],
                self.rope_scaling[1],
                self.rope_scaling[2],
                self.rope_scaling[3] as usize,
            )
        });
        rope_inv_freq(self.head_dim, self.rope_theta, scaling.as_ref())
    }

    /// Hidden states after the final norm, for the positions after those in `cache`, which it
    /// extends (causal attention).
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, d_model]`
    ///
    /// # Panics
    /// If the cached and new positions together exceed [`Llama::max_seq_len`].
    pub fn hidden(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let [_, s] = tokens.dims();
        let start = cache.len;
        assert!(
            start + s <= self.max_seq_len,
            "sequence of {} positions is longer than the model's {}",
            start + s,
            self.max_seq_len
        );
        // Query i (absolute position start + i) sees keys 0..=start + i.
        let positions: Vec<usize> = (start..start + s).collect();
        let h = self.run_layers(tokens, &positions, 1, None, cache);
        cache.len += s;
        h
    }

    /// Hidden states after the final norm of *trees* of tokens continuing the sequence in
    /// `cache` (left unchanged; its batch must be 1): row `b` holds a set of trees, token
    /// `(b, i)` sits at absolute position `positions[b][i]` and sees every cached position and
    /// the tokens `j` of its row with `visible[b][i][j]` (its ancestors and itself). All
    /// continuations of a prompt (every job title) are scored in one pass this way.
    ///
    /// # Shapes
    /// - tokens: `[rows, n]`
    /// - output: `[rows, n, d_model]`
    ///
    /// # Panics
    /// If a position reaches [`Llama::max_seq_len`], or `positions`/`visible` do not match
    /// the shape of `tokens`.
    pub fn hidden_tree(
        &self,
        tokens: Tensor<2, Int>,
        positions: &[Vec<usize>],
        visible: &[Vec<Vec<bool>>],
        cache: &KvCache,
    ) -> Tensor<3> {
        let [rows, n] = tokens.dims();
        assert!(
            positions.len() == rows
                && visible.len() == rows
                && positions.iter().all(|p| p.len() == n)
                && visible.iter().all(|v| v.len() == n),
            "trees of {rows} rows of {n} tokens"
        );
        assert!(
            positions.iter().flatten().all(|p| *p < self.max_seq_len),
            "tree position past the model's context of {}",
            self.max_seq_len
        );
        let past = cache.len;
        let mut m = Vec::with_capacity(rows * n * (past + n));
        for row in visible.iter().flatten() {
            m.extend(std::iter::repeat_n(false, past));
            m.extend((0..n).map(|j| !row.get(j).copied().unwrap_or(false)));
        }
        let mask = Tensor::<1, Bool>::from_bool(
            burn::tensor::TensorData::new(m, [rows * n * (past + n)]),
            &tokens.device(),
        )
        .reshape([rows, n, past + n]);
        let mut scratch = KvCache {
            layers: cache
                .layers
                .iter()
                .map(|l| {
                    l.as_ref().map(|(k, v)| {
                        let [_, h, t, d] = k.dims();
                        (
                            k.clone().expand([rows, h, t, d]),
                            v.clone().expand([rows, h, t, d]),
                        )
                    })
                })
                .collect(),
            len: past,
        };
        let flat: Vec<usize> = positions.iter().flatten().copied().collect();
        self.run_layers(tokens, &flat, rows, Some(&mask), &mut scratch)
    }

    /// Embeddings, blocks (extending the per-layer keys/values of `cache`) and the final norm.
    fn run_layers(
        &self,
        tokens: Tensor<2, Int>,
        positions: &[usize],
        rows: usize,
        mask: Option<&Tensor<3, Bool>>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let device = tokens.device();
        let rope = Rope::new(&self.inv_freq(), positions, rows, &device);
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        let mut x = self.embed.forward(tokens);
        for (block, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let (a, kv) = block.attn.forward(
                ops::rms_norm(&block.attn_norm, x.clone()),
                &rope,
                slot.take(),
                mask,
            );
            *slot = Some(kv);
            let h = x + a;
            x = h.clone() + block.ffn.forward(ops::rms_norm(&block.ffn_norm, h));
        }
        ops::rms_norm(&self.norm, x)
    }

    /// The output head: logits over the vocabulary.
    ///
    /// # Shapes
    /// - h: `[batch, seq, d_model]`
    /// - output: `[batch, seq, vocab]`
    pub fn head(&self, h: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(l) => ops::linear(l, h),
            None => {
                let [b, s, d] = h.dims();
                let w = self.embed.weight.val();
                ops::tied_head(h.reshape([b * s, d]), w).reshape([
                    b,
                    s,
                    self.embed.weight.dims()[0],
                ])
            }
        }
    }

    /// Logits of the next token at every position.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`
    /// - output: `[batch, seq, vocab]`
    ///
    /// # Panics
    /// If `seq` exceeds [`Llama::max_seq_len`] (the [`Scorer`](crate::Scorer) checks this and
    /// returns an error instead).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let h = self.hidden(tokens, &mut KvCache::new());
        self.head(h)
    }

    /// As [`Llama::forward`] for the positions after those in `cache`, which it extends.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]` (the new positions)
    /// - output: `[batch, seq, vocab]`
    ///
    /// # Panics
    /// If the cached and new positions together exceed [`Llama::max_seq_len`].
    pub fn forward_with_cache(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let h = self.hidden(tokens, cache);
        self.head(h)
    }

    /// Log-probability of each token given those before it: entry `[b, i]` is
    /// `log P(tokens[b, i + 1] | tokens[b, ..=i])`.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]`, `seq >= 2`
    /// - output: `[batch, seq - 1]`
    ///
    /// # Panics
    /// As [`Llama::forward`].
    pub fn next_token_log_probs(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let logits = self.forward(tokens.clone());
        ops::next_token_log_probs(logits, tokens)
    }
}
