//! Integration tests of labor-eval.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bootstrap;
mod curves;
mod evaluate;
mod metrics;
#[cfg(feature = "plots")]
mod plots;
mod predictions;
mod report;
