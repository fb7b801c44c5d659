//! The error type of `labor-data`.

use std::fmt;
use std::path::PathBuf;

/// Where in an input a problem was found: file, 1-based line (or row), and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or a name such as `<memory>`).
    pub file: String,
    /// 1-based line of a text file, or 1-based row of a Parquet file; 0 when unknown.
    pub line: u64,
    /// The column (CSV header, Parquet column, survey variable); empty when the whole row is meant.
    pub column: String,
}

impl Location {
    /// A location in `file` at `line`, `column`.
    pub fn new(file: impl Into<String>, line: u64, column: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line,
            column: column.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.column.is_empty() {
            write!(f, ": column `{}`", self.column)?;
        }
        Ok(())
    }
}

/// Why an input row (or person-year) was rejected; the key of the ingestion report's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Issue {
    /// The row could not be parsed (wrong number of fields, bad encoding, bad number).
    Malformed,
    /// An occupation code that the crosswalk of its scheme does not know.
    UnknownOccupation,
    /// A value that the mapping file does not map onto the canonical vocabulary.
    UnmappedValue,
    /// A year outside the configured range.
    YearOutOfRange,
    /// The same worker and year twice.
    DuplicateWorkerYear,
    /// A required value is empty.
    MissingValue,
    /// A worker whose static attributes (gender, birth year, ...) differ between rows.
    InconsistentWorker,
}

impl Issue {
    /// The snake-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Issue::Malformed => "malformed",
            Issue::UnknownOccupation => "unknown_occupation",
            Issue::UnmappedValue => "unmapped_value",
            Issue::YearOutOfRange => "year_out_of_range",
            Issue::DuplicateWorkerYear => "duplicate_worker_year",
            Issue::MissingValue => "missing_value",
            Issue::InconsistentWorker => "inconsistent_worker",
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in `labor-data`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A row that cannot be parsed.
    #[error("{location}: malformed row: {detail}")]
    Malformed {
        /// Where.
        location: Location,
        /// What the parser said.
        detail: String,
    },
    /// An occupation code unknown to its scheme's crosswalk.
    #[error("{location}: unknown {scheme} occupation code `{code}`")]
    UnknownOccupation {
        /// Where.
        location: Location,
        /// The code as written in the file.
        code: String,
        /// The scheme the code was read as.
        scheme: String,
    },
    /// A value the mapping does not cover.
    #[error("{location}: value `{value}` is not mapped onto a {vocabulary} category")]
    UnmappedValue {
        /// Where.
        location: Location,
        /// The value as written in the file.
        value: String,
        /// Which vocabulary (gender, education, ...).
        vocabulary: &'static str,
    },
    /// A year outside `min..=max`.
    #[error("{location}: year {year} is outside {min}..={max}")]
    YearOutOfRange {
        /// Where.
        location: Location,
        /// The year read.
        year: i64,
        /// Lowest accepted year.
        min: i32,
        /// Highest accepted year.
        max: i32,
    },
    /// The same worker-year twice.
    #[error("{location}: worker `{worker_id}` already has a record for {year}")]
    DuplicateWorkerYear {
        /// Where the second record is.
        location: Location,
        /// The worker.
        worker_id: String,
        /// The year.
        year: i32,
    },
    /// A required value is empty.
    #[error("{location}: required value is missing")]
    MissingValue {
        /// Where.
        location: Location,
    },
    /// Static attributes that differ between rows of one worker.
    #[error(
        "{location}: worker `{worker_id}` has {attribute} `{found}` here but `{expected}` before"
    )]
    InconsistentWorker {
        /// Where the conflicting row is.
        location: Location,
        /// The worker.
        worker_id: String,
        /// Which attribute.
        attribute: &'static str,
        /// The earlier value.
        expected: String,
        /// The conflicting value.
        found: String,
    },
    /// A column named in the mapping is not in the file.
    #[error("{file}: column `{column}` named in the mapping is not in the file")]
    MissingColumn {
        /// The data file.
        file: String,
        /// The column.
        column: String,
    },
    /// A column of the wrong type in an Arrow/Parquet input.
    #[error("{file}: column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        /// The data file.
        file: String,
        /// The column.
        column: String,
        /// The type expected.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// A mapping or variable-map file that is not valid.
    #[error("{file}: invalid mapping: {detail}")]
    Mapping {
        /// The mapping file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// A taxonomy or crosswalk table that is not valid.
    #[error("{location}: invalid taxonomy table: {detail}")]
    Taxonomy {
        /// Where.
        location: Location,
        /// What is wrong.
        detail: String,
    },
    /// A code that the taxonomy does not contain.
    #[error("taxonomy `{taxonomy}` has no outcome with code `{code}`")]
    UnknownCode {
        /// The taxonomy.
        taxonomy: String,
        /// The code looked up.
        code: String,
    },
    /// A state id past the end of the taxonomy.
    #[error("state id {id} is outside taxonomy `{taxonomy}` ({len} outcomes)")]
    StateOutOfRange {
        /// The id.
        id: u16,
        /// The taxonomy.
        taxonomy: String,
        /// Its number of outcomes.
        len: usize,
    },
    /// A worker that breaks a panel invariant (no records, unsorted or repeated years).
    #[error("worker `{worker_id}`: {detail}")]
    InvalidWorker {
        /// The worker.
        worker_id: String,
        /// What is wrong.
        detail: String,
    },
    /// An argument or configuration value that is not valid.
    #[error("invalid {name}: {detail}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An output path that names one of the command's inputs.
    #[error("the output {output} is the input {input}; write to another file")]
    OutputIsInput {
        /// The output as given.
        output: PathBuf,
        /// The input it names.
        input: PathBuf,
    },
    /// Parquet failed.
    #[error("{path}: parquet error")]
    Parquet {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow failed.
    #[error("arrow error")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// JSON failed.
    #[error("{location}: invalid JSON")]
    Json {
        /// Where.
        location: Location,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The report category of a row-level problem, or `None` for errors that are not about one row.
    pub fn issue(&self) -> Option<Issue> {
        Some(match self {
            Error::Malformed { .. } => Issue::Malformed,
            Error::UnknownOccupation { .. } => Issue::UnknownOccupation,
            Error::UnmappedValue { .. } => Issue::UnmappedValue,
            Error::YearOutOfRange { .. } => Issue::YearOutOfRange,
            Error::DuplicateWorkerYear { .. } => Issue::DuplicateWorkerYear,
            Error::MissingValue { .. } => Issue::MissingValue,
            Error::InconsistentWorker { .. } => Issue::InconsistentWorker,
            _ => return None,
        })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of a caught panic (`std::panic::catch_unwind`'s payload), for readers that run
/// a third-party parser which may panic on a corrupt file; empty if the payload is not text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
