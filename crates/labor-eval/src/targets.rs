//! Which worker-years count as targets.
//!
//! The three rules of `labor_template::TargetRule` (and the same spellings on the command
//! line), and their complement `stays`, stated on plain numbers so that this crate needs no panel type: a target is record
//! `position` of its worker, whose observed state is `state` and whose previous record's state
//! is `previous` (`None` for the first record).
//!
//! ```
//! use labor_eval::TargetRule;
//! let rule: TargetRule = "changes".parse().unwrap();
//! assert!(rule.selects(3, Some(7), 8));
//! assert!(!rule.selects(3, Some(8), 8));
//! assert!(!TargetRule::ExcludeFirst.selects(0, None, 8));
//! assert!(TargetRule::All.selects(0, None, 8));
//! assert!(TargetRule::Stays.selects(3, Some(8), 8));
//! ```

use serde::Serialize;

use crate::error::{Error, Result};

/// Which worker-years are targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TargetRule {
    /// Every worker-year, the first included (what the paper and CAREER count).
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
    /// `true` if record `position` (0 = the worker's first) with state `state`, after a record in
    /// state `previous`, is a target. Under [`TargetRule::Changes`] a record whose previous state
    /// is unknown (`None` at `position > 0`) is not a target.
    pub fn selects(self, position: u32, previous: Option<usize>, state: usize) -> bool {
        match self {
            TargetRule::All => true,
            TargetRule::ExcludeFirst => position > 0,
            TargetRule::Changes => position > 0 && previous.is_some_and(|p| p != state),
            TargetRule::Stays => position > 0 && previous == Some(state),
        }
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
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "all" => Ok(TargetRule::All),
            "exclude-first" => Ok(TargetRule::ExcludeFirst),
            "changes" => Ok(TargetRule::Changes),
            "stays" => Ok(TargetRule::Stays),
            other => Err(Error::InvalidArgument {
                name: "targets",
                detail: format!("unknown rule `{other}` (all, exclude-first, changes, stays)"),
            }),
        }
    }
}
