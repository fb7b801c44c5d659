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
use crate::rng::SeededRng;
use crate::taxonomy::{SpecialState, StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};

const N_GROUPS: usize = 9;
/// Skill level of the nine major occupational groups of the 1990 classification.
const GROUP_SKILL: [f64; N_GROUPS] = [3.4, 3.8, 2.8, 2.0, 1.9, 0.9, 0.4, 1.3, 0.5];
/// Female share of each group.
const GROUP_FEMALE: [f64; N_GROUPS] = [0.38, 0.55, 0.48, 0.50, 0.78, 0.60, 0.18, 0.09, 0.24];
/// Growth of each group's weight per decade (log scale), centred on 1990.
const GROUP_TREND: [f64; N_GROUPS] = [0.12, 0.18, 0.10, 0.05, -0.08, 0.08, -0.25, -0.12, -0.22];
/// Relative weights of Black and Hispanic workers in each group.
const GROUP_BLACK: [f64; N_GROUPS] = [0.7, 0.8, 0.9, 0.9, 1.1, 1.4, 0.7, 0.9, 1.3];
const GROUP_HISPANIC: [f64; N_GROUPS] = [0.7, 0.7, 0.8, 1.0, 0.9, 1.3, 1.8, 1.1, 1.3];

/// The major group of an occ1990dd code (by the 1990 classification's code ranges).
fn group_of_code(code: &str, fallback: usize) -> usize {
    match code.parse::<u32>() {
        Ok(c) => match c {
            0..=42 => 0,
            43..=202 => 1,
            203..=242 => 2,
            243..=302 => 3,
            303..=402 => 4,
            403..=472 => 5,
            473..=502 => 6,
            503..=702 => 7,
            _ => 8,
        },
        Err(_) => fallback % N_GROUPS,
    }
}

/// The three survey-shaped presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// PSID from 1981: a household panel with entries and exits, annual to 1997, biennial after.
    Psid81,
    /// NLSY79: born 1957-1964, annual 1979-1994, biennial 1996-2018.
    Nlsy79,
    /// NLSY97: born 1980-1984, annual 1997-2011, biennial 2013-2021.
    Nlsy97,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "psid81" | "psid" => Ok(Preset::Psid81),
            "nlsy79" => Ok(Preset::Nlsy79),
            "nlsy97" => Ok(Preset::Nlsy97),
            other => Err(Error::InvalidArgument {
                name: "preset",
                detail: format!("unknown preset `{other}` (psid81, nlsy79, nlsy97)"),
            }),
        }
    }
}

/// Statistics a preset is calibrated to reproduce (checked by the test suite within the
/// tolerances stated there). Shares are of observed worker-years.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetTargets {
    /// Mean observed years per worker (the surveys' worker-years / workers).
    pub mean_years_per_worker: f64,
    /// Share of years in education.
    pub education_share: f64,
    /// Share of years unemployed.
    pub unemployed_share: f64,
    /// Share of years out of the labor force.
    pub nilf_share: f64,
    /// Share of consecutive occupation-to-occupation records keeping the same occupation.
    pub persistence: f64,
}

/// Everything that defines a preset.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetSpec {
    /// Dataset name written into the panel.
    pub dataset: &'static str,
    /// Number of workers in the real survey sample (the default size).
    pub workers: usize,
    /// Survey years.
    pub waves: Vec<i32>,
    /// Earliest and latest birth year.
    pub birth_years: (i32, i32),
    /// Ages at which a worker is in the career sample.
    pub ages: (i32, i32),
    /// Probability that a worker still in the panel is interviewed at a wave.
    pub response_rate: f64,
    /// Probability of leaving the panel for good after a wave.
    pub attrition: f64,
    /// Probability that a worker is in the panel from its first eligible wave (the others
    /// join at a uniformly drawn later wave, as PSID's new household members do).
    pub present_at_start: f64,
    /// Shares of white, Black, Hispanic and other workers.
    pub ethnicity: [f64; 4],
    /// Shares of the northeast, northcentral, south and west regions.
    pub region: [f64; 4],
    /// Share of women.
    pub female: f64,
    /// Intercept shifts of the education, unemployment and out-of-labor-force logits.
    pub shifts: [f64; 3],
    /// What the generated panels are calibrated to.
    pub targets: PresetTargets,
}

fn waves(
    annual: std::ops::RangeInclusive<i32>,
    biennial: std::ops::RangeInclusive<i32>,
) -> Vec<i32> {
    annual.chain(biennial.step_by(2)).collect()
}

impl Preset {
    /// The specification. Worker counts and worker-years per worker are those of the paper's
    /// samples (PSID81 31,056 workers / 313,622 worker-years, NLSY79 12,479 / 259,778, NLSY97
    /// 8,984 / 148,795); shares of special states and persistence are design targets shaped
    /// like survey careers, not measured from the surveys.
    pub fn spec(self) -> PresetSpec {
        match self {
            Preset::Nlsy79 => PresetSpec {
                dataset: "nlsy79",
                workers: 12_479,
                waves: waves(1979..=1994, 1996..=2018),
                birth_years: (1957, 1964),
                ages: (16, 65),
                response_rate: 0.80,
                attrition: 0.006,
                present_at_start: 1.0,
                ethnicity: [0.52, 0.30, 0.18, 0.0],
                region: [0.17, 0.24, 0.40, 0.19],
                female: 0.5,
                shifts: [0.7, 0.0, 0.55],
                targets: PresetTargets {
                    mean_years_per_worker: 20.8,
                    education_share: 0.08,
                    unemployed_share: 0.05,
                    nilf_share: 0.13,
                    persistence: 0.66,
                },
            },
            Preset::Nlsy97 => PresetSpec {
                dataset: "nlsy97",
                workers: 8_984,
                waves: waves(1997..=2011, 2013..=2021),
                birth_years: (1980, 1984),
                ages: (16, 65),
                response_rate: 0.91,
                attrition: 0.004,
                present_at_start: 1.0,
                ethnicity: [0.52, 0.26, 0.21, 0.01],
                region: [0.17, 0.23, 0.40, 0.20],
                female: 0.49,
                shifts: [0.6, 0.35, 0.35],
                targets: PresetTargets {
                    mean_years_per_worker: 16.6,
                    education_share: 0.18,
                    unemployed_share: 0.06,
                    nilf_share: 0.10,
                    persistence: 0.64,
                },
            },
            Preset::Psid81 => PresetSpec {
                dataset: "psid",
                workers: 31_056,
                waves: waves(1981..=1997, 1999..=2019),
                birth_years: (1920, 1998),
                ages: (18, 65),
                response_rate: 0.95,
                attrition: 0.025,
                present_at_start: 0.5,
                ethnicity: [0.58, 0.30, 0.09, 0.03],
                region: [0.15, 0.25, 0.42, 0.18],
                female: 0.52,
                shifts: [1.2, 0.1, 0.45],
                targets: PresetTargets {
                    mean_years_per_worker: 10.1,
                    education_share: 0.03,
                    unemployed_share: 0.05,
                    nilf_share: 0.16,
                    persistence: 0.72,
                },
            },
        }
    }
}

/// The explicit career law shared by generation and truth (see the module docs).
#[derive(Debug, Clone)]
pub struct CareerLaw {
    taxonomy: Arc<Taxonomy>,
    shifts: [f64; 3],
    occupations: Vec<StateId>,
    /// Group of each outcome (occupations only; specials get `N_GROUPS`).
    group: Vec<usize>,
    skill: Vec<f64>,
    /// `base[cell][o]`: destination weight of outcome `o` for a (education, gender, ethnicity,
    /// region) cell, before the calendar-year trend.
    base: Vec<Vec<f64>>,
    /// `group_mass[cell][g]`: sum of `base` over group `g`.
    group_mass: Vec<[f64; N_GROUPS]>,
    /// Occupations of each group.
    members: Vec<Vec<StateId>>,
}

const N_EDU: usize = 6;
const N_GEN: usize = 3;
const N_ETH: usize = 5;
const N_REG: usize = 5;

fn cell(e: Education, g: Gender, eth: Ethnicity, r: Region) -> usize {
    ((e.index() * N_GEN + g.index()) * N_ETH + eth.index()) * N_REG + r.index()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn recession(year: i32) -> bool {
    matches!(year, 1980..=1983 | 1991..=1992 | 2001..=2002 | 2008..=2011 | 2020)
}

/// What the law conditions on at one step: derived from the history and this year's covariates.
struct Context {
    age: f64,
    year: i32,
    gap: i32,
    cell: usize,
    edu_level: f64,
    female: bool,
    prev: Option<StateId>,
    tenure: usize,
    /// Distinct earlier occupations, most recent first (the current one excluded).
    earlier: Vec<StateId>,
}

/// The decomposed distribution of one step.
struct Components {
    special: [f64; 3],
    occ: f64,
    stay: Option<(StateId, f64)>,
    returns: Vec<(StateId, f64)>,
    within: Option<(usize, f64)>,
    elsewhere: f64,
    group_probs: [f64; N_GROUPS],
}

impl CareerLaw {
    /// The law over `taxonomy` with a world drawn from `world_seed` (popularity, skill level and
    /// gender composition of every occupation) and the preset's intercept shifts.
    pub fn new(taxonomy: Arc<Taxonomy>, world_seed: u64, shifts: [f64; 3]) -> Self {
        let mut rng = SeededRng::new(world_seed);
        let n = taxonomy.len();
        let occupations = taxonomy.occupation_ids();
        let mut group = vec![N_GROUPS; n];
        let mut skill = vec![0.0; n];
        let mut pop = vec![0.0; n];
        let mut female = vec![0.5; n];
        for (i, &id) in occupations.iter().enumerate() {
            let g = group_of_code(taxonomy.code(id), i);
            group[id.index()] = g;
            skill[id.index()] = (GROUP_SKILL[g] + 0.5 * rng.normal()).clamp(0.0, 4.0);
            pop[id.index()] = (1.1 * rng.normal()).exp();
            let f0 = GROUP_FEMALE[g];
            female[id.index()] = sigmoid((f0 / (1.0 - f0)).ln() + 0.8 * rng.normal());
        }
        let mut members = vec![Vec::new(); N_GROUPS];
        for &id in &occupations {
            members[group[id.index()]].push(id);
        }
        let n_cells = N_EDU * N_GEN * N_ETH * N_REG;
        let mut base = vec![vec![0.0; n]; n_cells];
        let mut group_mass = vec![[0.0; N_GROUPS]; n_cells];
        for &e in Education::ALL {
            for &g in Gender::ALL {
                for &eth in Ethnicity::ALL {
                    for &r in Region::ALL {
                        let c = cell(e, g, eth, r);
                        let fit_level = e.level().map_or(1.8, f64::from);
                        for &id in &occupations {
                            let o = id.index();
                            let grp = group[o];
                            let d = skill[o] - fit_level;
                            let mut w = pop[o] * (-0.55 * d * d).exp();
                            w *= match g {
                                Gender::Female => 2.0 * female[o],
                                Gender::Male => 2.0 * (1.0 - female[o]),
                                Gender::Unknown => 1.0,
                            };
                            w *= match eth {
                                Ethnicity::Black => GROUP_BLACK[grp],
                                Ethnicity::Hispanic => GROUP_HISPANIC[grp],
                                _ => 1.0,
                            };
                            if grp == 6 && matches!(r, Region::NorthCentral | Region::South) {
                                w *= 1.3;
                            }
                            base[c][o] = w;
                            group_mass[c][grp] += w;
                        }
                    }
                }
            }
        }
        Self {
            taxonomy,
            shifts,
            occupations,
            group,
            skill,
            base,
            group_mass,
            members,
        }
    }

    /// The taxonomy of the law.
    pub fn taxonomy(&self) -> &Arc<Taxonomy> {
        &self.taxonomy
    }

    fn context(&self, worker: &Worker, k: usize) -> Context {
        let rec = worker.records[k];
        let history = &worker.records[..k];
        let prev = history.last().map(|r| r.state);
        let tenure = match prev {
            Some(p) => history.iter().rev().take_while(|r| r.state == p).count(),
            None => 0,
        };
        let mut earlier: Vec<StateId> = Vec::new();
        for r in history.iter().rev() {
            if self.taxonomy.is_occupation(r.state)
                && Some(r.state) != prev
                && !earlier.contains(&r.state)
            {
                earlier.push(r.state);
            }
        }
        let age = worker.birth_year.map_or(35.0, |b| f64::from(rec.year - b));
        Context {
            age,
            year: rec.year,
            gap: history.last().map_or(0, |r| rec.year - r.year),
            cell: cell(
                rec.education,
                worker.gender,
                worker.ethnicity,
                worker.region,
            ),
            edu_level: rec.education.level().map_or(1.8, f64::from),
            female: worker.gender == Gender::Female,
            prev,
            tenure,
            earlier,
        }
    }

    fn components(&self, cx: &Context) -> Components {
        let tax = &self.taxonomy;
        let prev_special = cx.prev.and_then(|p| tax.special_of(p));
        let was = |s: SpecialState| f64::from(u8::from(prev_special == Some(s)));
        let gap_decay = if cx.gap > 1 { 0.7 } else { 1.0 };
        let a = cx.age;
        let e = cx.edu_level;
        // Education.
        let mut l_edu = -2.6 + self.shifts[0] + 3.2 * was(SpecialState::InEducation) * gap_decay
            - 0.28 * (a - 19.0).max(0.0)
            + 2.5 * f64::from(u8::from(a < 18.0))
            + 0.5 * f64::from(u8::from((2.0..3.0).contains(&e)))
            - 0.6 * f64::from(u8::from(e < 1.0 && a >= 19.0));
        l_edu = l_edu.max(-9.0);
        // Unemployment.
        let l_un = -3.35
            + self.shifts[1]
            + 1.7 * was(SpecialState::Unemployed) * gap_decay
            + 0.5 * f64::from(u8::from(e < 1.0))
            - 0.45 * f64::from(u8::from(e >= 3.0))
            + 0.45 * f64::from(u8::from(recession(cx.year)))
            + 0.35 * f64::from(u8::from(a < 24.0))
            + 0.25 * (cx.gap.max(1) - 1) as f64;
        // Out of the labor force.
        let l_nilf = -3.4
            + self.shifts[2]
            + 2.9 * was(SpecialState::NotInLaborForce) * gap_decay
            + 1.0 * f64::from(u8::from(cx.female && (22.0..=42.0).contains(&a)))
            + 0.45 * f64::from(u8::from(e < 1.0))
            + 0.2 * (a - 54.0).max(0.0);
        let ex = [l_edu.exp(), l_un.exp(), l_nilf.exp()];
        let z = 1.0 + ex.iter().sum::<f64>();
        let special = [ex[0] / z, ex[1] / z, ex[2] / z];
        let occ = 1.0 / z;

        let current = cx.prev.filter(|p| tax.is_occupation(*p));
        let mut stay = None;
        let mut returns = Vec::new();
        let mut within = None;
        let mut rest = 1.0;
        let return_weights = |total: f64, list: &[StateId]| -> Vec<(StateId, f64)> {
            let w: Vec<f64> = (0..list.len()).map(|i| 0.5f64.powi(i as i32)).collect();
            let s: f64 = w.iter().sum();
            list.iter()
                .zip(w)
                .map(|(id, wi)| (*id, total * wi / s))
                .collect()
        };
        if let Some(j) = current {
            let s = sigmoid(
                -0.15 + 0.75 * (1.0 + cx.tenure as f64).ln() + 0.025 * (a - 30.0)
                    - 0.55 * f64::from((cx.gap - 1).max(0))
                    + 0.15 * self.skill[j.index()],
            );
            stay = Some((j, s));
            rest -= s;
            if !cx.earlier.is_empty() {
                let r = 0.28 * rest;
                returns = return_weights(r, &cx.earlier);
                rest -= r;
            }
            let wi = 0.45 * rest;
            within = Some((self.group[j.index()], wi));
            rest -= wi;
        } else if !cx.earlier.is_empty() {
            let back = match prev_special {
                Some(SpecialState::Unemployed) => 0.45,
                Some(SpecialState::NotInLaborForce) => 0.35,
                _ => 0.2,
            } * gap_decay;
            // The most recent occupation gets `back`, all earlier ones share a further 10%.
            let mut r = vec![(cx.earlier[0], back)];
            if cx.earlier.len() > 1 {
                r.extend(return_weights(0.1, &cx.earlier[1..]));
                rest -= 0.1;
            }
            returns = r;
            rest -= back;
            let wi = 0.2 * rest;
            within = Some((self.group[cx.earlier[0].index()], wi));
            rest -= wi;
        }
        // Destination groups: composition of the cell, calendar trend, distance in skill from
        // the group the worker comes from.
        let from = current
            .or(cx.earlier.first().copied())
            .map(|id| self.group[id.index()]);
        let mut group_probs = [0.0; N_GROUPS];
        let decades = f64::from(cx.year - 1990) / 10.0;
        for (g, gp) in group_probs.iter_mut().enumerate() {
            let affinity = from.map_or(1.0, |f| {
                (-0.45 * (GROUP_SKILL[g] - GROUP_SKILL[f]).abs()).exp()
            });
            *gp = self.group_mass[cx.cell][g] * (GROUP_TREND[g] * decades).exp() * affinity;
        }
        let zg: f64 = group_probs.iter().sum();
        for gp in &mut group_probs {
            *gp /= zg;
        }
        Components {
            special,
            occ,
            stay,
            returns,
            within,
            elsewhere: rest,
            group_probs,
        }
    }

    fn prob_from(&self, cx: &Context, c: &Components, state: StateId) -> f64 {
        if let Some(s) = self.taxonomy.special_of(state) {
            return c.special[SpecialState::ALL.iter().position(|x| *x == s).unwrap_or(0)];
        }
        let o = state.index();
        let Some(&g) = self.group.get(o) else {
            return 0.0;
        };
        if g >= N_GROUPS {
            return 0.0;
        }
        let w_in_group = self.base[cx.cell][o] / self.group_mass[cx.cell][g];
        let mut p = c.elsewhere * c.group_probs[g] * w_in_group;
        if let Some((gw, m)) = c.within
            && gw == g
        {
            p += m * w_in_group;
        }
        if let Some((j, s)) = c.stay
            && j == state
        {
            p += s;
        }
        p += c
            .returns
            .iter()
            .filter(|(id, _)| *id == state)
            .map(|(_, m)| m)
            .sum::<f64>();
        c.occ * p
    }

    /// The true probability of `state` at record `k` of `worker` (the record's own state is
    /// ignored; its year and education are covariates).
    pub fn prob(&self, worker: &Worker, k: usize, state: StateId) -> f64 {
        let cx = self.context(worker, k);
        let c = self.components(&cx);
        self.prob_from(&cx, &c, state)
    }

    /// The true log-probability of the observed state at record `k`.
    pub fn log_prob(&self, worker: &Worker, k: usize) -> f64 {
        self.prob(worker, k, worker.records[k].state).ln()
    }

    /// The true distribution over every outcome at record `k`, indexed by [`StateId`]; sums to 1.
    pub fn distribution(&self, worker: &Worker, k: usize) -> Vec<f64> {
        let cx = self.context(worker, k);
        let c = self.components(&cx);
        (0..self.taxonomy.len())
            .map(|i| self.prob_from(&cx, &c, StateId(i as u16)))
            .collect()
    }

    fn sample(&self, cx: &Context, rng: &mut SeededRng) -> StateId {
        let c = self.components(cx);
        let mut parts = vec![c.special[0], c.special[1], c.special[2]];
        let stay = c.stay.map_or(0.0, |(_, s)| s);
        let ret: f64 = c.returns.iter().map(|(_, m)| m).sum();
        let within = c.within.map_or(0.0, |(_, m)| m);
        parts.extend([
            c.occ * stay,
            c.occ * ret,
            c.occ * within,
            c.occ * c.elsewhere,
        ]);
        let pick_in_group = |g: usize, rng: &mut SeededRng| {
            let ids = &self.members[g];
            let w: Vec<f64> = ids
                .iter()
                .map(|id| self.base[cx.cell][id.index()])
                .collect();
            ids[rng.categorical(&w)]
        };
        match rng.categorical(&parts) {
            i @ 0..=2 => self.taxonomy.special(SpecialState::ALL[i]),
            3 => c.stay.map_or(self.occupations[0], |(j, _)| j),
            4 => {
                let w: Vec<f64> = c.returns.iter().map(|(_, m)| *m).collect();
                c.returns[rng.categorical(&w)].0
            }
            5 => pick_in_group(c.within.map_or(0, |(g, _)| g), rng),
            _ => {
                let g = rng.categorical(&c.group_probs);
                pick_in_group(g, rng)
            }
        }
    }
}

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
