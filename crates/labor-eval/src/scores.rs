//! Per-target log-probabilities grouped by worker, and perplexity.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The log-probabilities a model gave to the observed states, one per target, each tagged with
/// its worker (the bootstrap's cluster) and a weight (a survey weight, or 1).
///
/// Perplexity is `exp(-Σ w·log p / Σ w)`: the inverse geometric mean probability, equal to `K`
/// for the uniform model over `K` states.
///
/// ```
/// use labor_eval::ScoreSet;
/// let mut s = ScoreSet::new();
/// for (worker, p) in [("a", 0.5), ("a", 0.25), ("b", 0.125)] {
///     s.push(worker, f64::ln(p), 1.0).unwrap();
/// }
/// // exp(-(ln .5 + ln .25 + ln .125) / 3) = 4
/// assert!((s.perplexity().unwrap() - 4.0).abs() < 1e-12);
/// assert_eq!((s.n_targets(), s.n_workers()), (3, 2));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreSet {
    workers: Vec<String>,
    index: HashMap<String, u32>,
    pub(crate) cluster: Vec<u32>,
    pub(crate) log_prob: Vec<f64>,
    pub(crate) weight: Vec<f64>,
}

impl ScoreSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a target.
    ///
    /// # Errors
    /// [`Error::InvalidLogProb`] for a NaN, infinite or positive log-probability (a model that
    /// gives an observed state probability zero has infinite perplexity: report it, don't hide
    /// it), [`Error::InvalidWeight`] for a negative or non-finite weight.
    pub fn push(&mut self, worker: &str, log_prob: f64, weight: f64) -> Result<()> {
        let index = self.log_prob.len();
        if !(log_prob.is_finite() && log_prob <= 0.0) {
            return Err(Error::InvalidLogProb {
                index,
                worker: worker.to_string(),
                value: log_prob,
            });
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(Error::InvalidWeight {
                index,
                worker: worker.to_string(),
                value: weight,
            });
        }
        let next = self.workers.len() as u32;
        let c = *self.index.entry(worker.to_string()).or_insert(next);
        if c == next {
            self.workers.push(worker.to_string());
        }
        self.cluster.push(c);
        self.log_prob.push(log_prob);
        self.weight.push(weight);
        Ok(())
    }

    /// A set from parallel slices (weights default to 1 when `weights` is `None`).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], or as [`ScoreSet::push`].
    pub fn from_slices<S: AsRef<str>>(
        workers: &[S],
        log_probs: &[f64],
        weights: Option<&[f64]>,
    ) -> Result<Self> {
        if workers.len() != log_probs.len() {
            return Err(Error::LengthMismatch {
                what: "workers and log-probabilities",
                left: workers.len(),
                right: log_probs.len(),
            });
        }
        if let Some(w) = weights
            && w.len() != log_probs.len()
        {
            return Err(Error::LengthMismatch {
                what: "weights and log-probabilities",
                left: w.len(),
                right: log_probs.len(),
            });
        }
        let mut s = Self::new();
        for (i, (wk, lp)) in workers.iter().zip(log_probs).enumerate() {
            s.push(wk.as_ref(), *lp, weights.map_or(1.0, |w| w[i]))?;
        }
        Ok(s)
    }

    /// Number of targets.
    pub fn n_targets(&self) -> usize {
        self.log_prob.len()
    }

    /// Number of distinct workers.
    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    /// The worker ids, in order of first appearance.
    pub fn workers(&self) -> &[String] {
        &self.workers
    }

    /// Log-probabilities in order.
    pub fn log_probs(&self) -> &[f64] {
        &self.log_prob
    }

    /// The weighted mean negative log-likelihood (nats per target).
    ///
    /// # Errors
    /// [`Error::Empty`] when the weights sum to zero.
    pub fn mean_nll(&self) -> Result<f64> {
        let (s, w) = self
            .log_prob
            .iter()
            .zip(&self.weight)
            .fold((0.0, 0.0), |(s, t), (lp, w)| (s + w * lp, t + w));
        if w <= 0.0 {
            return Err(Error::Empty);
        }
        Ok(-s / w)
    }

    /// Perplexity `exp(-Σ w·log p / Σ w)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when the weights sum to zero.
    pub fn perplexity(&self) -> Result<f64> {
        self.mean_nll().map(f64::exp)
    }

    /// Per-worker sums (Σ w·log p, Σ w), indexed like [`ScoreSet::workers`].
    pub(crate) fn cluster_sums(&self) -> (Vec<f64>, Vec<f64>) {
        let mut s = vec![0.0; self.workers.len()];
        let mut w = vec![0.0; self.workers.len()];
        for ((c, lp), wt) in self.cluster.iter().zip(&self.log_prob).zip(&self.weight) {
            s[*c as usize] += wt * lp;
            w[*c as usize] += wt;
        }
        (s, w)
    }

    /// The subset of targets for which `keep(i)` is true (e.g. one subgroup).
    pub fn subset(&self, mut keep: impl FnMut(usize) -> bool) -> ScoreSet {
        let mut out = ScoreSet::new();
        for i in 0..self.n_targets() {
            if keep(i) {
                let worker = &self.workers[self.cluster[i] as usize];
                // Values were validated on the way in.
                let _ = out.push(worker, self.log_prob[i], self.weight[i]);
            }
        }
        out
    }

    /// Checks that `other` has the same targets (same workers and weights, in the same order).
    ///
    /// # Errors
    /// [`Error::Unpaired`] at the first difference.
    pub fn check_paired(&self, other: &ScoreSet) -> Result<()> {
        if self.n_targets() != other.n_targets() {
            return Err(Error::Unpaired {
                index: self.n_targets().min(other.n_targets()),
                detail: format!("{} targets against {}", self.n_targets(), other.n_targets()),
            });
        }
        for i in 0..self.n_targets() {
            let (a, b) = (
                &self.workers[self.cluster[i] as usize],
                &other.workers[other.cluster[i] as usize],
            );
            if a != b {
                return Err(Error::Unpaired {
                    index: i,
                    detail: format!("worker `{a}` against `{b}`"),
                });
            }
            if self.weight[i] != other.weight[i] {
                return Err(Error::Unpaired {
                    index: i,
                    detail: format!("weight {} against {}", self.weight[i], other.weight[i]),
                });
            }
        }
        Ok(())
    }
}
