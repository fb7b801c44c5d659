//! Rendered texts and the spans of their targets.

use labor_data::StateId;
use serde::{Deserialize, Serialize};

/// One prediction target inside a rendered text: the prompt is `text[..prompt_end]`, the
/// continuation that names the outcome is `text[continuation_start..continuation_end]` (a
/// leading space, the title, the terminator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Index of the record in the worker's records.
    pub record: usize,
    /// The year predicted.
    pub year: i32,
    /// The observed state.
    pub state_id: StateId,
    /// The state of the record before (`None` for the worker's first record). Absent from the
    /// JSON of a first record, and from files written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state_id: Option<StateId>,
    /// The title as rendered (English, or `job_NNN` with numbered titles).
    pub title: String,
    /// Byte offset where the prompt ends.
    pub prompt_end: usize,
    /// Byte offset where the continuation starts (equal to `prompt_end`).
    pub continuation_start: usize,
    /// Byte offset where the continuation ends.
    pub continuation_end: usize,
}

/// A rendered text with its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The worker rendered.
    pub worker_id: String,
    /// The text.
    pub text: String,
    /// Its targets, in order.
    pub targets: Vec<Target>,
}

impl Document {
    /// The prompt of `target`: the text that conditions on the history.
    pub fn prompt(&self, target: &Target) -> &str {
        &self.text[..target.prompt_end]
    }

    /// The continuation of `target`: `" {title}{terminator}"`.
    pub fn continuation(&self, target: &Target) -> &str {
        &self.text[target.continuation_start..target.continuation_end]
    }
}

/// How a template lays its targets out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One text per worker; every target's prompt is a prefix of it, so one forward pass over
    /// the text scores all targets.
    Shared,
    /// One text per target (its prompt differs from target to target, e.g. in-context examples
    /// drawn anew): build and score one prompt per target.
    PerTarget,
}

/// The result of rendering one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// [`Layout::Shared`]: one document holding every target.
    Shared(Document),
    /// [`Layout::PerTarget`]: one document per target, each with exactly one target.
    PerTarget(Vec<Document>),
}

impl Rendered {
    /// The documents (one for a shared layout).
    pub fn documents(&self) -> &[Document] {
        match self {
            Rendered::Shared(d) => std::slice::from_ref(d),
            Rendered::PerTarget(v) => v,
        }
    }

    /// The documents, consuming the value.
    pub fn into_documents(self) -> Vec<Document> {
        match self {
            Rendered::Shared(d) => vec![d],
            Rendered::PerTarget(v) => v,
        }
    }

    /// Number of targets over all documents.
    pub fn n_targets(&self) -> usize {
        self.documents().iter().map(|d| d.targets.len()).sum()
    }
}
