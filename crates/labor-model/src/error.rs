//! The error type of `labor-model`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `config.json` that is not valid JSON or lacks a field.
    #[error("{path}: invalid model config")]
    ConfigJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration this crate cannot run (an unknown RoPE scaling, inconsistent sizes).
    #[error("unsupported model configuration: {field}: {detail}")]
    UnsupportedConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
