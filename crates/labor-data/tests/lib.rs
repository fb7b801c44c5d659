//! Integration tests of labor-data: one binary, one module per area.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

mod describe;
mod ingest;
mod io;
mod predictions;
mod split;
mod synth;
mod taxonomy;

use std::path::PathBuf;

/// `fixtures/` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `../shared/reference/` next to the workspace, when this checkout has it.
pub fn shared_reference() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference");
    p.is_dir().then_some(p)
}
