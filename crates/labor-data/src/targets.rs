//! Which worker-years count as prediction targets: one rule for rendering careers as text
//! (`labor-template`), for predicting and for evaluating (`labor-eval`).
//!
//! A target is record `position` of its worker, whose observed state is `state` and whose
//! previous record's state is `previous` (`None` for the first record, or where it is unknown).
//!
//! ```
//! use labor_data::TargetRule;
//! let rule: TargetRule = "changes".parse().unwrap();
//! assert!(rule.selects(3, Some(7), 8));
//! assert!(!rule.selects(3, Some(8), 8));
//! assert!(!TargetRule::ExcludeFirst.selects(0, None, 8));
//! assert!(TargetRule::All.selects(0, None, 8));
//! assert!(TargetRule::Stays.selects(3, Some(8), 8));
//! assert_eq!(TargetRule::ExcludeFirst.to_string(), "exclude-first");
//! ```

use serde::Serialize;

use crate::error::{Error, Result};
use crate::panel::Worker;

/// Which worker-years are targets.
///
/// The default is [`TargetRule::All`]: every observed worker-year, the first included. That is
/// what the paper counts (its test sets' "number of transitions" equal the test worker-years,
/// e.g. 61,772 of PSID's ≈ 20% × 313,622) and what CAREER's perplexity script sums over, so
/// numbers stay comparable; the first year is predicted from the covariates alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TargetRule {
    /// Every worker-year, the first included.
    #[default]
    All,
    /// Every worker-year but the first of each worker.
    ExcludeFirst,
    /// Only worker-years whose state differs from the previous record's.
    Changes,
    /// Only worker-years whose state repeats the previous record's (the complement of
    /// `Changes` among worker-years with a previous record): together the two split a model's
    /// loss into staying and moving.
    Stays,
}

impl TargetRule {
    /// Every rule, in the order of their spellings' list.
    pub const ALL: [TargetRule; 4] = [
        TargetRule::All,
        TargetRule::ExcludeFirst,
        TargetRule::Changes,
        TargetRule::Stays,
    ];

    /// `true` if record `position` (0 = the worker's first) with state `state`, after a record in
    /// state `previous`, is a target. Under [`TargetRule::Changes`] and [`TargetRule::Stays`] a
    /// record whose previous state is unknown (`None` at `position > 0`) is not a target.
    pub fn selects(self, position: u32, previous: Option<usize>, state: usize) -> bool {
        match self {
            TargetRule::All => true,
            TargetRule::ExcludeFirst => position > 0,
            TargetRule::Changes => position > 0 && previous.is_some_and(|p| p != state),
            TargetRule::Stays => position > 0 && previous == Some(state),
        }
    }

    /// `true` if record `k` of `worker` is a target (`false` past its last record).
    pub fn selects_record(self, worker: &Worker, k: usize) -> bool {
        let Some(record) = worker.records.get(k) else {
            return false;
        };
        let previous = k.checked_sub(1).map(|j| worker.records[j].state.index());
        self.selects(k as u32, previous, record.state.index())
    }

    /// The command-line spelling: `all`, `exclude-first`, `changes` or `stays`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetRule::All => "all",
            TargetRule::ExcludeFirst => "exclude-first",
            TargetRule::Changes => "changes",
            TargetRule::Stays => "stays",
        }
    }
}

impl std::fmt::Display for TargetRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TargetRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        TargetRule::ALL
            .into_iter()
            .find(|r| r.as_str() == key)
            .ok_or_else(|| Error::InvalidArgument {
                name: "targets",
                detail: format!("unknown rule `{key}` (all, exclude-first, changes, stays)"),
            })
    }
}
