//! What the evaluator gives: the metrics of each model and pair, and their Markdown and CSV.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{ModelMetrics, PairedMetrics, Report, table_markdown};
use labor_data::TargetRule;

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
            models: self.models.clone(),
            paired: self.paired.clone(),
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
        out.push_str(&table_markdown(&self.models, &self.paired));
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
