//! Summary statistics of a panel (`labor describe`).
//!
//! ```
//! use labor_data::{PanelSummary, Preset, SynthBuilder};
//! let panel = SynthBuilder::new(Preset::Nlsy97).with_workers(200).with_seed(3).build().unwrap().generate().panel;
//! let s = PanelSummary::of(&panel);
//! assert_eq!(s.workers, 200);
//! let total: f64 = s.state_shares.values().sum();
//! assert!((total - 1.0).abs() < 1e-9);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::panel::Panel;
use crate::taxonomy::SpecialState;

/// Counts and shares that describe a panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PanelSummary {
    /// Number of workers.
    pub workers: usize,
    /// Number of observed worker-years.
    pub worker_years: usize,
    /// Mean observed years per worker.
    pub mean_years_per_worker: f64,
    /// First and last calendar year observed.
    pub years: Option<(i32, i32)>,
    /// Earliest and latest birth year.
    pub birth_years: Option<(i32, i32)>,
    /// Workers per source dataset.
    pub datasets: BTreeMap<String, usize>,
    /// Share of worker-years per state kind: `occupation`, `education`, `unemployed`,
    /// `not_in_labor_force`.
    pub state_shares: BTreeMap<String, f64>,
    /// Number of distinct occupations observed.
    pub distinct_occupations: usize,
    /// Share of consecutive observed records (of one worker) whose state differs.
    pub transition_rate: f64,
    /// Share of consecutive occupation-to-occupation records that keep the same occupation.
    pub occupational_persistence: f64,
    /// Years missing between a worker's first and last record, in total.
    pub gap_years: usize,
    /// Share of workers per gender key.
    pub gender_shares: BTreeMap<String, f64>,
    /// Share of workers per ethnicity key.
    pub ethnicity_shares: BTreeMap<String, f64>,
    /// Share of workers per region key.
    pub region_shares: BTreeMap<String, f64>,
    /// Share of worker-years per education key.
    pub education_shares: BTreeMap<String, f64>,
}

fn shares<K: Ord + Clone>(counts: BTreeMap<K, usize>, total: usize) -> BTreeMap<K, f64> {
    counts
        .into_iter()
        .map(|(k, c)| (k, c as f64 / total.max(1) as f64))
        .collect()
}

impl PanelSummary {
    /// Computes the summary in one pass over the panel.
    pub fn of(panel: &Panel) -> Self {
        let tax = panel.taxonomy();
        let mut datasets = BTreeMap::new();
        let mut kinds: BTreeMap<String, usize> = ["occupation"]
            .into_iter()
            .chain(SpecialState::ALL.iter().map(|s| s.code()))
            .map(|k| (k.to_string(), 0))
            .collect();
        let mut occs = std::collections::HashSet::new();
        let (mut pairs, mut changes, mut occ_pairs, mut occ_stays, mut gaps) = (0, 0, 0, 0, 0);
        let mut genders = BTreeMap::new();
        let mut eths = BTreeMap::new();
        let mut regions = BTreeMap::new();
        let mut educ = BTreeMap::new();
        let mut years: Option<(i32, i32)> = None;
        let mut births: Option<(i32, i32)> = None;
        let widen = |r: &mut Option<(i32, i32)>, a: i32, b: i32| {
            *r = Some(r.map_or((a, b), |(lo, hi)| (lo.min(a), hi.max(b))));
        };
        for w in panel.workers() {
            *datasets.entry(w.dataset.clone()).or_insert(0) += 1;
            *genders.entry(w.gender.key().to_string()).or_insert(0) += 1;
            *eths.entry(w.ethnicity.key().to_string()).or_insert(0) += 1;
            *regions.entry(w.region.key().to_string()).or_insert(0) += 1;
            if let Some((a, b)) = w.span() {
                widen(&mut years, a, b);
            }
            if let Some(b) = w.birth_year {
                widen(&mut births, b, b);
            }
            gaps += w.gaps().len();
            for r in &w.records {
                let kind = tax
                    .special_of(r.state)
                    .map_or("occupation", SpecialState::code);
                *kinds.entry(kind.to_string()).or_insert(0) += 1;
                if tax.is_occupation(r.state) {
                    occs.insert(r.state);
                }
                *educ.entry(r.education.key().to_string()).or_insert(0) += 1;
            }
            for p in w.records.windows(2) {
                pairs += 1;
                changes += usize::from(p[0].state != p[1].state);
                if tax.is_occupation(p[0].state) && tax.is_occupation(p[1].state) {
                    occ_pairs += 1;
                    occ_stays += usize::from(p[0].state == p[1].state);
                }
            }
        }
        let n = panel.len();
        let ny = panel.n_worker_years();
        Self {
            workers: n,
            worker_years: ny,
            mean_years_per_worker: ny as f64 / n.max(1) as f64,
            years,
            birth_years: births,
            datasets,
            state_shares: shares(kinds, ny),
            distinct_occupations: occs.len(),
            transition_rate: changes as f64 / pairs.max(1) as f64,
            occupational_persistence: occ_stays as f64 / occ_pairs.max(1) as f64,
            gap_years: gaps,
            gender_shares: shares(genders, n),
            ethnicity_shares: shares(eths, n),
            region_shares: shares(regions, n),
            education_shares: shares(educ, ny),
        }
    }
}

impl fmt::Display for PanelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = |r: Option<(i32, i32)>| r.map_or("-".to_string(), |(a, b)| format!("{a}-{b}"));
        let pct = |m: &BTreeMap<String, f64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "workers                {}", self.workers)?;
        writeln!(f, "worker-years           {}", self.worker_years)?;
        writeln!(
            f,
            "years per worker       {:.2}",
            self.mean_years_per_worker
        )?;
        writeln!(f, "calendar years         {}", range(self.years))?;
        writeln!(f, "birth years            {}", range(self.birth_years))?;
        let ds: Vec<String> = self
            .datasets
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "datasets               {}", ds.join(", "))?;
        writeln!(f, "states                 {}", pct(&self.state_shares))?;
        writeln!(f, "distinct occupations   {}", self.distinct_occupations)?;
        writeln!(f, "transition rate        {:.3}", self.transition_rate)?;
        writeln!(
            f,
            "occupation persistence {:.3}",
            self.occupational_persistence
        )?;
        writeln!(f, "gap years              {}", self.gap_years)?;
        writeln!(f, "gender                 {}", pct(&self.gender_shares))?;
        writeln!(f, "ethnicity              {}", pct(&self.ethnicity_shares))?;
        writeln!(f, "region                 {}", pct(&self.region_shares))?;
        write!(f, "education              {}", pct(&self.education_shares))
    }
}
