//! Evaluation of several models at once; see [`Evaluator`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate};
use crate::error::{Error, Result};
use crate::metrics::{Calibration, weighted_auc, weighted_binary_perplexity};
use crate::report::{ModelResult, PairedResult, Report};
use crate::scores::ScoreSet;
use crate::targets::TargetRule;

/// Smallest and largest binary probability used in binary perplexity and calibration.
const CLAMP: f64 = 1e-7;

/// One predicted worker-year.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    /// The worker (the bootstrap's cluster).
    pub worker: String,
    /// The year predicted.
    pub year: i32,
    /// Index of the record in the worker's career (0 = the first observed year).
    pub position: u32,
    /// The observed state, an index below the model's `n_states`.
    pub state: usize,
    /// The previous record's state (`None` for the first record or when unknown).
    pub previous: Option<usize>,
    /// Natural log of the probability the model gave the observed state.
    pub log_prob: f64,
    /// Weight of the target (a survey weight, or 1).
    pub weight: f64,
}

impl TargetRow {
    /// A row of weight 1.
    pub fn new(
        worker: impl Into<String>,
        year: i32,
        position: u32,
        state: usize,
        previous: Option<usize>,
        log_prob: f64,
    ) -> Self {
        Self {
            worker: worker.into(),
            year,
            position,
            state,
            previous,
            log_prob,
            weight: 1.0,
        }
    }

    /// The same row with weight `w`.
    #[must_use]
    pub fn with_weight(mut self, w: f64) -> Self {
        self.weight = w;
        self
    }
}

/// One model's predictions: rows and, for all rows or none, the full distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPredictions {
    name: String,
    n_states: usize,
    rows: Vec<TargetRow>,
    probs: Option<Vec<f32>>,
}

impl ModelPredictions {
    /// No rows yet, for a model named `name` over `n_states` outcomes.
    pub fn new(name: impl Into<String>, n_states: usize) -> Self {
        Self {
            name: name.into(),
            n_states,
            rows: Vec::new(),
            probs: None,
        }
    }

    /// Appends a row with its distribution (`probs[s]` = probability of outcome `s`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a state outside `n_states`, a distribution of the wrong
    /// length or with a negative or non-finite entry, or a distribution given for some rows
    /// but not others; [`Error::InvalidLogProb`] / [`Error::InvalidWeight`] as
    /// [`ScoreSet::push`] (a log-probability up to `1e-6` above zero, a rounding error, is
    /// read as 0).
    pub fn push(&mut self, mut row: TargetRow, probs: Option<&[f32]>) -> Result<()> {
        let index = self.rows.len();
        let bad = |detail: String| Error::InvalidArgument {
            name: "prediction",
            detail: format!("row {index} (worker `{}`): {detail}", row.worker),
        };
        if row.state >= self.n_states || row.previous.is_some_and(|p| p >= self.n_states) {
            return Err(bad(format!("state outside the {} outcomes", self.n_states)));
        }
        if row.log_prob > 0.0 && row.log_prob <= 1e-6 {
            row.log_prob = 0.0;
        }
        if !(row.log_prob.is_finite() && row.log_prob <= 0.0) {
            return Err(Error::InvalidLogProb {
                index,
                worker: row.worker,
                value: row.log_prob,
            });
        }
        if !(row.weight.is_finite() && row.weight >= 0.0) {
            return Err(Error::InvalidWeight {
                index,
                worker: row.worker,
                value: row.weight,
            });
        }
        match (probs, &mut self.probs) {
            (Some(p), store) => {
                if p.len() != self.n_states {
                    return Err(bad(format!(
                        "{} probabilities for {} outcomes",
                        p.len(),
                        self.n_states
                    )));
                }
                if p.iter().any(|q| !(q.is_finite() && *q >= 0.0)) {
                    return Err(bad("a probability is negative or not finite".into()));
                }
                match store {
                    Some(s) => s.extend_from_slice(p),
                    None if index == 0 => *store = Some(p.to_vec()),
                    None => return Err(bad("a distribution after rows without one".into())),
                }
            }
            (None, Some(_)) => return Err(bad("no distribution after rows with one".into())),
            (None, None) => {}
        }
        self.rows.push(row);
        Ok(())
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of outcomes.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// The rows.
    pub fn rows(&self) -> &[TargetRow] {
        &self.rows
    }

    /// Whether the rows carry full distributions.
    pub fn has_distribution(&self) -> bool {
        self.probs.is_some()
    }

    /// The distribution of row `i`, when known.
    pub fn distribution(&self, i: usize) -> Option<&[f32]> {
        let n = self.n_states;
        self.probs.as_ref().and_then(|p| p.get(i * n..(i + 1) * n))
    }
}

/// Worker attributes to break perplexity down by (e.g. gender, ethnicity, region, dataset).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subgroups {
    dims: Vec<String>,
    by_worker: HashMap<String, Vec<String>>,
}

impl Subgroups {
    /// Attributes named `dims`, no worker yet.
    pub fn new<S: AsRef<str>>(dims: &[S]) -> Self {
        Self {
            dims: dims.iter().map(|d| d.as_ref().to_string()).collect(),
            by_worker: HashMap::new(),
        }
    }

    /// Sets a worker's values, one per dimension.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the number of values differs from the dimensions.
    pub fn insert<S: Into<String>>(&mut self, worker: &str, values: Vec<S>) -> Result<()> {
        if values.len() != self.dims.len() {
            return Err(Error::LengthMismatch {
                what: "subgroup values and dimensions",
                left: values.len(),
                right: self.dims.len(),
            });
        }
        self.by_worker.insert(
            worker.to_string(),
            values.into_iter().map(Into::into).collect(),
        );
        Ok(())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// Number of workers with values.
    pub fn len(&self) -> usize {
        self.by_worker.len()
    }

    /// Whether no worker has values.
    pub fn is_empty(&self) -> bool {
        self.by_worker.is_empty()
    }

    /// The value of dimension `d` for `worker` (`"unknown"` for a worker without values).
    fn value(&self, worker: &str, d: usize) -> &str {
        self.by_worker
            .get(worker)
            .and_then(|v| v.get(d))
            .map_or("unknown", String::as_str)
    }
}

/// A binary event predicted from the full distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The state differs from the previous record's: `P = 1 − p(previous state)`; defined for
    /// targets whose previous state is known.
    Change {
        /// Name in reports.
        name: String,
    },
    /// Entering one of `states` (e.g. leaving the labour force): defined for targets whose
    /// previous state is known and not in `states`; `P = Σ p(s)`.
    Enter {
        /// Name in reports.
        name: String,
        /// The outcomes entered.
        states: Vec<usize>,
    },
    /// The state is one of `states`: `P = Σ p(s)`.
    InStates {
        /// Name in reports.
        name: String,
        /// The outcomes that make the event.
        states: Vec<usize>,
    },
}

impl Event {
    /// A job change, named `job_change`.
    pub fn change() -> Self {
        Event::Change {
            name: "job_change".into(),
        }
    }

    /// Being in one of `states`, named `name` (e.g. `unemployment`).
    pub fn in_states(name: impl Into<String>, states: Vec<usize>) -> Self {
        Event::InStates {
            name: name.into(),
            states,
        }
    }

    /// Entering one of `states` from outside them, named `name` (e.g. `leaving_labor_force`).
    pub fn enter(name: impl Into<String>, states: Vec<usize>) -> Self {
        Event::Enter {
            name: name.into(),
            states,
        }
    }

    /// The name in reports.
    pub fn name(&self) -> &str {
        match self {
            Event::Change { name } | Event::Enter { name, .. } | Event::InStates { name, .. } => {
                name
            }
        }
    }

    fn states(&self) -> &[usize] {
        match self {
            Event::Change { .. } => &[],
            Event::Enter { states, .. } | Event::InStates { states, .. } => states,
        }
    }
}

/// Configures an [`Evaluator`].
#[derive(Debug, Clone)]
pub struct EvaluatorBuilder {
    rule: TargetRule,
    bootstrap: Bootstrap,
    events: Vec<Event>,
    bins: usize,
    decades: bool,
}

impl Default for EvaluatorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EvaluatorBuilder {
    /// All targets, the default [`Bootstrap`] (1,000 replicates, seed 0), the job-change event,
    /// 10 calibration bins, and perplexity by decade.
    pub fn new() -> Self {
        Self {
            rule: TargetRule::All,
            bootstrap: Bootstrap::new(),
            events: vec![Event::change()],
            bins: 10,
            decades: true,
        }
    }

    /// Which worker-years are targets.
    #[must_use]
    pub fn with_rule(mut self, rule: TargetRule) -> Self {
        self.rule = rule;
        self
    }

    /// The bootstrap (replicates, seed, level, threads).
    #[must_use]
    pub fn with_bootstrap(mut self, bootstrap: Bootstrap) -> Self {
        self.bootstrap = bootstrap;
        self
    }

    /// The events to score (replaces the default job change).
    #[must_use]
    pub fn with_events(mut self, events: Vec<Event>) -> Self {
        self.events = events;
        self
    }

    /// Number of equal-width calibration bins.
    #[must_use]
    pub fn with_calibration_bins(mut self, bins: usize) -> Self {
        self.bins = bins;
        self
    }

    /// Whether to break perplexity down by the decade of the target year.
    #[must_use]
    pub fn with_decades(mut self, on: bool) -> Self {
        self.decades = on;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero bins or two events with one name.
    pub fn build(self) -> Result<Evaluator> {
        if self.bins == 0 {
            return Err(Error::InvalidArgument {
                name: "bins",
                detail: "must be at least 1".into(),
            });
        }
        let mut names = BTreeSet::new();
        for e in &self.events {
            if !names.insert(e.name()) {
                return Err(Error::InvalidArgument {
                    name: "events",
                    detail: format!("`{}` appears twice", e.name()),
                });
            }
        }
        Ok(Evaluator { opts: self })
    }
}

/// Everything `labor eval` measures, for several models at once.
///
/// A [`ModelPredictions`] holds one model's targets: worker, year, record position, observed
/// state, the previous record's state, the log-probability of the observed state, a weight, and
/// optionally the model's whole distribution over the `n_states` outcomes. An [`Evaluator`]
/// selects targets with a [`TargetRule`] and measures, per model:
///
/// - perplexity `exp(-Σ w·log p / Σ w)` with its worker-cluster bootstrap SE and percentile
///   interval ([`Bootstrap`]);
/// - perplexity per subgroup (any worker attribute given in [`Subgroups`], e.g. gender,
///   ethnicity, region, dataset; and the decade of the target year) with bootstrap SEs;
/// - from full distributions: top-1 and top-5 accuracy, the probability mass on valid outcomes
///   (below 1 for a language model that spends mass on strings that are not titles), top-1
///   calibration (reliability table, ECE), and for each [`Event`] (a job change, unemployment,
///   leaving the labour force, education) its AUC, binary perplexity and ECE;
///
/// and, for every pair of models, `PPL(a) − PPL(b)` on their common targets with the bootstrap
/// of the difference on shared replicates.
///
/// Event probabilities and calibration use the distribution renormalised over the valid
/// outcomes, so that mass a language model puts outside the titles does not count as "some
/// other state". Binary probabilities are clamped to `[1e-7, 1 − 1e-7]` (the resolution of `f32`
/// distributions) so that one overconfident target gives a large but finite binary perplexity.
/// Every metric weighs targets by their weight (1 unless survey weights are given).
///
/// ```
/// use labor_eval::{Bootstrap, Evaluator, ModelPredictions, TargetRow, TargetRule};
/// // Two states; the model says 50/50 every year: perplexity 2.
/// let mut m = ModelPredictions::new("coin", 2);
/// for w in 0..20 {
///     for k in 0..4u32 {
///         let state = ((w + k as usize) % 2) as usize;
///         let previous = (k > 0).then(|| ((w + k as usize - 1) % 2) as usize);
///         let row = TargetRow::new(format!("w{w}"), 1990 + k as i32, k, state, previous, 0.5f64.ln());
///         m.push(row, Some(&[0.5, 0.5])).unwrap();
///     }
/// }
/// let eval = Evaluator::builder()
///     .with_rule(TargetRule::ExcludeFirst)
///     .with_bootstrap(Bootstrap::new().with_resamples(50))
///     .build()
///     .unwrap();
/// let out = eval.run(&[m], None).unwrap();
/// let coin = &out.models[0];
/// assert!((coin.perplexity - 2.0).abs() < 1e-12);
/// assert_eq!((coin.n_targets, coin.n_workers), (60, 20));
/// assert_eq!(coin.valid_mass.as_ref().unwrap().mean, 1.0);
/// // Every target is a change, predicted at 0.5: the event has no negatives, so no AUC.
/// let change = coin.events.iter().find(|e| e.name == "job_change").unwrap();
/// assert_eq!((change.base_rate, change.auc), (1.0, None));
/// assert!(out.to_markdown().contains("| coin | 2.000 (0.000) |"));
/// ```
#[derive(Debug, Clone)]
pub struct Evaluator {
    opts: EvaluatorBuilder,
}

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

/// The result of [`Evaluator::run`]; serialises as `metrics.json`.
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

struct Selected {
    idx: Vec<usize>,
    scores: ScoreSet,
}

impl Evaluator {
    /// The builder.
    pub fn builder() -> EvaluatorBuilder {
        EvaluatorBuilder::new()
    }

    /// Evaluates `models` (with optional worker attributes for the subgroup breakdown).
    ///
    /// # Errors
    /// [`Error::Empty`] when a model has no target under the rule, [`Error::InvalidArgument`]
    /// for an event state outside a model's outcomes, or a bootstrap error.
    pub fn run(
        &self,
        models: &[ModelPredictions],
        subgroups: Option<&Subgroups>,
    ) -> Result<Evaluation> {
        self.run_with_progress(models, subgroups, |_| {})
    }

    /// As [`Evaluator::run`], calling `progress` with a description before each step.
    ///
    /// # Errors
    /// As [`Evaluator::run`].
    pub fn run_with_progress(
        &self,
        models: &[ModelPredictions],
        subgroups: Option<&Subgroups>,
        mut progress: impl FnMut(&str),
    ) -> Result<Evaluation> {
        let boot = &self.opts.bootstrap;
        let mut selected = Vec::with_capacity(models.len());
        let mut out = Vec::with_capacity(models.len());
        for m in models {
            progress(&format!("{}: perplexity", m.name));
            let sel = self.select(m)?;
            let e = boot.perplexity(&sel.scores)?;
            let mut metrics = ModelMetrics {
                name: m.name.clone(),
                perplexity: e.value,
                bootstrap_se: e.se,
                ci_low: e.ci.0,
                ci_high: e.ci.1,
                n_targets: sel.scores.n_targets(),
                n_workers: sel.scores.n_workers(),
                mean_nll: sel.scores.mean_nll()?,
                top1_accuracy: None,
                top5_accuracy: None,
                valid_mass: None,
                calibration: None,
                events: Vec::new(),
                subgroups: BTreeMap::new(),
            };
            if m.has_distribution() {
                progress(&format!("{}: distributions", m.name));
                self.distribution_metrics(m, &sel, &mut metrics)?;
            }
            progress(&format!("{}: subgroups", m.name));
            metrics.subgroups = self.subgroups(m, &sel, subgroups)?;
            out.push(metrics);
            selected.push(sel);
        }
        let mut paired = Vec::new();
        for i in 0..models.len() {
            for j in i + 1..models.len() {
                progress(&format!("PPL({})-PPL({})", models[i].name, models[j].name));
                paired.push(self.paired(models, &selected, i, j)?);
            }
        }
        Ok(Evaluation {
            target_rule: self.opts.rule,
            resamples: boot.resamples(),
            seed: boot.seed(),
            level: boot.level(),
            models: out,
            paired,
        })
    }

    fn select(&self, m: &ModelPredictions) -> Result<Selected> {
        let mut scores = ScoreSet::new();
        let mut idx = Vec::new();
        for (i, r) in m.rows.iter().enumerate() {
            if self.opts.rule.selects(r.position, r.previous, r.state) {
                scores.push(&r.worker, r.log_prob, r.weight)?;
                idx.push(i);
            }
        }
        if idx.is_empty() {
            return Err(Error::Empty);
        }
        Ok(Selected { idx, scores })
    }

    fn distribution_metrics(
        &self,
        m: &ModelPredictions,
        sel: &Selected,
        metrics: &mut ModelMetrics,
    ) -> Result<()> {
        for e in &self.opts.events {
            if let Some(s) = e.states().iter().find(|&&s| s >= m.n_states) {
                return Err(Error::InvalidArgument {
                    name: "events",
                    detail: format!(
                        "`{}`: state {s} outside the {} outcomes",
                        e.name(),
                        m.n_states
                    ),
                });
            }
        }
        let n = sel.idx.len();
        let (mut top1, mut top5) = (0.0, 0.0);
        let (mut mass_sum, mut mass_w, mut mass_min, mut below) = (0.0, 0.0, f64::INFINITY, 0.0);
        let mut conf = Vec::with_capacity(n);
        let mut hit = Vec::with_capacity(n);
        let mut wts = Vec::with_capacity(n);
        let mut ev: Vec<(Vec<f64>, Vec<bool>, Vec<f64>)> =
            vec![(Vec::new(), Vec::new(), Vec::new()); self.opts.events.len()];
        for &i in &sel.idx {
            let Some(d) = m.distribution(i) else {
                continue;
            };
            let r = &m.rows[i];
            let total: f64 = d.iter().map(|&q| f64::from(q)).sum();
            mass_sum += r.weight * total;
            mass_w += r.weight;
            mass_min = mass_min.min(total);
            below += if total < 0.99 { r.weight } else { 0.0 };
            let p_obs = d[r.state];
            let above = d.iter().filter(|&&q| q > p_obs).count();
            top1 += if above < 1 { r.weight } else { 0.0 };
            top5 += if above < 5 { r.weight } else { 0.0 };
            let (arg, max) =
                d.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(a, mx), (s, &q)| {
                        if q > mx { (s, q) } else { (a, mx) }
                    });
            let norm = if total > 0.0 { total } else { 1.0 };
            conf.push((f64::from(max) / norm).clamp(0.0, 1.0));
            hit.push(arg == r.state);
            wts.push(r.weight);
            for (e, (p, y, w)) in self.opts.events.iter().zip(ev.iter_mut()) {
                let (q, happened) = match e {
                    Event::Change { .. } => {
                        let Some(prev) = r.previous else { continue };
                        (1.0 - f64::from(d[prev]) / norm, r.state != prev)
                    }
                    Event::Enter { states, .. } => {
                        if r.previous.is_none_or(|p| states.contains(&p)) {
                            continue;
                        }
                        (
                            states.iter().map(|&s| f64::from(d[s])).sum::<f64>() / norm,
                            states.contains(&r.state),
                        )
                    }
                    Event::InStates { states, .. } => (
                        states.iter().map(|&s| f64::from(d[s])).sum::<f64>() / norm,
                        states.contains(&r.state),
                    ),
                };
                p.push(q.clamp(CLAMP, 1.0 - CLAMP));
                y.push(happened);
                w.push(r.weight);
            }
        }
        if mass_w <= 0.0 {
            return Err(Error::Empty);
        }
        metrics.top1_accuracy = Some(top1 / mass_w);
        metrics.top5_accuracy = Some(top5 / mass_w);
        metrics.valid_mass = Some(ValidMass {
            mean: mass_sum / mass_w,
            min: mass_min,
            share_below_0_99: below / mass_w,
        });
        metrics.calibration = Some(Calibration::weighted(&conf, &hit, &wts, self.opts.bins)?);
        for (e, (p, y, w)) in self.opts.events.iter().zip(ev) {
            let total: f64 = w.iter().sum();
            if total <= 0.0 {
                continue;
            }
            let mean =
                |f: &dyn Fn(usize) -> f64| (0..p.len()).map(|i| w[i] * f(i)).sum::<f64>() / total;
            metrics.events.push(EventMetrics {
                name: e.name().to_string(),
                n_targets: p.len(),
                base_rate: mean(&|i| f64::from(u8::from(y[i]))),
                mean_predicted: mean(&|i| p[i]),
                auc: weighted_auc(&p, &y, &w)?,
                binary_perplexity: weighted_binary_perplexity(&p, &y, &w)?,
                ece: Calibration::weighted(&p, &y, &w, self.opts.bins)?.ece,
            });
        }
        Ok(())
    }

    fn subgroups(
        &self,
        m: &ModelPredictions,
        sel: &Selected,
        subgroups: Option<&Subgroups>,
    ) -> Result<BTreeMap<String, Vec<GroupEstimate>>> {
        let mut dims: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(sg) = subgroups {
            for (d, dim) in sg.dims.iter().enumerate() {
                let labels = sel
                    .idx
                    .iter()
                    .map(|&i| sg.value(&m.rows[i].worker, d).to_string())
                    .collect();
                dims.push((dim.clone(), labels));
            }
        }
        if self.opts.decades {
            let labels = sel
                .idx
                .iter()
                .map(|&i| format!("{}s", m.rows[i].year.div_euclid(10) * 10))
                .collect();
            dims.push(("decade".into(), labels));
        }
        let mut out = BTreeMap::new();
        for (dim, labels) in dims {
            let groups: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
            let mut rows = Vec::new();
            for g in groups {
                let sub = sel.scores.subset(|i| labels[i] == g);
                let e = match self.opts.bootstrap.perplexity(&sub) {
                    Ok(e) => e,
                    // A group with zero total weight has no perplexity: leave it out.
                    Err(Error::Empty) => continue,
                    Err(e) => return Err(e),
                };
                rows.push(GroupEstimate {
                    group: g.to_string(),
                    perplexity: e.value,
                    bootstrap_se: e.se,
                    ci_low: e.ci.0,
                    ci_high: e.ci.1,
                    n_targets: sub.n_targets(),
                    n_workers: sub.n_workers(),
                });
            }
            out.insert(dim, rows);
        }
        Ok(out)
    }

    fn paired(
        &self,
        models: &[ModelPredictions],
        selected: &[Selected],
        i: usize,
        j: usize,
    ) -> Result<PairedMetrics> {
        let (ma, mb) = (&models[i], &models[j]);
        let (sa, sb) = (&selected[i], &selected[j]);
        let key = |r: &TargetRow| (r.worker.clone(), r.year);
        let same = sa.idx.len() == sb.idx.len()
            && sa
                .idx
                .iter()
                .zip(&sb.idx)
                .all(|(&x, &y)| key(&ma.rows[x]) == key(&mb.rows[y]));
        let est: Estimate;
        let (n_targets, n_workers);
        if same {
            // Weights of `a` on both sides: pairing compares log-probabilities only.
            let mut b = ScoreSet::new();
            for (&x, &y) in sa.idx.iter().zip(&sb.idx) {
                b.push(&mb.rows[y].worker, mb.rows[y].log_prob, ma.rows[x].weight)?;
            }
            est = self.opts.bootstrap.paired_difference(&sa.scores, &b)?;
            (n_targets, n_workers) = (b.n_targets(), b.n_workers());
        } else {
            let in_b: HashMap<(String, i32), usize> =
                sb.idx.iter().map(|&y| (key(&mb.rows[y]), y)).collect();
            let (mut a, mut b) = (ScoreSet::new(), ScoreSet::new());
            for &x in &sa.idx {
                let ra = &ma.rows[x];
                if let Some(&y) = in_b.get(&key(ra)) {
                    a.push(&ra.worker, ra.log_prob, ra.weight)?;
                    b.push(&ra.worker, mb.rows[y].log_prob, ra.weight)?;
                }
            }
            if a.n_targets() == 0 {
                return Err(Error::Unpaired {
                    index: 0,
                    detail: format!("`{}` and `{}` share no target", ma.name, mb.name),
                });
            }
            est = self.opts.bootstrap.paired_difference(&a, &b)?;
            (n_targets, n_workers) = (a.n_targets(), a.n_workers());
        }
        Ok(PairedMetrics {
            name: format!("PPL({})-PPL({})", ma.name, mb.name),
            a: ma.name.clone(),
            b: mb.name.clone(),
            difference: est.value,
            bootstrap_se: est.se,
            ci_low: est.ci.0,
            ci_high: est.ci.1,
            n_targets,
            n_workers,
        })
    }
}

fn opt(x: Option<f64>) -> String {
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
