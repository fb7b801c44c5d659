//! Evaluation of several models at once; see [`Evaluator`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::bootstrap::{Bootstrap, Estimate};
use crate::error::{Error, Result};
use crate::metrics::{Calibration, weighted_auc, weighted_binary_perplexity};
use crate::scores::ScoreSet;
use labor_data::TargetRule;

mod inputs;
mod results;

pub use inputs::{Event, ModelPredictions, Subgroups, TargetRow};
pub use results::Evaluation;

use crate::report::{EventMetrics, GroupEstimate, ModelMetrics, PairedMetrics, ValidMass};

/// Smallest and largest binary probability used in binary perplexity and calibration.
const CLAMP: f64 = 1e-7;

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
            let mut metrics = ModelMetrics::from_estimate(&m.name, &e, &sel.scores)?;
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
                rows.push(GroupEstimate::from_estimate(g, &e, &sub));
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
        // The estimate, and the scores of the common targets (whose counts it is over).
        let (est, common): (Estimate, ScoreSet);
        if same {
            // Weights of `a` on both sides: pairing compares log-probabilities only.
            let mut b = ScoreSet::new();
            for (&x, &y) in sa.idx.iter().zip(&sb.idx) {
                b.push(&mb.rows[y].worker, mb.rows[y].log_prob, ma.rows[x].weight)?;
            }
            est = self.opts.bootstrap.paired_difference(&sa.scores, &b)?;
            common = b;
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
            common = a;
        }
        Ok(PairedMetrics::from_estimate(
            &ma.name, &mb.name, &est, &common,
        ))
    }
}
