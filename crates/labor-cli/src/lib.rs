//! The library side of the `labor` command line: subcommands whose core other programs (the
//! quickstart, the example programs) call with in-memory data.
//!
//! - [`eval`]: `labor eval`, and [`eval::evaluate`] for predictions already in memory.

pub mod eval;
