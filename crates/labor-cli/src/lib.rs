//! The library side of the `labor` command line: subcommands whose core other programs (the
//! quickstart, the example programs) call with in-memory data.
//!
//! - [`eval`]: `labor eval` (the evaluation itself is [`labor_eval::evaluate_predictions`]).

pub mod eval;
