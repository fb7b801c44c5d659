//! Integration tests of labor-model.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod career;
mod config;
mod finetune;
mod gguf;
mod golden;
mod hf;
mod model;
mod score;
mod tokenize;
#[cfg(feature = "wgpu")]
mod wgpu;

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
