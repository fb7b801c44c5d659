//! Synthetic career panels with a known truth.
//!
//! Real survey microdata cannot be shipped, so the embedded default is a generator of panels
//! shaped like the paper's three surveys ([`Preset::Psid81`], [`Preset::Nlsy79`],
//! [`Preset::Nlsy97`]: survey waves, birth cohorts, demographic mix, response and attrition,
//! shares of education, unemployment and out-of-labor-force years, occupational persistence).
//!
//! # The career law
//! At each observed wave the state is drawn from an explicit distribution ([`CareerLaw`]) that
//! depends only on what the panel records, so the truth is exact:
//! - the special states through a multinomial logit in age, education, gender, race, calendar
//!   year (recessions), the previous state and the gap since the previous wave;
//! - staying in the current occupation with a probability that grows with tenure and shrinks
//!   with the gap; **returning to earlier occupations** (beyond the last one) by recency; moving
//!   within the current occupational group or elsewhere, with destinations weighted by
//!   popularity, the fit between education and the occupation's skill level, gender and race
//!   composition, region, and group trends over calendar years.
//!
//! Education is a covariate that advances with years spent in education. Because the law
//! conditions on more than the last job, a sequence model can beat a first-order transition
//! table; because it is explicit, [`CareerLaw::log_prob`] gives the true probability of every
//! observed state (and [`CareerLaw::distribution`] the full distribution), whose perplexity is
//! the floor no model can beat on that data.
//!
//! ```
//! use labor_data::{Preset, SynthBuilder};
//! let synth = SynthBuilder::new(Preset::Nlsy79).with_workers(300).with_seed(7).build().unwrap();
//! let out = synth.generate();
//! assert_eq!(out.panel.len(), 300);
//! let ppl = out.truth.perplexity();
//! assert!(ppl > 1.0 && ppl < 30.0, "{ppl}");
//! // The truth can be recomputed from the panel alone.
//! let w = &out.panel.workers()[0];
//! let lp = synth.law().log_prob(w, 0);
//! assert!((lp - out.truth.log_probs[0][0]).abs() < 1e-12);
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::panel::{Panel, Worker, YearRecord};
use crate::taxonomy::{SpecialState, StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};
use labor_rand::SeededRng;

mod law;
mod presets;

pub use law::CareerLaw;
pub use presets::{Preset, PresetSpec, PresetTargets};

/// Builds a [`Synthesizer`].
#[derive(Debug, Clone)]
pub struct SynthBuilder {
    preset: Preset,
    workers: Option<usize>,
    seed: u64,
    world_seed: u64,
    taxonomy: Option<Arc<Taxonomy>>,
}

impl SynthBuilder {
    /// A builder for `preset` with its real sample size, seed 0 and world seed 1990.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            workers: None,
            seed: 0,
            world_seed: 1990,
            taxonomy: None,
        }
    }

    /// Number of workers (default: the survey's sample size).
    #[must_use]
    pub fn with_workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Seed of the careers drawn.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Seed of the world (occupations' popularity, skill and composition); keep it fixed to
    /// compare panels drawn with different seeds from the same law.
    #[must_use]
    pub fn with_world_seed(mut self, seed: u64) -> Self {
        self.world_seed = seed;
        self
    }

    /// Taxonomy to draw occupations from (default: the built-in occ1990dd).
    #[must_use]
    pub fn with_taxonomy(mut self, taxonomy: Arc<Taxonomy>) -> Self {
        self.taxonomy = Some(taxonomy);
        self
    }

    /// Checks the settings and builds the law.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero workers or a taxonomy without occupations.
    pub fn build(self) -> Result<Synthesizer> {
        let spec = self.preset.spec();
        let workers = self.workers.unwrap_or(spec.workers);
        if workers == 0 {
            return Err(Error::InvalidArgument {
                name: "workers",
                detail: "must be at least 1".into(),
            });
        }
        let taxonomy = self
            .taxonomy
            .unwrap_or_else(|| Arc::new(Taxonomy::occ1990dd()));
        if taxonomy.occupation_ids().is_empty() {
            return Err(Error::InvalidArgument {
                name: "taxonomy",
                detail: "has no occupations".into(),
            });
        }
        let law = CareerLaw::new(Arc::clone(&taxonomy), self.world_seed, spec.shifts);
        Ok(Synthesizer {
            spec,
            workers,
            seed: self.seed,
            law,
        })
    }
}

/// Draws synthetic panels (see the module docs).
#[derive(Debug, Clone)]
pub struct Synthesizer {
    spec: PresetSpec,
    workers: usize,
    seed: u64,
    law: CareerLaw,
}

/// The true log-probability of every observed state, aligned with the panel's workers and records.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// `log_probs[i][k]` for worker `i`, record `k`.
    pub log_probs: Vec<Vec<f64>>,
}

impl Truth {
    /// Perplexity of the true law over every worker-year: `exp(-mean log p)`.
    pub fn perplexity(&self) -> f64 {
        let (s, n) = self
            .log_probs
            .iter()
            .flatten()
            .fold((0.0, 0usize), |(s, n), lp| (s + lp, n + 1));
        (-s / n.max(1) as f64).exp()
    }
}

/// A synthetic panel with its truth.
#[derive(Debug, Clone)]
pub struct SynthOutput {
    /// The panel.
    pub panel: Panel,
    /// The truth of each observed state.
    pub truth: Truth,
}

impl Synthesizer {
    /// The preset's specification.
    pub fn spec(&self) -> &PresetSpec {
        &self.spec
    }

    /// The career law (to compute the truth of any panel over the same taxonomy).
    pub fn law(&self) -> &CareerLaw {
        &self.law
    }

    /// Draws the panel. Worker `i` uses its own random stream, so the first `n` workers of a
    /// larger panel are the same as those of a panel of `n`.
    pub fn generate(&self) -> SynthOutput {
        self.generate_with_progress(|_| {})
    }

    /// As [`Synthesizer::generate`], calling `progress(done)` every 1,000 workers.
    pub fn generate_with_progress(&self, mut progress: impl FnMut(usize)) -> SynthOutput {
        let mut workers = Vec::with_capacity(self.workers);
        let mut truth = Vec::with_capacity(self.workers);
        for i in 0..self.workers {
            let mut rng = SeededRng::with_stream(self.seed, i as u64);
            let (w, t) = self.draw_worker(i, &mut rng);
            workers.push(w);
            truth.push(t);
            if (i + 1) % 1000 == 0 {
                progress(i + 1);
            }
        }
        progress(self.workers);
        let panel = Panel::new(Arc::clone(self.law.taxonomy()), workers);
        // Generated workers always satisfy the panel invariants (ids are unique, years
        // increase, states come from the taxonomy); a failure here is a bug.
        #[allow(clippy::expect_used)]
        let panel = panel.expect("synthetic workers are valid");
        SynthOutput {
            panel,
            truth: Truth { log_probs: truth },
        }
    }

    fn draw_worker(&self, i: usize, rng: &mut SeededRng) -> (Worker, Vec<f64>) {
        let spec = &self.spec;
        let mut w = Worker::new(format!("{}-{:06}", spec.dataset, i + 1), spec.dataset);
        w.gender = if rng.bernoulli(spec.female) {
            Gender::Female
        } else {
            Gender::Male
        };
        w.ethnicity = [
            Ethnicity::White,
            Ethnicity::Black,
            Ethnicity::Hispanic,
            Ethnicity::Other,
        ][rng.categorical(&spec.ethnicity)];
        w.region = [
            Region::Northeast,
            Region::NorthCentral,
            Region::South,
            Region::West,
        ][rng.categorical(&spec.region)];
        let (b0, b1) = spec.birth_years;
        let birth = b0 + rng.below((b1 - b0 + 1) as u64) as i32;
        w.birth_year = Some(birth);
        w.weight = Some((0.35 * rng.normal()).exp() * 1000.0);
        // Observed waves: eligible by age, joined (PSID) at a random wave, then response and
        // attrition.
        let eligible: Vec<i32> = spec
            .waves
            .iter()
            .copied()
            .filter(|y| (spec.ages.0..=spec.ages.1).contains(&(y - birth)))
            .collect();
        let start = if eligible.is_empty() || rng.bernoulli(spec.present_at_start) {
            0
        } else {
            rng.below(eligible.len() as u64) as usize
        };
        let mut years = Vec::new();
        for &y in eligible.iter().skip(start) {
            if rng.bernoulli(spec.response_rate) || years.is_empty() {
                years.push(y);
            }
            if rng.bernoulli(spec.attrition) {
                break;
            }
        }
        if years.is_empty() {
            // Too young or too old for every wave: observe the worker once at a wave in range
            // of the survey so that every worker has a record.
            years.push(
                spec.waves[rng.below(spec.waves.len() as u64) as usize].max(birth + spec.ages.0),
            );
        }
        // Education covariate and states.
        let mut truth = Vec::with_capacity(years.len());
        let mut educ = Education::LessThanHighSchool;
        for (k, &y) in years.iter().enumerate() {
            let age = y - birth;
            educ = if k == 0 {
                initial_education(age, rng)
            } else {
                let prev = w.records[k - 1];
                let in_school =
                    self.law.taxonomy.special_of(prev.state) == Some(SpecialState::InEducation);
                advance_education(educ, in_school, age, y - prev.year, rng)
            };
            w.records.push(YearRecord::new(y, StateId(0), educ));
            let cx = self.law.context(&w, k);
            let state = self.law.sample(&cx, rng);
            w.records[k].state = state;
            let c = self.law.components(&cx);
            truth.push(self.law.prob_from(&cx, &c, state).ln());
        }
        (w, truth)
    }
}

fn initial_education(age: i32, rng: &mut SeededRng) -> Education {
    let u = rng.next_f64();
    match age {
        ..=17 => Education::LessThanHighSchool,
        18..=19 => {
            if u < 0.3 {
                Education::LessThanHighSchool
            } else {
                Education::HighSchool
            }
        }
        20..=23 => [0.15, 0.45, 0.32, 0.08, 0.0]
            .iter()
            .scan(0.0, |acc, p| {
                *acc += p;
                Some(*acc)
            })
            .position(|c| u < c)
            .map_or(Education::College, |i| Education::ALL[i]),
        _ => [0.12, 0.36, 0.24, 0.19, 0.09]
            .iter()
            .scan(0.0, |acc, p| {
                *acc += p;
                Some(*acc)
            })
            .position(|c| u < c)
            .map_or(Education::GraduateDegree, |i| Education::ALL[i]),
    }
}

fn advance_education(
    e: Education,
    in_school: bool,
    age: i32,
    gap: i32,
    rng: &mut SeededRng,
) -> Education {
    let mut e = e;
    for _ in 0..gap.max(1) {
        let (next, min_age, p_school) = match e {
            Education::LessThanHighSchool => (Education::HighSchool, 18, 0.75),
            Education::HighSchool => (Education::SomeCollege, 19, 0.7),
            Education::SomeCollege => (Education::College, 21, 0.4),
            Education::College => (Education::GraduateDegree, 23, 0.3),
            _ => return e,
        };
        let p = if in_school {
            p_school
        } else if e == Education::LessThanHighSchool {
            0.05
        } else {
            0.01
        };
        if age >= min_age && rng.bernoulli(p) {
            e = next;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_sums_to_one_and_matches_prob() {
        let synth = SynthBuilder::new(Preset::Psid81)
            .with_workers(50)
            .with_seed(2)
            .build()
            .unwrap();
        let out = synth.generate();
        for (w, lps) in out.panel.workers().iter().zip(&out.truth.log_probs) {
            for k in 0..w.records.len() {
                let d = synth.law().distribution(w, k);
                let total: f64 = d.iter().sum();
                assert!((total - 1.0).abs() < 1e-9, "{total}");
                assert!((d[w.records[k].state.index()].ln() - lps[k]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn same_seed_same_panel_and_prefix_stable() {
        let a = SynthBuilder::new(Preset::Nlsy97)
            .with_workers(40)
            .with_seed(5)
            .build()
            .unwrap()
            .generate();
        let b = SynthBuilder::new(Preset::Nlsy97)
            .with_workers(40)
            .with_seed(5)
            .build()
            .unwrap()
            .generate();
        assert_eq!(a.panel, b.panel);
        let c = SynthBuilder::new(Preset::Nlsy97)
            .with_workers(10)
            .with_seed(5)
            .build()
            .unwrap()
            .generate();
        assert_eq!(&a.panel.workers()[..10], c.panel.workers());
        let d = SynthBuilder::new(Preset::Nlsy97)
            .with_workers(40)
            .with_seed(6)
            .build()
            .unwrap()
            .generate();
        assert_ne!(a.panel, d.panel);
    }
}
