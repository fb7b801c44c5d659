//! What the evaluator gives: the metrics of each model and pair, and their Markdown and CSV.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::metrics::Calibration;
use crate::report::{ModelResult, PairedResult, Report};
use crate::targets::TargetRule;

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

/// The result of [`Evaluator::run`](super::Evaluator::run); serialises as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The target rule.
    pub target_rule: TargetRule,
    /// Bootstrap replicates.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Coverage of the percentile intervals.
    pub level: f64,
    /// One entry per model, in the order given.
    pub models: Vec<ModelMetrics>,
    /// Every pair `(i, j)`, `i < j`: `PPL(model i) − PPL(model j)`.
    pub paired: Vec<PairedMetrics>,
}

pub(super) fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

impl Evaluation {
    /// The perplexities and paired differences as a [`Report`] (the paper's Table 6 shape).
    pub fn report(&self) -> Report {
        Report {
            models: self
                .models
                .iter()
                .map(|m| ModelResult {
                    name: m.name.clone(),
                    perplexity: m.perplexity,
                    bootstrap_se: m.bootstrap_se,
                    ci_low: m.ci_low,
                    ci_high: m.ci_high,
                    n_targets: m.n_targets,
                    n_workers: m.n_workers,
                })
                .collect(),
            paired: self
                .paired
                .iter()
                .map(|p| PairedResult {
                    name: p.name.clone(),
                    difference: p.difference,
                    bootstrap_se: p.bootstrap_se,
                    ci_low: p.ci_low,
                    ci_high: p.ci_high,
                })
                .collect(),
        }
    }

    /// A Markdown report: the Table-6-shaped table, then intervals, accuracy and calibration,
    /// events, and subgroups.
    pub fn to_markdown(&self) -> String {
        let pct = (self.level * 100.0).round();
        let mut out = format!(
            "## Perplexity\n\nTargets: {}; worker-cluster bootstrap with {} replicates (seed {}), SEs in parentheses.\n\n",
            self.target_rule, self.resamples, self.seed
        );
        out.push_str(&self.report().to_markdown());
        let _ = write!(
            out,
            "\n| model | perplexity | {pct}% interval | targets | workers |\n|---|---|---|---|---|\n"
        );
        for m in &self.models {
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.3}–{:.3} | {} | {} |",
                m.name, m.perplexity, m.ci_low, m.ci_high, m.n_targets, m.n_workers
            );
        }
        for p in &self.paired {
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.3}–{:.3} | {} | {} |",
                p.name, p.difference, p.ci_low, p.ci_high, p.n_targets, p.n_workers
            );
        }
        if self.models.iter().any(|m| m.calibration.is_some()) {
            out.push_str("\n## Accuracy and calibration (full distributions)\n\n| model | top-1 | top-5 | top-1 ECE | mass on valid outcomes (mean, min) |\n|---|---|---|---|---|\n");
            for m in &self.models {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    m.name,
                    opt(m.top1_accuracy),
                    opt(m.top5_accuracy),
                    opt(m.calibration.as_ref().map(|c| c.ece)),
                    m.valid_mass
                        .map_or_else(|| "–".into(), |v| format!("{:.4}, {:.4}", v.mean, v.min))
                );
            }
            out.push_str("\n## Events (full distributions)\n\n| model | event | targets | base rate | mean predicted | AUC | binary perplexity | ECE |\n|---|---|---|---|---|---|---|---|\n");
            for m in &self.models {
                for e in &m.events {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {:.3} | {:.3} | {} | {:.3} | {:.3} |",
                        m.name,
                        e.name,
                        e.n_targets,
                        e.base_rate,
                        e.mean_predicted,
                        opt(e.auc),
                        e.binary_perplexity,
                        e.ece
                    );
                }
            }
        }
        let dims: BTreeSet<&String> = self
            .models
            .iter()
            .flat_map(|m| m.subgroups.keys())
            .collect();
        if !dims.is_empty() {
            out.push_str("\n## Perplexity by subgroup (bootstrap SE)\n");
            for dim in dims {
                let _ = write!(out, "\n| {dim} |");
                for m in &self.models {
                    let _ = write!(out, " {} |", m.name);
                }
                out.push_str(" targets |\n|---|");
                out.push_str(&"---|".repeat(self.models.len() + 1));
                out.push('\n');
                let groups: BTreeSet<&String> = self
                    .models
                    .iter()
                    .filter_map(|m| m.subgroups.get(dim))
                    .flatten()
                    .map(|g| &g.group)
                    .collect();
                for g in groups {
                    let _ = write!(out, "| {g} |");
                    let mut n = 0;
                    for m in &self.models {
                        match m
                            .subgroups
                            .get(dim)
                            .and_then(|v| v.iter().find(|x| &x.group == g))
                        {
                            Some(x) => {
                                n = n.max(x.n_targets);
                                let _ = write!(
                                    out,
                                    " {:.3} ({}) |",
                                    x.perplexity,
                                    crate::report::fmt_se(x.bootstrap_se)
                                );
                            }
                            None => out.push_str(" – |"),
                        }
                    }
                    let _ = writeln!(out, " {n} |");
                }
            }
        }
        out
    }

    /// Long CSV, one estimate per line:
    /// `model,metric,group,value,bootstrap_se,ci_low,ci_high,n_targets,n_workers` (empty fields
    /// where a column does not apply).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "model,metric,group,value,bootstrap_se,ci_low,ci_high,n_targets,n_workers\n",
        );
        let q = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let f = |x: Option<f64>| x.map_or_else(String::new, |v| v.to_string());
        let mut line = |model: &str,
                        metric: &str,
                        group: &str,
                        value: Option<f64>,
                        se: Option<f64>,
                        ci: Option<(f64, f64)>,
                        n: Option<usize>,
                        w: Option<usize>| {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                q(model),
                q(metric),
                q(group),
                f(value),
                f(se),
                f(ci.map(|c| c.0)),
                f(ci.map(|c| c.1)),
                n.map_or_else(String::new, |v| v.to_string()),
                w.map_or_else(String::new, |v| v.to_string())
            );
        };
        for m in &self.models {
            let (n, w) = (Some(m.n_targets), Some(m.n_workers));
            line(
                &m.name,
                "perplexity",
                "",
                Some(m.perplexity),
                Some(m.bootstrap_se),
                Some((m.ci_low, m.ci_high)),
                n,
                w,
            );
            line(&m.name, "mean_nll", "", Some(m.mean_nll), None, None, n, w);
            let extra = [
                ("top1_accuracy", m.top1_accuracy),
                ("top5_accuracy", m.top5_accuracy),
                ("top1_ece", m.calibration.as_ref().map(|c| c.ece)),
                ("valid_mass_mean", m.valid_mass.map(|v| v.mean)),
                ("valid_mass_min", m.valid_mass.map(|v| v.min)),
            ];
            for (k, v) in extra {
                if v.is_some() {
                    line(&m.name, k, "", v, None, None, n, w);
                }
            }
            for e in &m.events {
                let n = Some(e.n_targets);
                for (k, v) in [
                    ("base_rate", Some(e.base_rate)),
                    ("mean_predicted", Some(e.mean_predicted)),
                    ("auc", e.auc),
                    ("binary_perplexity", Some(e.binary_perplexity)),
                    ("ece", Some(e.ece)),
                ] {
                    line(
                        &m.name,
                        &format!("{}_{k}", e.name),
                        "",
                        v,
                        None,
                        None,
                        n,
                        None,
                    );
                }
            }
            for (dim, groups) in &m.subgroups {
                for g in groups {
                    line(
                        &m.name,
                        &format!("perplexity_by_{dim}"),
                        &g.group,
                        Some(g.perplexity),
                        Some(g.bootstrap_se),
                        Some((g.ci_low, g.ci_high)),
                        Some(g.n_targets),
                        Some(g.n_workers),
                    );
                }
            }
        }
        for p in &self.paired {
            line(
                &p.name,
                "paired_difference",
                "",
                Some(p.difference),
                Some(p.bootstrap_se),
                Some((p.ci_low, p.ci_high)),
                Some(p.n_targets),
                Some(p.n_workers),
            );
        }
        out
    }
}
