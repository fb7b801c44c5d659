//! The error type of `labor-eval`.

/// Everything that can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A log-probability that is NaN, infinite or positive.
    #[error(
        "target {index} (worker `{worker}`): log-probability {value} is not a finite number <= 0"
    )]
    InvalidLogProb {
        /// Position of the target.
        index: usize,
        /// Its worker.
        worker: String,
        /// The value.
        value: f64,
    },
    /// A weight that is negative or not finite.
    #[error("target {index} (worker `{worker}`): weight {value} is not a finite number >= 0")]
    InvalidWeight {
        /// Position of the target.
        index: usize,
        /// Its worker.
        worker: String,
        /// The value.
        value: f64,
    },
    /// Nothing to evaluate (no target, or all weights zero).
    #[error("no targets with positive weight")]
    Empty,
    /// Two score sets that do not cover the same targets, so they cannot be paired.
    #[error("score sets differ at target {index}: {detail}")]
    Unpaired {
        /// The first target that differs.
        index: usize,
        /// How.
        detail: String,
    },
    /// Inputs of different lengths.
    #[error("{what}: {left} values against {right}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Length of the first.
        left: usize,
        /// Length of the second.
        right: usize,
    },
    /// An option out of range.
    #[error("invalid {name}: {detail}")]
    InvalidArgument {
        /// The option.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A text input (a loss-curve CSV) that cannot be read.
    #[error("{what}, line {line}: {detail}")]
    Malformed {
        /// Which input.
        what: String,
        /// 1-based line number (0 for the file as a whole).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// Predictions over another taxonomy than the first model's.
    #[error("{what} uses taxonomy `{theirs}`, `{baseline}` uses `{ours}`")]
    TaxonomyMismatch {
        /// The model (or the panel) that differs.
        what: String,
        /// Its taxonomy.
        theirs: String,
        /// The first model's taxonomy.
        ours: String,
        /// The first model.
        baseline: String,
    },
    /// A model with no prediction for a worker of the panel.
    #[error("model `{model}` has no prediction for a worker of the panel")]
    NoTargets {
        /// The model.
        model: String,
    },
    /// A predictions row that contradicts the panel.
    #[error("model `{model}`: worker `{worker}` year {year}: {detail}")]
    Contradiction {
        /// The model.
        model: String,
        /// The worker.
        worker: String,
        /// The year of the row.
        year: i32,
        /// What differs.
        detail: String,
    },
    /// A worker without a survey weight when targets are weighted by survey weights.
    #[error("model `{model}`: worker `{worker}` has no survey weight (use weights `none`)")]
    MissingWeight {
        /// The model.
        model: String,
        /// The worker.
        worker: String,
    },
    /// An invalid prediction of one model.
    #[error("model `{model}`")]
    Model {
        /// The model.
        model: String,
        /// What is wrong with its predictions.
        #[source]
        source: Box<Error>,
    },
    /// Writing the report failed (the error names the file).
    #[cfg(feature = "data")]
    #[error(transparent)]
    Write {
        /// The cause.
        #[from]
        source: labor_data::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Drawing or encoding a figure failed.
    #[error("plot `{figure}`: {detail}")]
    Plot {
        /// Which figure.
        figure: String,
        /// What failed.
        detail: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
