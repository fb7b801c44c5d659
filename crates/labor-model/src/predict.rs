//! One interface for every model of careers: the language-model scorer, CAREER and the
//! econometric baselines all predict the next state of a worker's career the same way, so the
//! evaluation treats them alike.

use labor_data::{Panel, Prediction, Predictions, Worker};

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

/// Runs `predictor` over every worker of `panel`, calling `progress` with the number of
/// worker-years done after each worker.
///
/// # Errors
/// The predictor's errors, or a prediction that is not a log-probability.
pub fn predict_panel(
    predictor: &dyn Predictor,
    panel: &Panel,
    full_distribution: bool,
    mut progress: impl FnMut(usize),
) -> Result<Predictions> {
    let mut out = Predictions::new(predictor.name(), std::sync::Arc::clone(panel.taxonomy()));
    let mut done = 0;
    for w in panel.workers() {
        let steps = predictor.predict_worker(w, full_distribution)?;
        for (k, (r, s)) in w.records.iter().zip(steps).enumerate() {
            out.push(Prediction {
                worker_id: w.id.clone(),
                year: r.year,
                position: k as u32,
                state: r.state,
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
