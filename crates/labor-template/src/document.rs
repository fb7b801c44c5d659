//! Rendered texts and the spans of their targets.

use labor_data::{StateId, Worker};
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

/// Which worker-years are prediction targets.
///
/// The default is [`TargetRule::All`]: every observed worker-year, the first included. That is
/// what the paper counts (its test sets' "number of transitions" equal the test worker-years,
/// e.g. 61,772 of PSID's ≈ 20% × 313,622) and what CAREER's perplexity script sums over, so
/// numbers stay comparable; the first year is predicted from the covariates alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetRule {
    /// Every worker-year, the first included.
    #[default]
    All,
    /// Every worker-year but the first of each worker.
    ExcludeFirst,
    /// Only worker-years whose state differs from the previous record's.
    Changes,
}

impl TargetRule {
    /// `true` if record `k` of `worker` is a target.
    pub fn selects(self, worker: &Worker, k: usize) -> bool {
        match self {
            TargetRule::All => k < worker.records.len(),
            TargetRule::ExcludeFirst => k > 0 && k < worker.records.len(),
            TargetRule::Changes => {
                k > 0
                    && k < worker.records.len()
                    && worker.records[k].state != worker.records[k - 1].state
            }
        }
    }
}

impl std::str::FromStr for TargetRule {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "all" => Ok(TargetRule::All),
            "exclude-first" => Ok(TargetRule::ExcludeFirst),
            "changes" => Ok(TargetRule::Changes),
            other => Err(crate::Error::InvalidOption {
                name: "targets",
                detail: format!("unknown rule `{other}` (all, exclude-first, changes)"),
            }),
        }
    }
}
