//! The canonical worker-year panel.
//!
//! A [`Panel`] is a list of [`Worker`]s over one [`Taxonomy`]. A worker carries static attributes
//! (id, source dataset, gender, race/ethnicity, region, birth year, optional survey weight) and
//! one [`YearRecord`] per *observed* year: the state of that year (an occupation or a special
//! state) and the education level reached by that year.
//!
//! **Gap years are kept as gaps.** A year the survey did not observe (a non-interview, a
//! biennial wave, a missing answer) simply has no record; nothing fills it in. [`Worker::gaps`]
//! lists them, and templates and models see the jump in years.
//!
//! ```
//! use std::sync::Arc;
//! use labor_data::{Education, Panel, SpecialState, Taxonomy, Worker, YearRecord};
//! let tax = Arc::new(Taxonomy::occ1990dd());
//! let cook = tax.id_of_code("436").unwrap();
//! let mut w = Worker::new("w1", "psid");
//! w.records = vec![
//!     YearRecord::new(1984, cook, Education::SomeCollege),
//!     YearRecord::new(1985, cook, Education::SomeCollege),
//!     YearRecord::new(1987, tax.special(SpecialState::Unemployed), Education::SomeCollege),
//! ];
//! assert_eq!(w.gaps(), vec![1986]);
//! let panel = Panel::new(tax, vec![w]).unwrap();
//! assert_eq!(panel.n_worker_years(), 3);
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::taxonomy::{StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};

/// The observation of one worker in one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearRecord {
    /// Calendar year.
    pub year: i32,
    /// The state: an occupation or a special state of the panel's taxonomy.
    pub state: StateId,
    /// Highest education reached by that year.
    pub education: Education,
}

impl YearRecord {
    /// A record.
    pub fn new(year: i32, state: StateId, education: Education) -> Self {
        Self {
            year,
            state,
            education,
        }
    }
}

/// One worker: static attributes and the observed years, sorted by year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// Identifier, unique within the panel.
    pub id: String,
    /// Source dataset (`nlsy79`, `nlsy97`, `psid`, or a user's name).
    pub dataset: String,
    /// Gender.
    pub gender: Gender,
    /// Race/ethnicity.
    pub ethnicity: Ethnicity,
    /// Region of residence (the first observed one for surveys that record it yearly).
    pub region: Region,
    /// Birth year, when known.
    pub birth_year: Option<i32>,
    /// Survey weight, when the source has one.
    pub weight: Option<f64>,
    /// Observed years, strictly increasing.
    pub records: Vec<YearRecord>,
}

impl Worker {
    /// A worker with unknown attributes and no records.
    pub fn new(id: impl Into<String>, dataset: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            dataset: dataset.into(),
            gender: Gender::Unknown,
            ethnicity: Ethnicity::Unknown,
            region: Region::Unknown,
            birth_year: None,
            weight: None,
            records: Vec::new(),
        }
    }

    /// Years between the first and last record that have no record.
    pub fn gaps(&self) -> Vec<i32> {
        self.records
            .windows(2)
            .flat_map(|w| (w[0].year + 1)..w[1].year)
            .collect()
    }

    /// First and last observed year.
    pub fn span(&self) -> Option<(i32, i32)> {
        Some((self.records.first()?.year, self.records.last()?.year))
    }

    /// Checks the invariants: a non-empty id, at least one record, strictly increasing years,
    /// states inside `taxonomy`.
    ///
    /// # Errors
    /// [`Error::InvalidWorker`] or [`Error::StateOutOfRange`].
    pub fn validate(&self, taxonomy: &Taxonomy) -> Result<()> {
        let invalid = |detail: String| Error::InvalidWorker {
            worker_id: self.id.clone(),
            detail,
        };
        if self.id.is_empty() {
            return Err(invalid("empty worker id".into()));
        }
        if self.records.is_empty() {
            return Err(invalid("no observed year".into()));
        }
        for w in self.records.windows(2) {
            if w[1].year <= w[0].year {
                return Err(invalid(format!(
                    "years must increase strictly, found {} after {}",
                    w[1].year, w[0].year
                )));
            }
        }
        for r in &self.records {
            taxonomy.check(r.state)?;
        }
        if let Some(w) = self.weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(invalid(format!("weight {w} is not a non-negative number")));
        }
        Ok(())
    }
}

/// Workers over one taxonomy.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    taxonomy: Arc<Taxonomy>,
    workers: Vec<Worker>,
}

impl Panel {
    /// A panel, after checking every worker and that ids are unique.
    ///
    /// # Errors
    /// The first invalid worker's error ([`Worker::validate`]), or [`Error::InvalidWorker`] for a
    /// repeated id.
    pub fn new(taxonomy: Arc<Taxonomy>, workers: Vec<Worker>) -> Result<Self> {
        let mut seen = HashSet::with_capacity(workers.len());
        for w in &workers {
            w.validate(&taxonomy)?;
            if !seen.insert(w.id.as_str()) {
                return Err(Error::InvalidWorker {
                    worker_id: w.id.clone(),
                    detail: "worker id appears twice in the panel".into(),
                });
            }
        }
        Ok(Self { taxonomy, workers })
    }

    /// The taxonomy the states refer to.
    pub fn taxonomy(&self) -> &Arc<Taxonomy> {
        &self.taxonomy
    }

    /// The workers.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// `true` without workers.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Total number of observed worker-years.
    pub fn n_worker_years(&self) -> usize {
        self.workers.iter().map(|w| w.records.len()).sum()
    }

    /// The workers, consuming the panel.
    pub fn into_workers(self) -> Vec<Worker> {
        self.workers
    }

    /// A panel of the workers for which `keep` is true, over the same taxonomy.
    pub fn filter(&self, mut keep: impl FnMut(&Worker) -> bool) -> Panel {
        Panel {
            taxonomy: Arc::clone(&self.taxonomy),
            workers: self.workers.iter().filter(|w| keep(w)).cloned().collect(),
        }
    }

    /// Concatenates panels over the same taxonomy (e.g. the training splits of three surveys).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the taxonomies differ, or a repeated worker id.
    pub fn concat(panels: &[Panel]) -> Result<Panel> {
        let Some(first) = panels.first() else {
            return Err(Error::InvalidArgument {
                name: "panels",
                detail: "nothing to concatenate".into(),
            });
        };
        if panels.iter().any(|p| *p.taxonomy != *first.taxonomy) {
            return Err(Error::InvalidArgument {
                name: "panels",
                detail: "panels use different taxonomies".into(),
            });
        }
        let workers = panels
            .iter()
            .flat_map(|p| p.workers.iter().cloned())
            .collect();
        Panel::new(Arc::clone(&first.taxonomy), workers)
    }
}
