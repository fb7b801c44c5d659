//! One interface for every model of careers: the language-model scorer, CAREER and the
//! econometric baselines all predict the next state of a worker's career the same way, so the
//! evaluation treats them alike.

use labor_data::{CareerLaw, Panel, Prediction, Predictions, Worker};

use crate::error::Result;

/// A model's prediction for one worker-year.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPrediction {
    /// Natural log of the probability given to the observed state.
    pub log_prob: f64,
    /// The probability of every outcome of the taxonomy, indexed by state id (when asked for).
    pub probs: Option<Vec<f32>>,
}

/// A model of the next state of a career.
///
/// For record `k` of a worker the model conditions on the records before `k`, the worker's
/// static attributes, and the year and education of record `k` itself (as CAREER does: the
/// covariates of the step being predicted are known).
pub trait Predictor {
    /// Short name used in reports (`empirical`, `career`, `llm`, ...).
    fn name(&self) -> &str;

    /// One prediction per record of `worker`, in order; with `full_distribution`, each carries
    /// the probability of every outcome.
    ///
    /// # Errors
    /// Model-specific: a state outside the model's vocabulary, a career longer than its context.
    fn predict_worker(
        &self,
        worker: &Worker,
        full_distribution: bool,
    ) -> Result<Vec<StepPrediction>>;
}

impl<P: Predictor + ?Sized> Predictor for &P {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn predict_worker(
        &self,
        worker: &Worker,
        full_distribution: bool,
    ) -> Result<Vec<StepPrediction>> {
        (**self).predict_worker(worker, full_distribution)
    }
}

/// Runs `predictor` over every worker of `panel`, calling `progress` with the number of
/// worker-years done after each worker.
///
/// # Errors
/// The predictor's errors, or a prediction that is not a log-probability.
pub fn predict_panel(
    predictor: &dyn Predictor,
    panel: &Panel,
    full_distribution: bool,
    progress: impl FnMut(usize),
) -> Result<Predictions> {
    predict_workers(
        predictor,
        panel.taxonomy(),
        panel.workers(),
        full_distribution,
        progress,
    )
}

/// [`predict_panel`] over a slice of a panel's workers (a shard).
pub(crate) fn predict_workers(
    predictor: &dyn Predictor,
    taxonomy: &std::sync::Arc<labor_data::Taxonomy>,
    workers: &[Worker],
    full_distribution: bool,
    mut progress: impl FnMut(usize),
) -> Result<Predictions> {
    let mut out = Predictions::new(predictor.name(), std::sync::Arc::clone(taxonomy));
    let mut done = 0;
    for w in workers {
        let steps = predictor.predict_worker(w, full_distribution)?;
        for (k, (r, s)) in w.records.iter().zip(steps).enumerate() {
            out.push(Prediction {
                worker_id: w.id.clone(),
                year: r.year,
                position: k as u32,
                state: r.state,
                previous: k.checked_sub(1).map(|j| w.records[j].state),
                log_prob: s.log_prob,
                weight: w.weight,
                probs: s.probs,
            })?;
        }
        done += w.records.len();
        progress(done);
    }
    Ok(out)
}

/// The true career law of a synthetic panel ([`CareerLaw`]) as a [`Predictor`] named `truth`:
/// the true probability of every observed state, whose perplexity is the floor no model can beat
/// on average.
#[derive(Debug, Clone, Copy)]
pub struct TruthPredictor<'a> {
    law: &'a CareerLaw,
}

impl<'a> TruthPredictor<'a> {
    /// The predictor of `law`.
    pub fn new(law: &'a CareerLaw) -> Self {
        Self { law }
    }
}

impl Predictor for TruthPredictor<'_> {
    fn name(&self) -> &str {
        "truth"
    }

    fn predict_worker(
        &self,
        worker: &Worker,
        full_distribution: bool,
    ) -> Result<Vec<StepPrediction>> {
        Ok((0..worker.records.len())
            .map(|k| StepPrediction {
                log_prob: self.law.log_prob(worker, k),
                probs: full_distribution.then(|| {
                    self.law
                        .distribution(worker, k)
                        .into_iter()
                        .map(|p| p as f32)
                        .collect()
                }),
            })
            .collect())
    }
}

/// A language model as a [`Predictor`]: each worker is rendered with a template (every
/// worker-year a target) and scored by the chain rule; the full distribution scores the
/// continuation of every outcome of the taxonomy with one trie pass per target.
///
/// The distribution it reports is the model's probability of each title's text, *not*
/// renormalised: it sums to the mass the model puts on valid titles (at most 1); after
/// [`LlmPredictor::constrained`], it is that of decoding constrained to the titles, which sums
/// to one.
pub struct LlmPredictor<'a> {
    name: String,
    scorer: crate::Scorer<'a>,
    template: Box<dyn labor_template::Template>,
    continuations: Vec<String>,
}

impl std::fmt::Debug for LlmPredictor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmPredictor")
            .field("name", &self.name)
            .field("template", &self.template.name())
            .finish_non_exhaustive()
    }
}

impl<'a> LlmPredictor<'a> {
    /// Scores with `scorer` the texts `template` renders; the outcomes are those of `taxonomy`.
    ///
    /// # Errors
    /// [`crate::Error::Template`] when the template cannot write an outcome.
    pub fn new(
        name: impl Into<String>,
        scorer: crate::Scorer<'a>,
        template: Box<dyn labor_template::Template>,
        taxonomy: &labor_data::Taxonomy,
    ) -> Result<Self> {
        let continuations = template.continuations(taxonomy)?;
        Ok(Self {
            name: name.into(),
            scorer,
            template,
            continuations,
        })
    }

    /// Scores as decoding constrained to the taxonomy's titles
    /// ([`crate::Scorer::with_constrained_titles`]).
    ///
    /// # Errors
    /// As [`crate::Scorer::with_constrained_titles`].
    pub fn constrained(mut self) -> Result<Self> {
        self.scorer = self.scorer.with_constrained_titles(&self.continuations)?;
        Ok(self)
    }

    /// The continuation of every outcome, indexed by state id.
    pub fn continuations(&self) -> &[String] {
        &self.continuations
    }
}

impl Predictor for LlmPredictor<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn predict_worker(
        &self,
        worker: &Worker,
        full_distribution: bool,
    ) -> Result<Vec<StepPrediction>> {
        let rendered = self.template.render(worker)?;
        let mut out: Vec<Option<StepPrediction>> = vec![None; worker.records.len()];
        for doc in rendered.documents() {
            let (scores, dists) = if full_distribution {
                let d = self
                    .scorer
                    .document_distributions(doc, &self.continuations)?;
                let s = doc
                    .targets
                    .iter()
                    .zip(&d)
                    .map(|(t, d)| d.log_probs[usize::from(t.state_id.0)])
                    .collect();
                (s, Some(d))
            } else {
                (self.scorer.score_document(doc)?, None)
            };
            for (k, (t, s)) in doc.targets.iter().zip(scores).enumerate() {
                let probs = dists.as_ref().map(|d| {
                    d[k].log_probs
                        .iter()
                        .map(|l| l.exp() as f32)
                        .collect::<Vec<f32>>()
                });
                if let Some(slot) = out.get_mut(t.record) {
                    *slot = Some(StepPrediction { log_prob: s, probs });
                }
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(k, p)| {
                p.ok_or_else(|| crate::Error::UnsupportedConfig {
                    field: "targets",
                    detail: format!(
                        "worker `{}`: record {k} is not a target of the template; a predictor \
                         scores every worker-year (use the `all` target rule)",
                        worker.id
                    ),
                })
            })
            .collect()
    }
}
