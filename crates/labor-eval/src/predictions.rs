//! Evaluation of predictions files: what `labor eval`, the quickstart and the example programs
//! all run. It converts `labor_data::Predictions` (the rows every model writes) into the
//! [`Evaluator`]'s targets, restricted to the workers of a test panel when one is given (which
//! also supplies the survey weights and the subgroup attributes, and checks the states and
//! previous states the predictions carry), runs the
//! evaluation with the standard subgroups and events, and writes the report directory.
//!
//! ```
//! use std::sync::Arc;
//! use labor_data::{Prediction, Predictions, StateId, Taxonomy};
//! use labor_eval::{EvalOptions, evaluate_predictions};
//!
//! let taxonomy = Arc::new(Taxonomy::occ1990dd());
//! let mut a = Predictions::new("a", Arc::clone(&taxonomy));
//! let mut b = Predictions::new("b", taxonomy);
//! for w in 0..40 {
//!     for k in 0..5u32 {
//!         let row = |log_prob| Prediction {
//!             worker_id: format!("w{w}"),
//!             year: 1990 + k as i32,
//!             position: k,
//!             state: StateId(3),
//!             previous: (k > 0).then_some(StateId(3)),
//!             log_prob,
//!             weight: None,
//!             probs: None,
//!         };
//!         a.push(row(-1.0 - (w % 3) as f64 / 10.0)).unwrap();
//!         b.push(row(-1.2 - (w % 3) as f64 / 10.0)).unwrap();
//!     }
//! }
//! let out = evaluate_predictions(&[a, b], None, &EvalOptions::default(), |_| {}).unwrap();
//! let ppl = out.evaluation.models[0].perplexity;
//! assert!((ppl - 1.1f64.exp()).abs() < 0.02, "{ppl}");
//! assert!(out.table().contains("| b |"));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use labor_data::{Panel, Predictions, SpecialState, Taxonomy, Worker};
use serde::Serialize;

use crate::bootstrap::Bootstrap;
use crate::curves::LossCurve;
use crate::error::{Error, Result};
use crate::evaluate::{Evaluation, Evaluator, Event, ModelPredictions, Subgroups, TargetRow};
use labor_data::TargetRule;

/// Which weights the targets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// Every target counts 1 (what the paper reports).
    #[default]
    None,
    /// The survey weight of the worker (from the predictions file, else the panel).
    Survey,
}

impl std::str::FromStr for Weights {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "unit" => Ok(Weights::None),
            "survey" => Ok(Weights::Survey),
            other => Err(Error::InvalidArgument {
                name: "weights",
                detail: format!("unknown weights `{other}` (none, survey)"),
            }),
        }
    }
}

/// Options of [`evaluate_predictions`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Which worker-years are targets.
    pub targets: TargetRule,
    /// Bootstrap replicates.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Target weights.
    pub weights: Weights,
    /// Calibration bins.
    pub bins: usize,
    /// Training logs to plot.
    pub loss_curves: Vec<LossCurve>,
}

impl EvalOptions {
    /// Checks the ranges: 2 to [`MAX_RESAMPLES`](crate::MAX_RESAMPLES) resamples, 1 to 1,000
    /// calibration bins.
    ///
    /// ```
    /// let mut o = labor_eval::EvalOptions::default();
    /// assert!(o.validate().is_ok());
    /// o.resamples = 1;
    /// assert!(o.validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the option.
    pub fn validate(&self) -> Result<()> {
        if !(2..=crate::MAX_RESAMPLES).contains(&self.resamples) {
            return Err(Error::InvalidArgument {
                name: "resamples",
                detail: format!(
                    "{} is not in 2..={} (1,000 give SEs to about 2%)",
                    self.resamples,
                    crate::MAX_RESAMPLES
                ),
            });
        }
        if !(1..=1000).contains(&self.bins) {
            return Err(Error::InvalidArgument {
                name: "bins",
                detail: format!("{} is not in 1..=1000", self.bins),
            });
        }
        Ok(())
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            targets: TargetRule::All,
            resamples: 1000,
            seed: 0,
            weights: Weights::None,
            bins: 10,
            loss_curves: Vec::new(),
        }
    }
}

/// What was read from one predictions input.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// The model's name in the report.
    pub model: String,
    /// Rows in the predictions.
    pub rows: usize,
    /// Rows kept (their worker is in the panel, when one is given).
    pub rows_in_panel: usize,
    /// Whether the rows carry full distributions.
    pub full_distribution: bool,
}

/// `metrics.json`: the evaluation and what it was computed from.
#[derive(Debug, Clone, Serialize)]
pub struct EvalOutput {
    /// The metrics.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Target weights used.
    pub weights: Weights,
    /// One entry per model.
    pub inputs: Vec<InputSummary>,
    /// The training logs plotted.
    #[serde(skip)]
    pub loss_curves: Vec<LossCurve>,
    /// Seconds spent in [`evaluate_predictions`].
    pub seconds: f64,
}

/// Unique model names: a repeated name gets `#2`, `#3`, ...
fn unique_names(models: &[Predictions]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    models
        .iter()
        .map(|m| {
            let base = if m.model().is_empty() {
                "model"
            } else {
                m.model()
            };
            let n = seen.entry(base.to_string()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base.to_string()
            } else {
                format!("{base}#{n}")
            }
        })
        .collect()
}

/// The index of the record of `worker` that a prediction for `year` at `position` is about:
/// `position` itself when its year matches (predictions made on this panel), else the record of
/// that year.
fn record_index(worker: &Worker, position: u32, year: i32) -> Option<usize> {
    let k = position as usize;
    if worker.records.get(k).is_some_and(|r| r.year == year) {
        return Some(k);
    }
    worker.records.iter().position(|r| r.year == year)
}

/// Converts one model's predictions (restricted to `panel`'s workers when given).
fn convert(
    p: &Predictions,
    name: &str,
    panel: Option<&HashMap<&str, &Worker>>,
    weights: Weights,
) -> Result<(ModelPredictions, InputSummary)> {
    let n_states = p.taxonomy().len();
    let mut out = ModelPredictions::new(name, n_states);
    // Previous states from the predictions themselves (when no panel is given).
    let mut last: Option<(&str, u32, usize)> = None;
    for row in p.rows() {
        let (position, previous, weight) = match panel {
            Some(workers) => {
                let Some(w) = workers.get(row.worker_id.as_str()) else {
                    continue;
                };
                let contradiction = |detail: String| Error::Contradiction {
                    model: name.to_string(),
                    worker: row.worker_id.clone(),
                    year: row.year,
                    detail,
                };
                let Some(k) = record_index(w, row.position, row.year) else {
                    return Err(contradiction("the panel has no record of that year".into()));
                };
                if w.records[k].state != row.state {
                    return Err(contradiction(
                        "the predictions' observed state differs from the panel's".into(),
                    ));
                }
                let prev = k.checked_sub(1).map(|j| w.records[j].state);
                // (A prediction made on another panel of the worker, at another position, may
                // have had another record before.)
                if k == row.position as usize && row.previous.is_some() && row.previous != prev {
                    return Err(contradiction(
                        "the predictions' previous state differs from the panel's".into(),
                    ));
                }
                (k as u32, prev.map(|s| s.index()), row.weight.or(w.weight))
            }
            // The row's own previous state; for files written before it was recorded, the
            // state of the row before when that is the same worker's record before.
            None => {
                let prev = match last {
                    Some((id, pos, s)) if id == row.worker_id && pos + 1 == row.position => Some(s),
                    _ => None,
                };
                (
                    row.position,
                    row.previous.map(|s| s.index()).or(prev),
                    row.weight,
                )
            }
        };
        last = Some((row.worker_id.as_str(), row.position, row.state.index()));
        let weight = match weights {
            Weights::None => 1.0,
            Weights::Survey => weight.ok_or_else(|| Error::MissingWeight {
                model: name.to_string(),
                worker: row.worker_id.clone(),
            })?,
        };
        let t = TargetRow::new(
            row.worker_id.clone(),
            row.year,
            position,
            row.state.index(),
            previous,
            row.log_prob,
        )
        .with_weight(weight);
        out.push(t, row.probs.as_deref())
            .map_err(|e| Error::Model {
                model: name.to_string(),
                source: Box::new(e),
            })?;
    }
    let summary = InputSummary {
        model: name.to_string(),
        rows: p.len(),
        rows_in_panel: out.rows().len(),
        full_distribution: out.has_distribution(),
    };
    Ok((out, summary))
}

/// The subgroups of every worker of `panel`: gender, ethnicity, region and dataset.
///
/// # Errors
/// None in practice (the four values always match the four dimensions).
pub fn panel_subgroups(panel: &Panel) -> Result<Subgroups> {
    let mut sg = Subgroups::new(&["gender", "ethnicity", "region", "dataset"]);
    for w in panel.workers() {
        sg.insert(
            &w.id,
            vec![
                w.gender.key().to_string(),
                w.ethnicity.key().to_string(),
                w.region.key().to_string(),
                w.dataset.clone(),
            ],
        )?;
    }
    Ok(sg)
}

/// The events `labor eval` reports from full distributions: a job change, unemployment,
/// leaving the labour force, and education, over `taxonomy`'s special states.
pub fn standard_events(taxonomy: &Taxonomy) -> Vec<Event> {
    let id = |s: SpecialState| taxonomy.special(s).index();
    vec![
        Event::change(),
        Event::in_states("unemployment", vec![id(SpecialState::Unemployed)]),
        Event::enter(
            "leaving_labor_force",
            vec![id(SpecialState::NotInLaborForce)],
        ),
        Event::in_states("education", vec![id(SpecialState::InEducation)]),
    ]
}

/// Evaluates `models` (the first is the baseline of the paired differences) on the workers of
/// `panel` when given, which also supplies previous states, survey weights and the subgroup
/// attributes. `progress` is called with a description before each step.
///
/// # Errors
/// No model, models over different taxonomies ([`Error::TaxonomyMismatch`]), a model with no
/// target ([`Error::NoTargets`]), a predictions row that contradicts the panel
/// ([`Error::Contradiction`]), a missing survey weight under [`Weights::Survey`]
/// ([`Error::MissingWeight`]), or invalid options.
pub fn evaluate_predictions(
    models: &[Predictions],
    panel: Option<&Panel>,
    opts: &EvalOptions,
    mut progress: impl FnMut(&str),
) -> Result<EvalOutput> {
    let t0 = Instant::now();
    opts.validate()?;
    let Some(first) = models.first() else {
        return Err(Error::InvalidArgument {
            name: "predictions",
            detail: "no predictions to evaluate".into(),
        });
    };
    let taxonomy = first.taxonomy();
    let mismatch = |what: String, theirs: &Taxonomy| Error::TaxonomyMismatch {
        what,
        theirs: theirs.name().to_string(),
        ours: taxonomy.name().to_string(),
        baseline: first.model().to_string(),
    };
    for m in models {
        if **m.taxonomy() != **taxonomy {
            return Err(mismatch(format!("model `{}`", m.model()), m.taxonomy()));
        }
    }
    if let Some(p) = panel
        && **p.taxonomy() != **taxonomy
    {
        return Err(mismatch("the panel".into(), p.taxonomy()));
    }
    let by_id: Option<HashMap<&str, &Worker>> =
        panel.map(|p| p.workers().iter().map(|w| (w.id.as_str(), w)).collect());
    let names = unique_names(models);
    let mut converted = Vec::with_capacity(models.len());
    let mut inputs = Vec::with_capacity(models.len());
    for (m, name) in models.iter().zip(&names) {
        progress(&format!("{name}: reading {} rows", m.len()));
        let (c, s) = convert(m, name, by_id.as_ref(), opts.weights)?;
        if c.rows().is_empty() {
            return Err(Error::NoTargets {
                model: name.clone(),
            });
        }
        converted.push(c);
        inputs.push(s);
    }
    let subgroups = panel.map(panel_subgroups).transpose()?;
    let evaluator = Evaluator::builder()
        .with_rule(opts.targets)
        .with_bootstrap(
            Bootstrap::new()
                .with_resamples(opts.resamples)
                .with_seed(opts.seed),
        )
        .with_events(standard_events(taxonomy))
        .with_calibration_bins(opts.bins)
        .build()?;
    let evaluation = evaluator.run_with_progress(&converted, subgroups.as_ref(), progress)?;
    Ok(EvalOutput {
        evaluation,
        weights: opts.weights,
        inputs,
        loss_curves: opts.loss_curves.clone(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

impl EvalOutput {
    /// The perplexity table in the shape of the paper's Table 6 (Markdown).
    pub fn table(&self) -> String {
        self.evaluation.report().to_markdown()
    }

    /// A line per model with a full distribution: `NAME: top-1 A, top-5 B, ECE C, mass on
    /// valid titles D` (NaN where a measure is missing); empty when no model has one.
    pub fn accuracy_lines(&self) -> String {
        let mut s = String::new();
        for m in &self.evaluation.models {
            if let (Some(t1), Some(t5)) = (m.top1_accuracy, m.top5_accuracy) {
                s.push_str(&format!(
                    "{}: top-1 {t1:.3}, top-5 {t5:.3}, ECE {:.3}, mass on valid titles {:.4}\n",
                    m.name,
                    m.calibration.as_ref().map_or(f64::NAN, |c| c.ece),
                    m.valid_mass.map_or(f64::NAN, |v| v.mean)
                ));
            }
        }
        s
    }

    /// `report.md`: what each input contributed, then the evaluation.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# Evaluation\n\n");
        for i in &self.inputs {
            md.push_str(&format!(
                "- `{}`: {} of {} predictions on the evaluated workers{}\n",
                i.model,
                i.rows_in_panel,
                i.rows,
                if i.full_distribution {
                    ", full distributions"
                } else {
                    ""
                }
            ));
        }
        md.push('\n');
        md.push_str(&self.evaluation.to_markdown());
        md
    }

    /// The PNG figures as (file name, bytes): `calibration.png` (models with full
    /// distributions), `perplexity_by_<dimension>.png`, and `loss_curves.png` when training
    /// logs were given.
    ///
    /// # Errors
    /// A figure that cannot be drawn.
    #[cfg(feature = "plots")]
    pub fn plots(&self) -> Result<Vec<(String, Vec<u8>)>> {
        use crate::plots;
        let ev = &self.evaluation;
        let mut out = Vec::new();
        let cal: Vec<(&str, &crate::Calibration)> = ev
            .models
            .iter()
            .filter_map(|m| m.calibration.as_ref().map(|c| (m.name.as_str(), c)))
            .collect();
        if !cal.is_empty() {
            let title = format!("Top-1 calibration ({} targets)", ev.target_rule);
            out.push((
                "calibration.png".to_string(),
                plots::reliability_png(&cal, &title)?,
            ));
        }
        let mut dims: Vec<&String> = ev.models.iter().flat_map(|m| m.subgroups.keys()).collect();
        dims.sort();
        dims.dedup();
        for dim in dims {
            let rows: Vec<(&str, &[crate::GroupEstimate])> = ev
                .models
                .iter()
                .filter_map(|m| {
                    m.subgroups
                        .get(dim)
                        .map(|g| (m.name.as_str(), g.as_slice()))
                })
                .collect();
            if rows.iter().all(|(_, g)| g.is_empty()) {
                continue;
            }
            out.push((
                format!("perplexity_by_{dim}.png"),
                plots::subgroup_png(dim, &rows, 1.96)?,
            ));
        }
        if !self.loss_curves.is_empty() {
            out.push((
                "loss_curves.png".to_string(),
                plots::loss_curves_png(&self.loss_curves)?,
            ));
        }
        Ok(out)
    }

    /// Writes `metrics.json`, `report.md`, `report.csv` and (with the `plots` feature) the
    /// figures of `plots` into `dir` (created if missing) as one set: they are staged beside
    /// `dir` and moved in together (see `labor_data::atomic::AtomicDir`), so a failure (a full
    /// disk) leaves the old report whole, never new files beside old ones. Returns the paths
    /// written.
    ///
    /// # Errors
    /// [`Error::Write`] naming the file, or a figure that cannot be drawn.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Write {
                source: labor_data::Error::Io {
                    path: parent.to_path_buf(),
                    source: e,
                },
            })?;
        }
        let staged = labor_data::atomic::AtomicDir::create(dir)?;
        let mut written = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
            labor_data::atomic::write(staged.path().join(name), bytes)?;
            written.push(dir.join(name));
            Ok(())
        };
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Malformed {
            what: "metrics.json".into(),
            line: 0,
            detail: e.to_string(),
        })?;
        put("metrics.json", json.as_bytes())?;
        put("report.md", self.to_markdown().as_bytes())?;
        put("report.csv", self.evaluation.to_csv().as_bytes())?;
        #[cfg(feature = "plots")]
        for (name, png) in self.plots()? {
            put(&name, &png)?;
        }
        staged.commit()?;
        Ok(written)
    }
}
