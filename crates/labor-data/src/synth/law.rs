//! The career law: the explicit distribution of every observed state (see the module docs of
//! `synth`).

use std::sync::Arc;

use crate::panel::Worker;
use crate::taxonomy::{SpecialState, StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};
use labor_rand::SeededRng;

pub(super) const N_GROUPS: usize = 9;
/// Skill level of the nine major occupational groups of the 1990 classification.
pub(super) const GROUP_SKILL: [f64; N_GROUPS] = [3.4, 3.8, 2.8, 2.0, 1.9, 0.9, 0.4, 1.3, 0.5];
/// Female share of each group.
pub(super) const GROUP_FEMALE: [f64; N_GROUPS] =
    [0.38, 0.55, 0.48, 0.50, 0.78, 0.60, 0.18, 0.09, 0.24];
/// Growth of each group's weight per decade (log scale), centred on 1990.
pub(super) const GROUP_TREND: [f64; N_GROUPS] =
    [0.12, 0.18, 0.10, 0.05, -0.08, 0.08, -0.25, -0.12, -0.22];
/// Relative weights of Black and Hispanic workers in each group.
pub(super) const GROUP_BLACK: [f64; N_GROUPS] = [0.7, 0.8, 0.9, 0.9, 1.1, 1.4, 0.7, 0.9, 1.3];
pub(super) const GROUP_HISPANIC: [f64; N_GROUPS] = [0.7, 0.7, 0.8, 1.0, 0.9, 1.3, 1.8, 1.1, 1.3];

/// The major group of an occ1990dd code (by the 1990 classification's code ranges).
pub(super) fn group_of_code(code: &str, fallback: usize) -> usize {
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

/// The explicit career law shared by generation and truth (see the module docs).
#[derive(Debug, Clone)]
pub struct CareerLaw {
    pub(super) taxonomy: Arc<Taxonomy>,
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

pub(super) const N_EDU: usize = 6;
pub(super) const N_GEN: usize = 3;
pub(super) const N_ETH: usize = 5;
pub(super) const N_REG: usize = 5;

pub(super) fn cell(e: Education, g: Gender, eth: Ethnicity, r: Region) -> usize {
    ((e.index() * N_GEN + g.index()) * N_ETH + eth.index()) * N_REG + r.index()
}

pub(super) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn recession(year: i32) -> bool {
    matches!(year, 1980..=1983 | 1991..=1992 | 2001..=2002 | 2008..=2011 | 2020)
}

/// What the law conditions on at one step: derived from the history and this year's covariates.
pub(super) struct Context {
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
pub(super) struct Components {
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

    pub(super) fn context(&self, worker: &Worker, k: usize) -> Context {
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

    pub(super) fn components(&self, cx: &Context) -> Components {
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

    pub(super) fn prob_from(&self, cx: &Context, c: &Components, state: StateId) -> f64 {
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

    pub(super) fn sample(&self, cx: &Context, rng: &mut SeededRng) -> StateId {
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
