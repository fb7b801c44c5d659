//! Integration tests of labor-template.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

mod properties;
mod snapshots;
