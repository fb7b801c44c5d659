//! Worker-level (cluster) bootstrap of perplexity and of paired perplexity differences.
//!
//! Targets of one worker are correlated, so the resampling unit is the worker: each replicate
//! draws as many workers as the test set has, with replacement, and recomputes
//! `PPL = exp(-Σ_i c_i S_i / Σ_i c_i W_i)` from per-worker sums `S_i = Σ w·log p`,
//! `W_i = Σ w` and the draw counts `c_i`. The standard error is the standard deviation of the
//! replicates; the interval is their percentile interval. For a paired difference
//! `PPL(A) − PPL(B)` both models are evaluated on the same replicates (as the paper reports).
//!
//! Replicate `r` uses its own seeded stream, so results depend only on the seed, not on the
//! number of threads.
//!
//! ```
//! use labor_eval::{Bootstrap, ScoreSet};
//! let mut s = ScoreSet::new();
//! for w in 0..50 {
//!     for t in 0..5 {
//!         s.push(&format!("w{w}"), -1.0 - 0.01 * ((w * 7 + t * 3) % 11) as f64, 1.0).unwrap();
//!     }
//! }
//! let est = Bootstrap::new().with_resamples(200).with_seed(1).perplexity(&s).unwrap();
//! assert!(est.ci.0 <= est.value && est.value <= est.ci.1);
//! assert!(est.se > 0.0);
//! ```

use labor_rand::SplitMix64;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::scores::ScoreSet;

/// A point estimate with its bootstrap standard error and percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The estimate on the full data.
    pub value: f64,
    /// Standard deviation of the bootstrap replicates.
    pub se: f64,
    /// Percentile interval of the replicates at the configured level.
    pub ci: (f64, f64),
    /// Number of replicates.
    pub resamples: usize,
}

/// The most bootstrap replicates [`Bootstrap`] accepts (a million replicates of the paper's
/// test sets take minutes; more give nothing but a larger allocation).
pub const MAX_RESAMPLES: usize = 1_000_000;

/// Configures the cluster bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    resamples: usize,
    seed: u64,
    level: f64,
    threads: usize,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self::new()
    }
}

impl Bootstrap {
    /// 1,000 replicates, seed 0, 95% intervals, all available cores.
    pub fn new() -> Self {
        Self {
            resamples: 1000,
            seed: 0,
            level: 0.95,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Number of replicates.
    #[must_use]
    pub fn with_resamples(mut self, b: usize) -> Self {
        self.resamples = b;
        self
    }

    /// Seed of the resampling.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Coverage of the percentile interval, in (0, 1).
    #[must_use]
    pub fn with_level(mut self, level: f64) -> Self {
        self.level = level;
        self
    }

    /// Worker threads (results do not depend on it).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Number of replicates.
    pub fn resamples(&self) -> usize {
        self.resamples
    }

    /// Seed of the resampling.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Coverage of the percentile interval.
    pub fn level(&self) -> f64 {
        self.level
    }

    fn check(&self) -> Result<()> {
        if self.resamples > MAX_RESAMPLES {
            return Err(Error::InvalidArgument {
                name: "resamples",
                detail: format!(
                    "{} (at most {MAX_RESAMPLES}; 1,000 give SEs to about 2%)",
                    self.resamples
                ),
            });
        }
        if self.resamples < 2 {
            return Err(Error::InvalidArgument {
                name: "resamples",
                detail: format!(
                    "{} (at least 2 are needed for a standard error)",
                    self.resamples
                ),
            });
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::InvalidArgument {
                name: "level",
                detail: format!("{} is not in (0, 1)", self.level),
            });
        }
        Ok(())
    }

    /// Draw counts of each of `n` workers in replicate `r`.
    fn counts(&self, n: usize, r: usize, counts: &mut [u32]) {
        counts.iter_mut().for_each(|c| *c = 0);
        let mut s = replicate_stream(self.seed, r as u64);
        for _ in 0..n {
            counts[s.scaled(n)] += 1;
        }
    }

    /// Runs `stat(counts)` on every replicate, in parallel, in replicate order.
    fn replicates(&self, n: usize, stat: impl Fn(&[u32]) -> f64 + Sync) -> Vec<f64> {
        let mut out = vec![0.0; self.resamples];
        let chunk = self.resamples.div_ceil(self.threads);
        std::thread::scope(|scope| {
            for (c, slot) in out.chunks_mut(chunk).enumerate() {
                let stat = &stat;
                scope.spawn(move || {
                    let mut counts = vec![0u32; n];
                    for (j, v) in slot.iter_mut().enumerate() {
                        self.counts(n, c * chunk + j, &mut counts);
                        *v = stat(&counts);
                    }
                });
            }
        });
        out
    }

    /// An estimate without a standard error: every replicate of fewer than two workers is the
    /// sample itself, so its spread (zero) would say nothing about the uncertainty.
    fn without_se(value: f64) -> Estimate {
        Estimate {
            value,
            se: f64::NAN,
            ci: (f64::NAN, f64::NAN),
            resamples: 0,
        }
    }

    fn summarise(&self, value: f64, mut reps: Vec<f64>) -> Estimate {
        // A replicate that drew only zero-weight workers has no perplexity: leave it out.
        reps.retain(|x| x.is_finite());
        if reps.len() < 2 {
            return Estimate {
                value,
                se: f64::NAN,
                ci: (f64::NAN, f64::NAN),
                resamples: reps.len(),
            };
        }
        let b = reps.len() as f64;
        let mean = reps.iter().sum::<f64>() / b;
        let se = (reps.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (b - 1.0)).sqrt();
        reps.sort_by(f64::total_cmp);
        let q = |p: f64| {
            // Linear interpolation between order statistics.
            let pos = p * (b - 1.0);
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            reps[lo] + (reps[hi] - reps[lo]) * (pos - lo as f64)
        };
        let alpha = (1.0 - self.level) / 2.0;
        Estimate {
            value,
            se,
            ci: (q(alpha).min(value), q(1.0 - alpha).max(value)),
            resamples: reps.len(),
        }
    }

    /// Perplexity of `scores` with its cluster-bootstrap standard error and interval.
    ///
    /// The interval is widened to contain the point estimate if the percentile interval does
    /// not (possible with very few workers). With fewer than two workers there is no standard
    /// error: `se` and the interval are NaN (`null` in JSON) and `resamples` is 0.
    ///
    /// # Errors
    /// [`Error::Empty`], or [`Error::InvalidArgument`] for fewer than 2 or more than
    /// [`MAX_RESAMPLES`] replicates or a level outside (0, 1).
    pub fn perplexity(&self, scores: &ScoreSet) -> Result<Estimate> {
        self.check()?;
        let value = scores.perplexity()?;
        let (s, w) = scores.cluster_sums();
        if s.len() < 2 {
            return Ok(Self::without_se(value));
        }
        let reps = self.replicates(s.len(), |c| ppl(&s, &w, c));
        Ok(self.summarise(value, reps))
    }

    /// `PPL(a) − PPL(b)` on the same targets, with the bootstrap of the difference on shared
    /// replicates.
    ///
    /// # Errors
    /// [`Error::Unpaired`] if the sets do not cover the same targets, else as
    /// [`Bootstrap::perplexity`].
    pub fn paired_difference(&self, a: &ScoreSet, b: &ScoreSet) -> Result<Estimate> {
        self.check()?;
        a.check_paired(b)?;
        let value = a.perplexity()? - b.perplexity()?;
        let (sa, w) = a.cluster_sums();
        let (sb, _) = b.cluster_sums();
        if sa.len() < 2 {
            return Ok(Self::without_se(value));
        }
        let reps = self.replicates(sa.len(), |c| ppl(&sa, &w, c) - ppl(&sb, &w, c));
        Ok(self.summarise(value, reps))
    }
}

impl Bootstrap {
    /// Perplexity with its bootstrap SE within each subgroup (`groups[i]` labels target `i`,
    /// e.g. gender, dataset or decade), resampling the workers of each group.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], or as [`Bootstrap::perplexity`] for a group (a group whose
    /// weights sum to zero is an [`Error::Empty`]).
    pub fn by_group<S: AsRef<str>>(
        &self,
        scores: &ScoreSet,
        groups: &[S],
    ) -> Result<std::collections::BTreeMap<String, Estimate>> {
        if groups.len() != scores.n_targets() {
            return Err(Error::LengthMismatch {
                what: "group labels and targets",
                left: groups.len(),
                right: scores.n_targets(),
            });
        }
        let labels: std::collections::BTreeSet<&str> = groups.iter().map(AsRef::as_ref).collect();
        labels
            .into_iter()
            .map(|g| {
                let sub = scores.subset(|i| groups[i].as_ref() == g);
                self.perplexity(&sub).map(|e| (g.to_string(), e))
            })
            .collect()
    }
}

fn ppl(s: &[f64], w: &[f64], counts: &[u32]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for ((si, wi), c) in s.iter().zip(w).zip(counts) {
        let c = f64::from(*c);
        num += c * si;
        den += c * wi;
    }
    if den > 0.0 {
        (-num / den).exp()
    } else {
        f64::NAN
    }
}

/// The generator of bootstrap replicate `replicate`: SplitMix64 from the seed mixed with the
/// replicate's number, its first output discarded. Replicates are independent of each other and
/// of the threads that draw them.
fn replicate_stream(seed: u64, replicate: u64) -> SplitMix64 {
    let mut s = SplitMix64::new(seed ^ replicate.wrapping_mul(0xD1B5_4A32_D192_ED03));
    s.next_u64();
    s
}
