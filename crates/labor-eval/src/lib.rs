#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bootstrap;
mod error;
mod metrics;
mod report;
mod scores;

pub use bootstrap::{Bootstrap, Estimate};
pub use error::{Error, Result};
pub use metrics::{Calibration, CalibrationBin, auc, binary_perplexity, top_k_accuracy};
pub use report::{ModelResult, PairedResult, Report};
pub use scores::ScoreSet;
