//! Empirical transition frequencies, the count-based baseline of LABOR-LLM (not in the CAREER
//! code): `P(next = j | current = i) = (c_ij + α) / (c_i + n·α)`, counted over consecutive
//! records of each worker in the training panel, with additive smoothing `α` (default
//! [`DEFAULT_ALPHA`] = 0.1) over the `n` states of the taxonomy. Consecutive means consecutive
//! records: a gap between survey rounds is ignored. The first record of a career is drawn from
//! the smoothed marginal distribution of first states, `(f_j + α) / (F + n·α)`. The model
//! ignores covariates.
//!
//! ```
//! use std::sync::Arc;
//! use labor_data::{Education, Panel, StateId, Taxonomy, Worker, YearRecord};
//! use labor_model::{Empirical, Predictor};
//! let tax = Arc::new(Taxonomy::occ1990dd());
//! let mut w = Worker::new("a", "test");
//! for (y, s) in [(2000, 10u16), (2001, 10), (2002, 20)] {
//!     w.records.push(YearRecord::new(y, StateId(s), Education::College));
//! }
//! let panel = Panel::new(tax.clone(), vec![w.clone()]).unwrap();
//! let m = Empirical::fit(&panel, 0.0).unwrap();
//! let p = m.predict_worker(&w, false).unwrap();
//! assert_eq!(p[0].log_prob, 0.0); // every career starts in state 10
//! assert!((p[1].log_prob - 0.5f64.ln()).abs() < 1e-12); // 10 -> 10 once, 10 -> 20 once
//! ```

use labor_data::{Panel, Worker};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::score::predict::{Predictor, StepPrediction};

/// Default additive smoothing constant.
pub const DEFAULT_ALPHA: f64 = 0.1;

/// The counted transition frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Empirical {
    n_states: usize,
    alpha: f64,
    /// Counts of first states.
    first: Vec<u64>,
    /// Transition counts, row = current state, `n_states × n_states`.
    transitions: Vec<u64>,
}

impl Empirical {
    /// Counts the transitions of `train` with smoothing `alpha`.
    ///
    /// # Errors
    /// [`Error::Training`] for a negative or non-finite `alpha`, or `alpha = 0` with an empty
    /// panel; [`Error::StateOutOfVocabulary`] for a state outside the taxonomy.
    pub fn fit(train: &Panel, alpha: f64) -> Result<Self> {
        if !(alpha.is_finite() && alpha >= 0.0) || (alpha == 0.0 && train.is_empty()) {
            return Err(Error::Training {
                field: "alpha",
                detail: format!(
                    "smoothing must be finite and ≥ 0 (> 0 for an empty panel), got {alpha}"
                ),
            });
        }
        let n = train.taxonomy().len();
        let mut m = Self {
            n_states: n,
            alpha,
            first: vec![0; n],
            transitions: vec![0; n * n],
        };
        for w in train.workers() {
            let check = |s: usize| {
                if s < n {
                    Ok(s)
                } else {
                    Err(Error::StateOutOfVocabulary {
                        worker_id: w.id.clone(),
                        state: s,
                        n_states: n,
                    })
                }
            };
            if let Some(r) = w.records.first() {
                m.first[check(r.state.index())?] += 1;
            }
            for pair in w.records.windows(2) {
                let (i, j) = (check(pair[0].state.index())?, check(pair[1].state.index())?);
                m.transitions[i * n + j] += 1;
            }
        }
        Ok(m)
    }

    /// Number of states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// The smoothing constant.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Smoothed distribution over the next state after `current` (`None`: the first record).
    pub fn distribution(&self, current: Option<usize>) -> Vec<f64> {
        let n = self.n_states;
        let row = match current {
            None => &self.first[..],
            Some(i) => &self.transitions[i * n..(i + 1) * n],
        };
        let total = row.iter().sum::<u64>() as f64 + n as f64 * self.alpha;
        if total == 0.0 {
            return vec![1.0 / n as f64; n];
        }
        row.iter()
            .map(|&c| (c as f64 + self.alpha) / total)
            .collect()
    }
}

impl Predictor for Empirical {
    fn name(&self) -> &str {
        "empirical"
    }

    fn predict_worker(&self, worker: &Worker, full: bool) -> Result<Vec<StepPrediction>> {
        let n = self.n_states;
        let mut out = Vec::with_capacity(worker.records.len());
        let mut prev = None;
        for r in &worker.records {
            let s = r.state.index();
            if s >= n {
                return Err(Error::StateOutOfVocabulary {
                    worker_id: worker.id.clone(),
                    state: s,
                    n_states: n,
                });
            }
            let d = self.distribution(prev);
            out.push(StepPrediction {
                log_prob: d[s].ln(),
                probs: full.then(|| d.iter().map(|&p| p as f32).collect()),
            });
            prev = Some(s);
        }
        Ok(out)
    }
}
