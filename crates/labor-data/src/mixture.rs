//! Training mixtures for the paper's "value of data" experiments: a specialist (one survey's
//! training split), a subsample of the union of several surveys' training splits (20 … 100% of
//! the workers), or a base survey plus extra workers drawn from the others (P% of the base's
//! size). Sampling is by worker, seeded, without replacement.
//!
//! ```
//! use labor_data::{Preset, SynthBuilder};
//! use labor_data::MixtureBuilder;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let synth = |p, n, s| SynthBuilder::new(p).with_workers(n).with_seed(s).build().map(|b| b.generate().panel);
//! let (nlsy, psid) = (synth(Preset::Nlsy79, 40, 1)?, synth(Preset::Psid81, 30, 2)?);
//! // 50% of the union of both: 35 workers.
//! let half = MixtureBuilder::new(vec![nlsy.clone(), psid.clone()]).with_fraction(0.5).build()?;
//! assert_eq!(half.len(), 35);
//! // NLSY79 plus 25% extra workers (10) from PSID.
//! let plus = MixtureBuilder::new(vec![nlsy]).with_extra(vec![psid], 0.25).build()?;
//! assert_eq!(plus.len(), 50);
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::panel::Panel;
use labor_rand::SeededRng;

/// Builds a training mixture: a specialist (one panel), a seeded subsample of the union of
/// several training panels, or a base plus extra workers drawn from other panels (sampling by
/// worker, without replacement).
#[derive(Debug, Clone)]
pub struct MixtureBuilder {
    train: Vec<Panel>,
    fraction: f64,
    extra: Vec<Panel>,
    extra_fraction: f64,
    seed: u64,
}

impl MixtureBuilder {
    /// The union of `train` (the training splits of one or more surveys over one taxonomy).
    pub fn new(train: Vec<Panel>) -> Self {
        Self {
            train,
            fraction: 1.0,
            extra: Vec::new(),
            extra_fraction: 0.0,
            seed: 0,
        }
    }

    /// Keep this fraction of the union's workers, in `(0, 1]` (default 1).
    #[must_use]
    pub fn with_fraction(mut self, fraction: f64) -> Self {
        self.fraction = fraction;
        self
    }

    /// Add `fraction × (workers kept from the base)` workers drawn from the union of `extra`.
    #[must_use]
    pub fn with_extra(mut self, extra: Vec<Panel>, fraction: f64) -> Self {
        self.extra = extra;
        self.extra_fraction = fraction;
        self
    }

    /// Seed of the sampling (default 0).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Draws the mixture.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for fractions out of range or too few extra workers,
    /// [`Error::Taxonomy`] or [`Error::InvalidWorker`] for panels over different taxonomies or
    /// repeated worker ids.
    pub fn build(self) -> Result<Panel> {
        let bad = |name, detail: String| Err(Error::InvalidArgument { name, detail });
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return bad(
                "mix fraction",
                format!("{} is not in (0, 1]", self.fraction),
            );
        }
        if !(self.extra_fraction >= 0.0 && self.extra_fraction.is_finite()) {
            return bad(
                "extra fraction",
                format!("{} is not a non-negative number", self.extra_fraction),
            );
        }
        let union = Panel::concat(&self.train)?;
        let n = (self.fraction * union.len() as f64).round() as usize;
        let mut order: Vec<usize> = (0..union.len()).collect();
        SeededRng::with_stream(self.seed, 0).shuffle(&mut order);
        let mut keep = vec![false; union.len()];
        for &i in &order[..n] {
            keep[i] = true;
        }
        let mut workers: Vec<_> = union
            .workers()
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w.clone())
            .collect();
        let n_extra = (self.extra_fraction * n as f64).round() as usize;
        if n_extra > 0 {
            let pool = Panel::concat(&self.extra)?;
            if *pool.taxonomy() != *union.taxonomy() {
                return bad("extra", "the extra panels use another taxonomy".to_string());
            }
            if n_extra > pool.len() {
                return bad(
                    "extra fraction",
                    format!(
                        "{n_extra} extra workers asked for, the extra panels have {}",
                        pool.len()
                    ),
                );
            }
            let mut order: Vec<usize> = (0..pool.len()).collect();
            SeededRng::with_stream(self.seed, 1).shuffle(&mut order);
            let mut take = order[..n_extra].to_vec();
            take.sort_unstable();
            workers.extend(take.into_iter().map(|i| pool.workers()[i].clone()));
        }
        Panel::new(union.taxonomy().clone(), workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, SynthBuilder};
    use proptest::prelude::*;

    fn panel(preset: Preset, n: usize, seed: u64) -> Panel {
        SynthBuilder::new(preset)
            .with_workers(n)
            .with_seed(seed)
            .build()
            .unwrap()
            .generate()
            .panel
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn sizes_and_membership(frac in 0.05f64..=1.0, extra in 0.0f64..=1.0, seed in 0u64..1000) {
            let a = panel(Preset::Nlsy79, 30, 1);
            let b = panel(Preset::Psid81, 40, 2);
            let m = MixtureBuilder::new(vec![a.clone()])
                .with_fraction(frac)
                .with_extra(vec![b.clone()], extra)
                .with_seed(seed)
                .build()
                .unwrap();
            let n_base = (frac * 30.0).round() as usize;
            let n_extra = (extra * n_base as f64).round() as usize;
            prop_assert_eq!(m.len(), n_base + n_extra);
            let from_a = m.workers().iter().filter(|w| a.workers().iter().any(|x| x.id == w.id)).count();
            prop_assert_eq!(from_a, n_base);
            // Same seed, same mixture.
            let again = MixtureBuilder::new(vec![a]).with_fraction(frac)
                .with_extra(vec![b], extra).with_seed(seed).build().unwrap();
            prop_assert_eq!(again.workers(), m.workers());
        }
    }

    #[test]
    fn rejects_bad_fractions() {
        let a = panel(Preset::Nlsy79, 10, 1);
        assert!(
            MixtureBuilder::new(vec![a.clone()])
                .with_fraction(0.0)
                .build()
                .is_err()
        );
        assert!(
            MixtureBuilder::new(vec![a.clone()])
                .with_fraction(1.5)
                .build()
                .is_err()
        );
        let b = panel(Preset::Psid81, 3, 2);
        // 100% extra of 10 needs 10 workers; there are 3.
        assert!(
            MixtureBuilder::new(vec![a])
                .with_extra(vec![b], 1.0)
                .build()
                .is_err()
        );
    }
}
