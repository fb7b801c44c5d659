//! The error type of `labor-template`.

/// Everything that can go wrong while rendering careers as text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A worker without any observed year has nothing to render.
    #[error("worker `{worker_id}` has no records to render")]
    EmptyWorker {
        /// The worker.
        worker_id: String,
    },
    /// A record whose state is not an outcome of the template's taxonomy.
    #[error("worker `{worker_id}`, year {year}: state id {state} is not in taxonomy `{taxonomy}`")]
    UnknownState {
        /// The worker.
        worker_id: String,
        /// The year of the record.
        year: i32,
        /// The offending state id.
        state: u16,
        /// The taxonomy's name.
        taxonomy: String,
    },
    /// A record index past the worker's records.
    #[error("worker `{worker_id}` has {len} records, record {index} was asked for")]
    RecordOutOfRange {
        /// The worker.
        worker_id: String,
        /// The index asked for.
        index: usize,
        /// The number of records.
        len: usize,
    },
    /// A pool of example or reference workers that is empty once the worker is excluded.
    #[error("the {what} has no usable worker")]
    EmptyPool {
        /// Which pool (in-context examples, randomisation).
        what: &'static str,
    },
    /// An option of the builder that is not valid.
    #[error("invalid template option {name}: {detail}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
