//! Integration tests of labor-model.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod career;
mod config;
mod finetune;
mod gguf;
mod golden;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod gpu;
mod hf;
mod model;
mod score;
mod spm;
mod tokenize;

use std::path::PathBuf;

/// `fixtures/` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `../shared/reference/` next to the workspace (or the folder `LABOR_SHARED_REFERENCE` names,
/// for checkouts elsewhere, e.g. git worktrees), when present.
pub fn shared_reference() -> Option<PathBuf> {
    let p = std::env::var_os("LABOR_SHARED_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference")
        });
    p.is_dir().then_some(p)
}
