//! Helpers shared by the end-to-end tests of the `labor` binary.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `labor` binary under test.
pub fn labor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labor"))
}

/// The workspace's `fixtures/` directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `labor synth --preset PRESET --workers N --seed SEED --out OUT`.
pub fn synth(preset: &str, workers: usize, seed: u64, out: &std::path::Path) {
    ok(labor()
        .args(["synth", "--preset", preset, "--workers"])
        .arg(workers.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(out));
}

/// Runs a command that must succeed (else the test fails with its stdout and stderr).
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("labor runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail without panicking, and returns its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("labor runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
