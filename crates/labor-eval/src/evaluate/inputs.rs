//! What the evaluator takes: predicted worker-years, subgroups and events.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// One predicted worker-year.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    /// The worker (the bootstrap's cluster).
    pub worker: String,
    /// The year predicted.
    pub year: i32,
    /// Index of the record in the worker's career (0 = the first observed year).
    pub position: u32,
    /// The observed state, an index below the model's `n_states`.
    pub state: usize,
    /// The previous record's state (`None` for the first record or when unknown).
    pub previous: Option<usize>,
    /// Natural log of the probability the model gave the observed state.
    pub log_prob: f64,
    /// Weight of the target (a survey weight, or 1).
    pub weight: f64,
}

impl TargetRow {
    /// A row of weight 1.
    pub fn new(
        worker: impl Into<String>,
        year: i32,
        position: u32,
        state: usize,
        previous: Option<usize>,
        log_prob: f64,
    ) -> Self {
        Self {
            worker: worker.into(),
            year,
            position,
            state,
            previous,
            log_prob,
            weight: 1.0,
        }
    }

    /// The same row with weight `w`.
    #[must_use]
    pub fn with_weight(mut self, w: f64) -> Self {
        self.weight = w;
        self
    }
}

/// One model's predictions: rows and, for all rows or none, the full distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPredictions {
    pub(super) name: String,
    pub(super) n_states: usize,
    pub(super) rows: Vec<TargetRow>,
    pub(super) probs: Option<Vec<f32>>,
}

impl ModelPredictions {
    /// No rows yet, for a model named `name` over `n_states` outcomes.
    pub fn new(name: impl Into<String>, n_states: usize) -> Self {
        Self {
            name: name.into(),
            n_states,
            rows: Vec::new(),
            probs: None,
        }
    }

    /// Appends a row with its distribution (`probs[s]` = probability of outcome `s`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a state outside `n_states`, a distribution of the wrong
    /// length or with a negative or non-finite entry, or a distribution given for some rows
    /// but not others; [`Error::InvalidLogProb`] / [`Error::InvalidWeight`] as
    /// [`ScoreSet::push`](crate::ScoreSet::push) (a log-probability up to `1e-6` above zero, a rounding error, is
    /// read as 0).
    pub fn push(&mut self, mut row: TargetRow, probs: Option<&[f32]>) -> Result<()> {
        let index = self.rows.len();
        let bad = |detail: String| Error::InvalidArgument {
            name: "prediction",
            detail: format!("row {index} (worker `{}`): {detail}", row.worker),
        };
        if row.state >= self.n_states || row.previous.is_some_and(|p| p >= self.n_states) {
            return Err(bad(format!("state outside the {} outcomes", self.n_states)));
        }
        if row.log_prob > 0.0 && row.log_prob <= 1e-6 {
            row.log_prob = 0.0;
        }
        if !(row.log_prob.is_finite() && row.log_prob <= 0.0) {
            return Err(Error::InvalidLogProb {
                index,
                worker: row.worker,
                value: row.log_prob,
            });
        }
        if !(row.weight.is_finite() && row.weight >= 0.0) {
            return Err(Error::InvalidWeight {
                index,
                worker: row.worker,
                value: row.weight,
            });
        }
        match (probs, &mut self.probs) {
            (Some(p), store) => {
                if p.len() != self.n_states {
                    return Err(bad(format!(
                        "{} probabilities for {} outcomes",
                        p.len(),
                        self.n_states
                    )));
                }
                if p.iter().any(|q| !(q.is_finite() && *q >= 0.0)) {
                    return Err(bad("a probability is negative or not finite".into()));
                }
                match store {
                    Some(s) => s.extend_from_slice(p),
                    None if index == 0 => *store = Some(p.to_vec()),
                    None => return Err(bad("a distribution after rows without one".into())),
                }
            }
            (None, Some(_)) => return Err(bad("no distribution after rows with one".into())),
            (None, None) => {}
        }
        self.rows.push(row);
        Ok(())
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of outcomes.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// The rows.
    pub fn rows(&self) -> &[TargetRow] {
        &self.rows
    }

    /// Whether the rows carry full distributions.
    pub fn has_distribution(&self) -> bool {
        self.probs.is_some()
    }

    /// The distribution of row `i`, when known.
    pub fn distribution(&self, i: usize) -> Option<&[f32]> {
        let n = self.n_states;
        self.probs.as_ref().and_then(|p| p.get(i * n..(i + 1) * n))
    }
}

/// Worker attributes to break perplexity down by (e.g. gender, ethnicity, region, dataset).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subgroups {
    pub(super) dims: Vec<String>,
    pub(super) by_worker: HashMap<String, Vec<String>>,
}

impl Subgroups {
    /// Attributes named `dims`, no worker yet.
    pub fn new<S: AsRef<str>>(dims: &[S]) -> Self {
        Self {
            dims: dims.iter().map(|d| d.as_ref().to_string()).collect(),
            by_worker: HashMap::new(),
        }
    }

    /// Sets a worker's values, one per dimension.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the number of values differs from the dimensions.
    pub fn insert<S: Into<String>>(&mut self, worker: &str, values: Vec<S>) -> Result<()> {
        if values.len() != self.dims.len() {
            return Err(Error::LengthMismatch {
                what: "subgroup values and dimensions",
                left: values.len(),
                right: self.dims.len(),
            });
        }
        self.by_worker.insert(
            worker.to_string(),
            values.into_iter().map(Into::into).collect(),
        );
        Ok(())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// Number of workers with values.
    pub fn len(&self) -> usize {
        self.by_worker.len()
    }

    /// Whether no worker has values.
    pub fn is_empty(&self) -> bool {
        self.by_worker.is_empty()
    }

    /// The value of dimension `d` for `worker` (`"unknown"` for a worker without values).
    pub(super) fn value(&self, worker: &str, d: usize) -> &str {
        self.by_worker
            .get(worker)
            .and_then(|v| v.get(d))
            .map_or("unknown", String::as_str)
    }
}

/// A binary event predicted from the full distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The state differs from the previous record's: `P = 1 − p(previous state)`; defined for
    /// targets whose previous state is known.
    Change {
        /// Name in reports.
        name: String,
    },
    /// Entering one of `states` (e.g. leaving the labour force): defined for targets whose
    /// previous state is known and not in `states`; `P = Σ p(s)`.
    Enter {
        /// Name in reports.
        name: String,
        /// The outcomes entered.
        states: Vec<usize>,
    },
    /// The state is one of `states`: `P = Σ p(s)`.
    InStates {
        /// Name in reports.
        name: String,
        /// The outcomes that make the event.
        states: Vec<usize>,
    },
}

impl Event {
    /// A job change, named `job_change`.
    pub fn change() -> Self {
        Event::Change {
            name: "job_change".into(),
        }
    }

    /// Being in one of `states`, named `name` (e.g. `unemployment`).
    pub fn in_states(name: impl Into<String>, states: Vec<usize>) -> Self {
        Event::InStates {
            name: name.into(),
            states,
        }
    }

    /// Entering one of `states` from outside them, named `name` (e.g. `leaving_labor_force`).
    pub fn enter(name: impl Into<String>, states: Vec<usize>) -> Self {
        Event::Enter {
            name: name.into(),
            states,
        }
    }

    /// The name in reports.
    pub fn name(&self) -> &str {
        match self {
            Event::Change { name } | Event::Enter { name, .. } | Event::InStates { name, .. } => {
                name
            }
        }
    }

    pub(super) fn states(&self) -> &[usize] {
        match self {
            Event::Change { .. } => &[],
            Event::Enter { states, .. } | Event::InStates { states, .. } => states,
        }
    }
}
