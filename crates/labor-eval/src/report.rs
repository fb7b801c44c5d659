//! Result tables: perplexity per model and paired differences, as Markdown (the shape of the
//! paper's Table 6), CSV, or any serde format (JSON: `metrics.json`).
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

use std::fmt::Write as _;

use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate};
use crate::error::Result;
use crate::scores::ScoreSet;

/// One model's perplexity with its bootstrap standard error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// The model's name.
    pub name: String,
    /// Perplexity on the targets.
    pub perplexity: f64,
    /// Worker-level bootstrap standard error.
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

/// `PPL(a) − PPL(b)` on the same bootstrap replicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedResult {
    /// `PPL(a)-PPL(b)`.
    pub name: String,
    /// The difference.
    pub difference: f64,
    /// Its bootstrap standard error.
    pub bootstrap_se: f64,
    /// Lower end of its percentile interval.
    pub ci_low: f64,
    /// Upper end of its percentile interval.
    pub ci_high: f64,
}

/// Models and their paired differences.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One row per model, in the order given.
    pub models: Vec<ModelResult>,
    /// Every pair `(i, j)` with `i < j`: `PPL(model i) − PPL(model j)`.
    pub paired: Vec<PairedResult>,
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
            let e = bootstrap.perplexity(s)?;
            rows.push(ModelResult {
                name: name.to_string(),
                perplexity: e.value,
                bootstrap_se: e.se,
                ci_low: e.ci.0,
                ci_high: e.ci.1,
                n_targets: s.n_targets(),
                n_workers: s.n_workers(),
            });
        }
        let mut paired = Vec::new();
        for i in 0..models.len() {
            for j in i + 1..models.len() {
                let Estimate { value, se, ci, .. } =
                    bootstrap.paired_difference(models[i].1, models[j].1)?;
                paired.push(PairedResult {
                    name: format!("PPL({})-PPL({})", models[i].0, models[j].0),
                    difference: value,
                    bootstrap_se: se,
                    ci_low: ci.0,
                    ci_high: ci.1,
                });
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
        let mut out = String::from("| | perplexity (SE) |\n|---|---|\n");
        let targets = self.models.first().map_or(0, |m| m.n_targets);
        let _ = writeln!(out, "| number of targets | {targets} |");
        for m in &self.models {
            let _ = writeln!(
                out,
                "| {} | {:.3} ({}) |",
                m.name,
                m.perplexity,
                fmt_se(m.bootstrap_se)
            );
        }
        if !self.paired.is_empty() {
            out.push_str("| **perplexity improvement** | |\n");
            for p in &self.paired {
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

/// A standard error to three decimals, or `no SE` where none exists (fewer than two workers).
pub(crate) fn fmt_se(se: f64) -> String {
    if se.is_nan() {
        "no SE".into()
    } else {
        format!("{se:.3}")
    }
}
