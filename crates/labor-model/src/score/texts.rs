//! Scoring rendered texts (`labor render`'s JSON Lines) into predictions: every target of every
//! text, free or constrained to the titles, with the full distribution over the titles when
//! asked for, and what the free model keeps on valid titles.

use std::sync::Arc;

use labor_data::{Prediction, Predictions, Taxonomy};
use labor_template::Document;

use crate::error::Result;
use crate::score::Scorer;

/// Texts scored together between two progress reports (batched within, by the scorer).
pub(crate) const CHUNK: usize = 32;

/// Per text: the targets' log-probabilities and, optionally, their distributions.
type ScoredText = (Vec<f64>, Option<Vec<Vec<f32>>>);

/// What [`score_texts`] measured.
#[derive(Debug, Clone)]
pub struct TextScores {
    /// One row per target, in text order.
    pub predictions: Predictions,
    /// Tokens of the texts.
    pub tokens: usize,
    /// With a constrained scorer and no full distribution: the log-likelihood of the targets
    /// under free decoding, and the log-mass the free model kept on titles at the first token
    /// of a title and at each later one (sums and counts).
    pub free: Option<FreeMass>,
}

/// Where a constrained scorer's free model put its probability (see [`TextScores::free`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FreeMass {
    /// Sum over targets of the free log-probability.
    pub log_likelihood: f64,
    /// Sum of the log-mass kept on titles at a title's first token, and the number of targets.
    pub first_token: (f64, usize),
    /// Sum of the log-mass kept at later title tokens, and their number.
    pub later_tokens: (f64, usize),
}

impl FreeMass {
    /// Geometric-mean mass kept on titles at a title's first token.
    pub fn first_token_mass(&self) -> f64 {
        (self.first_token.0 / self.first_token.1.max(1) as f64).exp()
    }

    /// Geometric-mean mass kept on titles at each later title token.
    pub fn later_token_mass(&self) -> f64 {
        (self.later_tokens.0 / self.later_tokens.1.max(1) as f64).exp()
    }
}

impl TextScores {
    /// Perplexity of the targets (as scored: constrained when the scorer is).
    pub fn perplexity(&self) -> f64 {
        self.predictions.perplexity()
    }

    /// Perplexity of the targets under free decoding, where it was measured.
    pub fn free_perplexity(&self) -> Option<f64> {
        let n = self.predictions.len().max(1) as f64;
        self.free.map(|f| (-f.log_likelihood / n).exp())
    }

    /// Mean probability mass on the taxonomy's titles, with full distributions.
    pub fn mean_valid_mass(&self) -> Option<f64> {
        if !self.predictions.has_distribution() {
            return None;
        }
        let rows = self.predictions.rows();
        let total: f64 = rows
            .iter()
            .filter_map(|r| r.probs.as_ref())
            .map(|p| p.iter().map(|x| f64::from(*x)).sum::<f64>())
            .sum();
        Some(total / rows.len().max(1) as f64)
    }

    /// The result in words: the perplexity, and for decoding constrained to `constrained`
    /// titles the free model's perplexity and the mass it kept on titles; the mean mass on
    /// valid titles with full distributions.
    pub fn summary(&self, constrained: Option<usize>) -> String {
        let mut s = format!("perplexity {:.3}", self.perplexity());
        match (constrained, &self.free, self.free_perplexity()) {
            (Some(n), Some(f), Some(free)) => s.push_str(&format!(
                " (decoding constrained to {n} titles; free decoding {free:.3}, which keeps on \
                 titles {:.4} of its mass at a title's first token and {:.4} at each later \
                 token, geometric means)",
                f.first_token_mass(),
                f.later_token_mass(),
            )),
            (Some(n), ..) => s.push_str(&format!(" (decoding constrained to {n} titles)")),
            (None, ..) => {}
        }
        if let Some(m) = self.mean_valid_mass() {
            s.push_str(&format!(", mean mass on valid titles {m:.4}"));
        }
        s
    }
}

/// Scores every target of `docs` with `scorer` into predictions of the model `name` over
/// `taxonomy`. With `distribution_over` (the continuation of every outcome of `taxonomy`, in
/// state order), each row carries the probability of every title. `progress` is called with
/// the targets and tokens done after each chunk of texts.
///
/// # Errors
/// The scorer's (a text longer than the model's context, a non-finite log-probability), or a
/// target whose state is outside `taxonomy`.
pub fn score_texts(
    scorer: &Scorer<'_>,
    docs: &[Document],
    name: &str,
    taxonomy: &Arc<Taxonomy>,
    distribution_over: Option<&[String]>,
    mut progress: impl FnMut(usize, usize),
) -> Result<TextScores> {
    let mut predictions = Predictions::new(name, Arc::clone(taxonomy));
    let mut tokens = 0usize;
    let mut done = 0usize;
    let mut free = FreeMass::default();
    for chunk in docs.chunks(CHUNK) {
        let scored: Vec<ScoredText> = match distribution_over {
            Some(titles) => chunk
                .iter()
                .map(|d| {
                    let dists = scorer.document_distributions(d, titles)?;
                    let s = d
                        .targets
                        .iter()
                        .zip(&dists)
                        .map(|(t, x)| x.log_probs[usize::from(t.state_id.0)])
                        .collect();
                    let p = dists
                        .iter()
                        .map(|x| x.log_probs.iter().map(|l| l.exp() as f32).collect())
                        .collect();
                    Ok((s, Some(p)))
                })
                .collect::<Result<_>>()?,
            None => {
                let titles = scorer.score_titles(chunk)?;
                for t in titles.iter().flatten() {
                    free.log_likelihood += t.log_prob + t.step_log_mass.iter().sum::<f64>();
                    if let Some((first, later)) = t.step_log_mass.split_first() {
                        free.first_token = (free.first_token.0 + first, free.first_token.1 + 1);
                        free.later_tokens = (
                            free.later_tokens.0 + later.iter().sum::<f64>(),
                            free.later_tokens.1 + later.len(),
                        );
                    }
                }
                titles
                    .into_iter()
                    .map(|d| (d.into_iter().map(|t| t.log_prob).collect(), None))
                    .collect()
            }
        };
        for (d, (s, p)) in chunk.iter().zip(scored) {
            tokens += scorer.tokenizer().encode(&d.text)?.ids.len();
            let mut p = p.map(|v| v.into_iter());
            for (t, lp) in d.targets.iter().zip(s) {
                predictions.push(Prediction {
                    worker_id: d.worker_id.clone(),
                    year: t.year,
                    position: t.record as u32,
                    state: t.state_id,
                    previous: t.previous_state_id,
                    log_prob: lp,
                    weight: None,
                    probs: p.as_mut().and_then(Iterator::next),
                })?;
            }
            done += d.targets.len();
        }
        progress(done, tokens);
    }
    let free = (scorer.is_constrained() && distribution_over.is_none()).then_some(free);
    Ok(TextScores {
        predictions,
        tokens,
        free,
    })
}
