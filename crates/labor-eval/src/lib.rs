#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bootstrap;
mod curves;
mod error;
mod evaluate;
mod metrics;
#[cfg(feature = "plots")]
pub mod plots;
#[cfg(feature = "data")]
mod predictions;
mod report;
mod scores;

pub use bootstrap::{Bootstrap, Estimate, MAX_RESAMPLES};
pub use curves::{LossCurve, LossPoint};
pub use error::{Error, Result};
pub use evaluate::{
    Evaluation, Evaluator, EvaluatorBuilder, Event, ModelPredictions, Subgroups, TargetRow,
};
pub use labor_data::TargetRule;
pub use metrics::{
    Calibration, CalibrationBin, auc, binary_perplexity, top_k_accuracy, weighted_auc,
    weighted_binary_perplexity,
};
#[cfg(feature = "data")]
pub use predictions::{
    EvalOptions, EvalOutput, InputSummary, Weights, evaluate_predictions, panel_subgroups,
    standard_events,
};
pub use report::{EventMetrics, GroupEstimate, ModelMetrics, PairedMetrics, Report, ValidMass};
pub use scores::ScoreSet;
