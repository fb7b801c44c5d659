//! The errors of a pipeline: those of the layer that failed.

use std::path::PathBuf;

/// A pipeline's error, kept with the layer's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or drawing a panel.
    #[error(transparent)]
    Data(#[from] labor_data::Error),
    /// Rendering careers as text.
    #[error(transparent)]
    Template(#[from] labor_template::Error),
    /// Training or running a model.
    #[error(transparent)]
    Model(#[from] labor_model::Error),
    /// Evaluating predictions.
    #[error(transparent)]
    Eval(#[from] labor_eval::Error),
    /// A file or directory of the pipeline's own.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An option out of its range.
    #[error("invalid option `{name}`: {detail}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
