//! How fast a language model runs on a device: the forward pass over random tokens (with its
//! matrix throughput), scoring rendered texts, and the full distribution over every title.
//! `labor speed` prints these as one JSON object, which `benches/scripts/*_vs_torch.sh` set
//! beside the PyTorch reference; every time is the median of repeated runs after a warm-up.

use std::time::Instant;

use burn::tensor::{Device, Int, Tensor};
use labor_template::Document;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::model::Llama;
use crate::score::Scorer;

/// The median of `runs` timed calls of `f` (seconds) after one untimed call, and every time.
///
/// # Errors
/// The first error of `f`.
fn timed(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, Vec<f64>)> {
    f()?;
    let mut ts = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = ts.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[sorted.len() / 2], ts))
}

/// The forward pass over random tokens.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardSpeed {
    /// Sequences per pass.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Median seconds per pass.
    pub median_s: f64,
    /// Every timed pass.
    pub all_s: Vec<f64>,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Matrix-product throughput (projections, output head, and attention's two products
    /// averaged over causal positions), GFLOP/s.
    pub gflop_per_s: f64,
}

/// The forward pass with the log-probability of every next token, over `batch × seq` seeded
/// pseudo-random ids (as the PyTorch reference draws random ids).
///
/// # Errors
/// A non-finite log-probability.
pub fn forward_speed(
    model: &Llama,
    config: &LlamaConfig,
    device: &Device,
    [batch, seq]: [usize; 2],
    runs: usize,
) -> Result<ForwardSpeed> {
    // Xorshift from a fixed state.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let ids: Vec<i32> = (0..batch * seq)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % config.vocab_size as u64) as i32
        })
        .collect();
    let (median_s, all_s) = timed(runs, || {
        let t = Tensor::<1, Int>::from_ints(ids.as_slice(), device).reshape([batch, seq]);
        let s: f32 = model.next_token_log_probs(t).sum().into_scalar();
        if s.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidOption {
                name: "model",
                detail: "its forward pass gives non-finite log-probabilities".into(),
            })
        }
    })?;
    let tokens = (batch * seq) as f64;
    // Two flops per weight of every projection, the output head, and attention's two products
    // (averaged over causal positions).
    let (d, hd) = (config.d_model as f64, config.head_dim() as f64);
    let per_layer = 2.0
        * (d * (config.n_heads as f64 * hd) * 2.0
            + d * (config.n_kv_heads as f64 * hd) * 2.0
            + 3.0 * d * config.d_ff as f64);
    let attention = 2.0 * 2.0 * config.n_heads as f64 * hd * (seq as f64 / 2.0);
    let head = 2.0 * d * config.vocab_size as f64;
    let flops = tokens * (config.n_layers as f64 * (per_layer + attention) + head);
    Ok(ForwardSpeed {
        batch,
        seq,
        median_s,
        all_s,
        tokens_per_s: tokens / median_s,
        gflop_per_s: flops / median_s / 1e9,
    })
}

/// Scoring every target of rendered texts.
#[derive(Debug, Clone, Serialize)]
pub struct ScoringSpeed {
    /// Texts (workers) scored.
    pub workers: usize,
    /// Their targets.
    pub targets: usize,
    /// Median seconds for all of them.
    pub median_s: f64,
    /// Every timed run.
    pub all_s: Vec<f64>,
    /// Targets (transitions) per second.
    pub transitions_per_s: f64,
}

/// Scores every target of `docs` with [`Scorer::score_documents`].
///
/// # Errors
/// The scorer's.
pub fn scoring_speed(scorer: &Scorer<'_>, docs: &[Document], runs: usize) -> Result<ScoringSpeed> {
    let targets: usize = docs.iter().map(|d| d.targets.len()).sum();
    let (median_s, all_s) = timed(runs, || scorer.score_documents(docs).map(|_| ()))?;
    Ok(ScoringSpeed {
        workers: docs.len(),
        targets,
        median_s,
        all_s,
        transitions_per_s: targets as f64 / median_s,
    })
}

/// The full distribution over every title against the true title alone.
#[derive(Debug, Clone, Serialize)]
pub struct DistributionSpeed {
    /// Targets timed.
    pub targets: usize,
    /// Titles of each distribution.
    pub titles: usize,
    /// Mean prompt length, in tokens.
    pub mean_prompt_tokens: f64,
    /// Seconds per target for the true title alone, with its own prompt (the usual approach).
    pub true_title_alone_s_per_target: f64,
    /// Seconds per target for the distribution over every title.
    pub full_distribution_s_per_target: f64,
    /// Every timed run of the distributions.
    pub all_s: Vec<f64>,
    /// How many times the distribution costs the true title alone.
    pub cost_ratio: f64,
}

/// The distribution over `titles` after the prompts of `limit` targets spread evenly over all
/// targets of `docs` (so that the prompts have the lengths of a whole evaluation, early and
/// late years alike), against scoring the true title alone.
///
/// # Errors
/// The scorer's.
pub fn distribution_speed(
    scorer: &Scorer<'_>,
    docs: &[Document],
    titles: &[String],
    limit: usize,
    runs: usize,
) -> Result<DistributionSpeed> {
    let all: Vec<(&Document, usize)> = docs
        .iter()
        .flat_map(|d| (0..d.targets.len()).map(move |k| (d, k)))
        .collect();
    let take = limit.clamp(1, all.len().max(1));
    let targets: Vec<(&Document, usize)> = (0..take)
        .filter_map(|i| all.get(i * all.len() / take).copied())
        .collect();
    let mut prompt_tokens = 0usize;
    for (d, k) in &targets {
        prompt_tokens += scorer
            .tokenizer()
            .encode(d.prompt(&d.targets[*k]))?
            .ids
            .len();
    }
    let (alone, _) = timed(runs, || {
        for (d, k) in &targets {
            let t = &d.targets[*k];
            scorer.continuation_log_probs(d.prompt(t), &[d.continuation(t).to_string()])?;
        }
        Ok(())
    })?;
    let (full, all_s) = timed(runs.min(2), || {
        for (d, k) in &targets {
            scorer.distribution(d.prompt(&d.targets[*k]), titles)?;
        }
        Ok(())
    })?;
    let n = targets.len().max(1) as f64;
    Ok(DistributionSpeed {
        targets: targets.len(),
        titles: titles.len(),
        mean_prompt_tokens: prompt_tokens as f64 / n,
        true_title_alone_s_per_target: alone / n,
        full_distribution_s_per_target: full / n,
        all_s,
        cost_ratio: full / alone,
    })
}
