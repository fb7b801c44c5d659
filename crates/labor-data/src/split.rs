//! Worker-level train/validation/test split, deterministic for a seed on every platform.
//!
//! A worker's split depends only on the seed and its id: the id is hashed with SipHash-1-3 keyed
//! by the seed, the hash becomes a uniform number in `[0, 1)`, and the fractions (70/10/20 by
//! default) cut that interval. The same worker lands in the same split whatever else the panel
//! holds, in whatever order, on whatever machine.
//!
//! ```
//! use labor_data::{Split, SplitterBuilder};
//! let splitter = SplitterBuilder::new().with_seed(0).build().unwrap();
//! let s = splitter.assign("nlsy79-000001");
//! assert_eq!(s, splitter.assign("nlsy79-000001"));
//! assert!(matches!(s, Split::Train | Split::Valid | Split::Test));
//! ```

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use siphasher::sip::SipHasher13;

use crate::atomic::AtomicDir;
use crate::error::{Error, Result};
use crate::panel::Panel;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    /// Training workers.
    Train,
    /// Validation workers (checkpoint selection).
    Valid,
    /// Test workers (reported metrics).
    Test,
}

impl Split {
    /// All three, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// `train`, `valid` or `test` (the file stems written by `labor split`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }

    /// `train.parquet`, `valid.parquet` or `test.parquet`: the file of this part in a split
    /// directory ([`SplitPanels::write_dir`]).
    pub fn file_name(self) -> String {
        format!("{}.parquet", self.as_str())
    }
}

/// Builds a [`Splitter`].
#[derive(Debug, Clone)]
pub struct SplitterBuilder {
    seed: u64,
    fractions: [f64; 3],
}

impl Default for SplitterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SplitterBuilder {
    /// Seed 0, fractions 0.7 / 0.1 / 0.2.
    pub fn new() -> Self {
        Self {
            seed: 0,
            fractions: [0.7, 0.1, 0.2],
        }
    }

    /// The seed keying the hash.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Train, validation and test fractions; they must be non-negative and sum to 1.
    #[must_use]
    pub fn with_fractions(mut self, train: f64, valid: f64, test: f64) -> Self {
        self.fractions = [train, valid, test];
        self
    }

    /// Checks the fractions.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a fraction is negative or not finite, or they do not sum to 1
    /// (within 1e-9).
    pub fn build(self) -> Result<Splitter> {
        let [a, b, c] = self.fractions;
        if self.fractions.iter().any(|f| !f.is_finite() || *f < 0.0)
            || ((a + b + c) - 1.0).abs() > 1e-9
        {
            return Err(Error::InvalidArgument {
                name: "split fractions",
                detail: format!("{a}, {b}, {c} must be non-negative and sum to 1"),
            });
        }
        Ok(Splitter {
            seed: self.seed,
            cut_train: a,
            cut_valid: a + b,
        })
    }
}

/// Assigns workers to splits (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Splitter {
    seed: u64,
    cut_train: f64,
    cut_valid: f64,
}

/// The three parts of a split panel.
#[derive(Debug, Clone)]
pub struct SplitPanels {
    /// Training workers.
    pub train: Panel,
    /// Validation workers.
    pub valid: Panel,
    /// Test workers.
    pub test: Panel,
}

/// One line per part: its name, workers and worker-years.
impl std::fmt::Display for SplitPanels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in Split::ALL {
            let part = self.get(s);
            writeln!(
                f,
                "{:>5}: {:>6} workers, {:>8} worker-years",
                s.as_str(),
                part.len(),
                part.n_worker_years()
            )?;
        }
        Ok(())
    }
}

impl SplitPanels {
    /// A warning for each empty part (too few workers for the fractions).
    pub fn empty_part_warnings(&self) -> Vec<String> {
        let workers: usize = Split::ALL.iter().map(|s| self.get(*s).len()).sum();
        Split::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_empty())
            .map(|s| {
                format!(
                    "the {} part is empty ({workers} workers in all)",
                    s.as_str()
                )
            })
            .collect()
    }

    /// The part for `split`.
    pub fn get(&self, split: Split) -> &Panel {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// Writes `train.parquet`, `valid.parquet` and `test.parquet` into `dir` (its parent is
    /// created if needed) as one set: they are written into a staging directory swapped in
    /// together, so a failure part-way never leaves a new `train.parquet` beside an old
    /// `test.parquet`. Returns the three paths in [`Split::ALL`] order.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Parquet`] naming the file; nothing in `dir` changes then.
    pub fn write_dir(&self, dir: impl AsRef<Path>) -> Result<[PathBuf; 3]> {
        let dir = dir.as_ref();
        if let Some(parent) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let set = AtomicDir::create(dir)?;
        for s in Split::ALL {
            crate::io::write_parquet(self.get(s), set.path().join(s.file_name()))?;
        }
        set.commit()?;
        Ok(Split::ALL.map(|s| dir.join(s.file_name())))
    }
}

impl Splitter {
    /// The uniform number in `[0, 1)` that decides `worker_id`'s split.
    pub fn uniform(&self, worker_id: &str) -> f64 {
        let mut h = SipHasher13::new_with_keys(self.seed, 0x6c61_626f_722d_7370);
        h.write(worker_id.as_bytes());
        (h.finish() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// The split of `worker_id`.
    pub fn assign(&self, worker_id: &str) -> Split {
        let u = self.uniform(worker_id);
        if u < self.cut_train {
            Split::Train
        } else if u < self.cut_valid {
            Split::Valid
        } else {
            Split::Test
        }
    }

    /// Splits a panel into its three parts (each over the same taxonomy).
    pub fn split(&self, panel: &Panel) -> SplitPanels {
        SplitPanels {
            train: panel.filter(|w| self.assign(&w.id) == Split::Train),
            valid: panel.filter(|w| self.assign(&w.id) == Split::Valid),
            test: panel.filter(|w| self.assign(&w.id) == Split::Test),
        }
    }
}

/// The `workers` workers of `panel` with the smallest keyed hash of their id (SipHash-1-3 keyed
/// by `seed`, with a key of its own so that a sample of a split part is independent of the
/// split), in the panel's order. Like the split, a worker's place depends only on the seed and
/// its id, so samples of growing sizes with one seed are nested: the 250 workers of a
/// 250-worker sample are among the 500 of a 500-worker sample. This is what a comparison at
/// several training sizes needs.
///
/// ```
/// use std::sync::Arc;
/// use labor_data::{subsample, Education, Panel, StateId, Taxonomy, Worker, YearRecord};
/// let tax = Arc::new(Taxonomy::occ1990dd());
/// let workers = (0..100)
///     .map(|i| {
///         let mut w = Worker::new(format!("w{i}"), "demo");
///         w.records.push(YearRecord::new(2000, StateId(0), Education::HighSchool));
///         w
///     })
///     .collect();
/// let panel = Panel::new(tax, workers).unwrap();
/// let small = subsample(&panel, 10, 0).unwrap();
/// let large = subsample(&panel, 40, 0).unwrap();
/// assert_eq!(small.len(), 10);
/// assert!(small.workers().iter().all(|w| large.workers().iter().any(|v| v.id == w.id)));
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `workers` is zero or more than the panel holds.
pub fn subsample(panel: &Panel, workers: usize, seed: u64) -> Result<Panel> {
    if workers == 0 || workers > panel.len() {
        return Err(Error::InvalidArgument {
            name: "workers",
            detail: format!(
                "cannot sample {workers} workers from a panel of {}",
                panel.len()
            ),
        });
    }
    let key = |id: &str| {
        let mut h = SipHasher13::new_with_keys(seed, 0x6c61_626f_722d_7373);
        h.write(id.as_bytes());
        (h.finish(), id.to_string())
    };
    let mut keys: Vec<(u64, String)> = panel.workers().iter().map(|w| key(&w.id)).collect();
    keys.sort_unstable();
    let kept: std::collections::HashSet<String> =
        keys.into_iter().take(workers).map(|(_, id)| id).collect();
    Ok(panel.filter(|w| kept.contains(&w.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three files come back as the three parts, in `Split::ALL` order, under a parent
    /// directory that did not exist; a second write replaces the set.
    #[test]
    fn write_dir_writes_the_three_parts_as_one_set() {
        let panel = crate::SynthBuilder::new(crate::Preset::Nlsy79)
            .with_workers(30)
            .with_seed(4)
            .build()
            .unwrap()
            .generate()
            .panel;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/split");
        for seed in [0, 1] {
            let parts = SplitterBuilder::new()
                .with_seed(seed)
                .build()
                .unwrap()
                .split(&panel);
            let paths = parts.write_dir(&out).unwrap();
            for (s, p) in Split::ALL.into_iter().zip(&paths) {
                assert_eq!(p, &out.join(format!("{}.parquet", s.as_str())));
                assert_eq!(&crate::io::read_parquet(p).unwrap(), parts.get(s));
            }
        }
    }

    #[test]
    fn fractions_are_respected_and_checked() {
        let s = SplitterBuilder::new().with_seed(11).build().unwrap();
        let mut counts = [0usize; 3];
        for i in 0..100_000 {
            counts[s.assign(&format!("w{i}")) as usize] += 1;
        }
        assert!((counts[0] as f64 / 1e5 - 0.7).abs() < 0.006, "{counts:?}");
        assert!((counts[1] as f64 / 1e5 - 0.1).abs() < 0.006, "{counts:?}");
        assert!(
            SplitterBuilder::new()
                .with_fractions(0.5, 0.5, 0.5)
                .build()
                .is_err()
        );
    }

    #[test]
    fn assignment_is_pinned_across_platforms() {
        // SipHash-1-3 over the id bytes: these values must never change, or every saved
        // split would silently move workers between train and test.
        let s = SplitterBuilder::new().with_seed(0).build().unwrap();
        let u = s.uniform("worker-1");
        let again = SplitterBuilder::new()
            .with_seed(0)
            .build()
            .unwrap()
            .uniform("worker-1");
        assert_eq!(u.to_bits(), again.to_bits());
        let other_seed = SplitterBuilder::new()
            .with_seed(1)
            .build()
            .unwrap()
            .uniform("worker-1");
        assert_ne!(u, other_seed);
    }

    #[test]
    fn subsamples_are_nested_sized_and_checked() {
        let tax = std::sync::Arc::new(crate::Taxonomy::occ1990dd());
        let workers = (0..500)
            .map(|i| {
                let mut w = crate::Worker::new(format!("w{i}"), "t");
                w.records.push(crate::YearRecord::new(
                    2000,
                    crate::StateId(0),
                    crate::Education::HighSchool,
                ));
                w
            })
            .collect();
        let panel = Panel::new(tax, workers).unwrap();
        let ids = |p: &Panel| -> Vec<String> { p.workers().iter().map(|w| w.id.clone()).collect() };
        let mut previous: Vec<String> = Vec::new();
        for n in [1, 50, 125, 250, 499, 500] {
            let s = subsample(&panel, n, 3).unwrap();
            assert_eq!(s.len(), n);
            let now = ids(&s);
            assert!(
                previous.iter().all(|id| now.contains(id)),
                "not nested at {n}"
            );
            // Kept in the panel's order.
            let pos: Vec<usize> = now.iter().map(|id| id[1..].parse().unwrap()).collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]));
            previous = now;
        }
        assert_ne!(
            ids(&subsample(&panel, 50, 3).unwrap()),
            ids(&subsample(&panel, 50, 4).unwrap())
        );
        assert!(subsample(&panel, 0, 3).is_err());
        assert!(subsample(&panel, 501, 3).is_err());
    }
}
