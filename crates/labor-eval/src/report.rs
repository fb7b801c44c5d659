//! The shape of every result: [`ModelMetrics`] per model and [`PairedMetrics`] per pair (what
//! [`Evaluator`](crate::Evaluator) fills in full), and [`Report`], the perplexity table alone
//! from plain [`ScoreSet`]s, as Markdown (the shape of the paper's Table 6), CSV, or any serde
//! format.
//!
//! ```
//! use labor_eval::{Bootstrap, Report, ScoreSet};
//! let mut a = ScoreSet::new();
//! let mut b = ScoreSet::new();
//! for w in 0..30 {
//!     a.push(&format!("w{w}"), -2.0 - 0.01 * (w % 5) as f64, 1.0).unwrap();
//!     b.push(&format!("w{w}"), -2.1 - 0.01 * (w % 5) as f64, 1.0).unwrap();
//! }
//! let boot = Bootstrap::new().with_resamples(100);
//! let report = Report::evaluate(&[("empirical", &b), ("truth", &a)], &boot).unwrap();
//! assert_eq!(report.models.len(), 2);
//! assert_eq!(report.paired[0].name, "PPL(empirical)-PPL(truth)");
//! assert!(report.to_markdown().contains("| truth |"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate};
use crate::error::Result;
use crate::metrics::Calibration;
use crate::scores::ScoreSet;

/// Perplexity of one subgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupEstimate {
    /// The group's value (e.g. `female`, `1990s`).
    pub group: String,
    /// Perplexity on the group's targets.
    pub perplexity: f64,
    /// Bootstrap SE (workers of the group resampled).
    pub bootstrap_se: f64,
    /// Lower end of the percentile interval.
    pub ci_low: f64,
    /// Upper end of the percentile interval.
    pub ci_high: f64,
    /// Number of targets.
    pub n_targets: usize,
    /// Number of workers.
    pub n_workers: usize,
}

/// Probability mass on the valid outcomes, per target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ValidMass {
    /// Weighted mean over the targets.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Weighted share of targets with mass below 0.99.
    pub share_below_0_99: f64,
}

/// How well a model predicts one binary event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMetrics {
    /// The event.
    pub name: String,
    /// Targets on which the event is defined.
    pub n_targets: usize,
    /// Share of them on which it happened.
    pub base_rate: f64,
    /// Mean predicted probability.
    pub mean_predicted: f64,
    /// Area under the ROC curve; `None` when the event always or never happened.
    pub auc: Option<f64>,
    /// `exp(-mean log P(what happened))`.
    pub binary_perplexity: f64,
    /// Expected calibration error of the event probabilities.
    pub ece: f64,
}

/// Everything measured for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMetrics {
    /// The model's name.
    pub name: String,
    /// Perplexity on the selected targets.
    pub perplexity: f64,
    /// Worker-cluster bootstrap SE.
    pub bootstrap_se: f64,
    /// Lower end of the percentile interval.
    pub ci_low: f64,
    /// Upper end of the percentile interval.
    pub ci_high: f64,
    /// Number of targets.
    pub n_targets: usize,
    /// Number of workers.
    pub n_workers: usize,
    /// Weighted mean negative log-likelihood (nats per target), `ln(perplexity)`.
    pub mean_nll: f64,
    /// Share of targets whose observed state is the most probable (full distributions only).
    pub top1_accuracy: Option<f64>,
    /// Share among the 5 most probable (full distributions only).
    pub top5_accuracy: Option<f64>,
    /// Mass on valid outcomes (full distributions only).
    pub valid_mass: Option<ValidMass>,
    /// Top-1 reliability table and ECE (full distributions only).
    pub calibration: Option<Calibration>,
    /// Binary events (full distributions only).
    pub events: Vec<EventMetrics>,
    /// Perplexity per subgroup, by dimension.
    pub subgroups: BTreeMap<String, Vec<GroupEstimate>>,
}

/// `PPL(a) − PPL(b)` on the targets both models scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedMetrics {
    /// `PPL(a)-PPL(b)`.
    pub name: String,
    /// Model `a`.
    pub a: String,
    /// Model `b`.
    pub b: String,
    /// The difference on the common targets.
    pub difference: f64,
    /// Its bootstrap SE (shared replicates).
    pub bootstrap_se: f64,
    /// Lower end of its percentile interval.
    pub ci_low: f64,
    /// Upper end of its percentile interval.
    pub ci_high: f64,
    /// Common targets (worker and year in both).
    pub n_targets: usize,
    /// Their workers.
    pub n_workers: usize,
}

impl GroupEstimate {
    /// The perplexity of subgroup `group` from its bootstrap estimate on its targets' `scores`.
    pub fn from_estimate(group: &str, e: &Estimate, scores: &ScoreSet) -> Self {
        Self {
            group: group.to_string(),
            perplexity: e.value,
            bootstrap_se: e.se,
            ci_low: e.ci.0,
            ci_high: e.ci.1,
            n_targets: scores.n_targets(),
            n_workers: scores.n_workers(),
        }
    }
}

impl ModelMetrics {
    /// The perplexity row of the model `name` from its bootstrap estimate on `scores`, with
    /// every distribution metric and subgroup empty.
    ///
    /// # Errors
    /// As [`ScoreSet::mean_nll`].
    pub fn from_estimate(name: &str, e: &Estimate, scores: &ScoreSet) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            perplexity: e.value,
            bootstrap_se: e.se,
            ci_low: e.ci.0,
            ci_high: e.ci.1,
            n_targets: scores.n_targets(),
            n_workers: scores.n_workers(),
            mean_nll: scores.mean_nll()?,
            top1_accuracy: None,
            top5_accuracy: None,
            valid_mass: None,
            calibration: None,
            events: Vec::new(),
            subgroups: BTreeMap::new(),
        })
    }
}

impl PairedMetrics {
    /// `PPL(a) − PPL(b)` from its bootstrap estimate over `paired` common targets (whose
    /// counts it takes).
    pub fn from_estimate(a: &str, b: &str, e: &Estimate, paired: &ScoreSet) -> Self {
        Self {
            name: format!("PPL({a})-PPL({b})"),
            a: a.to_string(),
            b: b.to_string(),
            difference: e.value,
            bootstrap_se: e.se,
            ci_low: e.ci.0,
            ci_high: e.ci.1,
            n_targets: paired.n_targets(),
            n_workers: paired.n_workers(),
        }
    }
}

/// Models and their paired differences.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One row per model, in the order given (perplexity only: the distribution metrics and
    /// subgroups of [`Evaluator`](crate::Evaluator) are empty here).
    pub models: Vec<ModelMetrics>,
    /// Every pair `(i, j)` with `i < j`: `PPL(model i) − PPL(model j)`.
    pub paired: Vec<PairedMetrics>,
}

impl Report {
    /// Evaluates every model and every ordered pair (earlier minus later, so listing baselines
    /// first gives the improvements of later models as positive numbers).
    ///
    /// # Errors
    /// As [`Bootstrap::perplexity`] and [`Bootstrap::paired_difference`] (models must score the
    /// same targets to be paired).
    pub fn evaluate(models: &[(&str, &ScoreSet)], bootstrap: &Bootstrap) -> Result<Self> {
        let mut rows = Vec::with_capacity(models.len());
        for (name, s) in models {
            rows.push(ModelMetrics::from_estimate(
                name,
                &bootstrap.perplexity(s)?,
                s,
            )?);
        }
        let mut paired = Vec::new();
        for i in 0..models.len() {
            for j in i + 1..models.len() {
                let e = bootstrap.paired_difference(models[i].1, models[j].1)?;
                paired.push(PairedMetrics::from_estimate(
                    models[i].0,
                    models[j].0,
                    &e,
                    models[i].1,
                ));
            }
        }
        Ok(Self {
            models: rows,
            paired,
        })
    }

    /// A Markdown table: perplexities, then the paired differences, bootstrap SEs in
    /// parentheses.
    pub fn to_markdown(&self) -> String {
        table_markdown(&self.models, &self.paired)
    }

    /// CSV with columns `row,value,bootstrap_se,ci_low,ci_high,n_targets,n_workers`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("row,value,bootstrap_se,ci_low,ci_high,n_targets,n_workers\n");
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        for m in &self.models {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                quote(&m.name),
                m.perplexity,
                m.bootstrap_se,
                m.ci_low,
                m.ci_high,
                m.n_targets,
                m.n_workers
            );
        }
        for p in &self.paired {
            let _ = writeln!(
                out,
                "{},{},{},{},{},,",
                quote(&p.name),
                p.difference,
                p.bootstrap_se,
                p.ci_low,
                p.ci_high
            );
        }
        out
    }
}

/// The paper's Table 6 shape: perplexities, then the paired differences, bootstrap SEs in
/// parentheses.
pub(crate) fn table_markdown(models: &[ModelMetrics], paired: &[PairedMetrics]) -> String {
    let mut out = String::from("| | perplexity (SE) |\n|---|---|\n");
    let targets = models.first().map_or(0, |m| m.n_targets);
    let _ = writeln!(out, "| number of targets | {targets} |");
    for m in models {
        let _ = writeln!(
            out,
            "| {} | {:.3} ({}) |",
            m.name,
            m.perplexity,
            fmt_se(m.bootstrap_se)
        );
    }
    if !paired.is_empty() {
        out.push_str("| **perplexity improvement** | |\n");
        for p in paired {
            let _ = writeln!(
                out,
                "| {} | {:.3} ({}) |",
                p.name,
                p.difference,
                fmt_se(p.bootstrap_se)
            );
        }
    }
    out
}

/// A standard error to three decimals, or `no SE` where none exists (fewer than two workers).
pub(crate) fn fmt_se(se: f64) -> String {
    if se.is_nan() {
        "no SE".into()
    } else {
        format!("{se:.3}")
    }
}
