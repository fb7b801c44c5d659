//! Nothing lost, nothing silently wrong: outputs that name an input are refused before anything
//! is written, multi-file outputs are replaced as a set, a new training run does not overwrite a
//! model unless told to, and degenerate inputs are named rather than papered over.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{fails, fixtures, labor, ok, synth};

/// `labor train --kind empirical` on one panel for training and validation.
fn train_empirical(panel: &Path, out: &Path) {
    ok(labor()
        .args(["train", "--kind", "empirical", "--train"])
        .arg(panel)
        .arg("--valid")
        .arg(panel)
        .arg("--out")
        .arg(out));
}

/// `labor predict --model MODEL --panel PANEL --out OUT`.
fn predict(model: &Path, panel: &Path, out: &Path) -> Command {
    let mut c = labor();
    c.args(["predict", "--model"])
        .arg(model)
        .arg("--panel")
        .arg(panel)
        .arg("--out")
        .arg(out);
    c
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // ingest --out onto the survey file (through another spelling of its path).
    let csv = d.join("survey.csv");
    std::fs::copy(fixtures().join("long/panel.csv"), &csv).unwrap();
    let before = std::fs::read(&csv).unwrap();
    let err = fails(
        labor()
            .args([
                "ingest",
                "--format",
                "long",
                "--on-error",
                "drop",
                "--input",
            ])
            .arg(&csv)
            .arg("--mapping")
            .arg(fixtures().join("long/mapping.toml"))
            .arg("--out")
            .arg(d.join(".").join("survey.csv")),
    );
    assert!(err.contains("is the input"), "{err}");
    assert_eq!(std::fs::read(&csv).unwrap(), before);

    // render, predict and sample onto the panel.
    let panel = d.join("panel.parquet");
    synth("nlsy79", 40, 3, &panel);
    let before = std::fs::read(&panel).unwrap();
    let err = fails(
        labor()
            .args(["render", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&panel),
    );
    assert!(err.contains("is the input"), "{err}");
    let err = fails(
        labor()
            .args(["sample", "--workers", "10", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&panel),
    );
    assert!(err.contains("is the input"), "{err}");
    train_empirical(&panel, &d.join("emp"));
    let err = fails(&mut predict(&d.join("emp"), &panel, &panel));
    assert!(err.contains("is the input"), "{err}");
    let err = fails(&mut predict(
        &d.join("emp"),
        &panel,
        &d.join("emp/model.json"),
    ));
    assert!(err.contains("is the input"), "{err}");
    // Fine-tuning a model into its own directory.
    let err = fails(
        labor()
            .args(["train", "--kind", "empirical", "--force", "--pretrained"])
            .arg(d.join("emp"))
            .arg("--train")
            .arg(&panel)
            .arg("--valid")
            .arg(&panel)
            .arg("--out")
            .arg(d.join("emp")),
    );
    assert!(err.contains("is the input"), "{err}");
    assert!(d.join("emp/model.json").is_file());
    assert_eq!(std::fs::read(&panel).unwrap(), before);
    // split whose output set would replace the panel it reads.
    let inside = d.join("set");
    std::fs::create_dir(&inside).unwrap();
    std::fs::copy(&panel, inside.join("train.parquet")).unwrap();
    let err = fails(
        labor()
            .args(["split", "--panel"])
            .arg(inside.join("train.parquet"))
            .arg("--out-dir")
            .arg(&inside),
    );
    assert!(err.contains("is the input"), "{err}");
    assert_eq!(std::fs::read(inside.join("train.parquet")).unwrap(), before);
    // No temporary file was left anywhere.
    assert_eq!(
        entries(d),
        ["emp", "panel.parquet", "set", "survey.csv"],
        "{:?}",
        entries(d)
    );
}

#[test]
fn split_replaces_its_three_files_as_a_set_and_keeps_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (d.join("a.parquet"), d.join("b.parquet"));
    synth("nlsy79", 60, 3, &a);
    ok(labor()
        .args([
            "synth",
            "--preset",
            "nlsy97",
            "--seed",
            "9",
            "--workers",
            "80",
            "--out",
        ])
        .arg(&b));
    let out = d.join("split");
    ok(labor()
        .args(["split", "--panel"])
        .arg(&a)
        .arg("--out-dir")
        .arg(&out));
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    ok(labor()
        .args(["split", "--panel"])
        .arg(&b)
        .arg("--out-dir")
        .arg(&out));
    assert_eq!(
        entries(&out),
        [
            "notes.txt",
            "test.parquet",
            "train.parquet",
            "valid.parquet"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    // Every part is from the second panel: 80 workers in all, none of the first.
    let workers = |p: &Path| -> usize {
        let s = ok(labor().args(["describe", "--json", "--panel"]).arg(p));
        let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        v["workers"].as_u64().unwrap() as usize
    };
    let total: usize = ["train", "valid", "test"]
        .iter()
        .map(|s| workers(&out.join(format!("{s}.parquet"))))
        .sum();
    assert_eq!(total, 80);
    // Nothing left beside the set.
    assert_eq!(entries(d), ["a.parquet", "b.parquet", "split"]);
}

#[test]
fn a_new_training_run_does_not_replace_a_model_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let panel = d.join("p.parquet");
    synth("nlsy79", 60, 3, &panel);
    let train = |extra: &[&str]| {
        let mut c = labor();
        c.args(["train", "--kind", "logit", "--train"])
            .arg(&panel)
            .arg("--valid")
            .arg(&panel)
            .arg("--out")
            .arg(d.join("m"))
            .args(extra);
        c
    };
    ok(&mut train(&["--epochs", "1"]));
    let model = std::fs::read(d.join("m/model.bpk")).unwrap();
    let err = fails(&mut train(&["--epochs", "1", "--lr", "0.05"]));
    assert!(
        err.contains("already holds") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(d.join("m/model.bpk")).unwrap(), model);
    // Resuming with another learning rate is refused, naming the option.
    let err = fails(&mut train(&["--lr", "0.05", "--resume", "--epochs", "2"]));
    assert!(err.contains("lr = 0.02") && err.contains("0.05"), "{err}");
    // --force replaces the model and its loss curve.
    ok(&mut train(&["--epochs", "1", "--lr", "0.05", "--force"]));
    let csv = std::fs::read_to_string(d.join("m/loss.csv")).unwrap();
    assert_eq!(csv.matches("step,epoch").count(), 1, "{csv}");
}

#[test]
fn degenerate_inputs_and_absurd_numbers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A header-only survey: a warning, and predicting the empty panel is an error.
    let csv = d.join("empty.csv");
    let header = std::fs::read_to_string(fixtures().join("long/panel.csv")).unwrap();
    std::fs::write(&csv, format!("{}\n", header.lines().next().unwrap())).unwrap();
    let out = ok(labor()
        .args(["ingest", "--format", "long", "--input"])
        .arg(&csv)
        .arg("--mapping")
        .arg(fixtures().join("long/mapping.toml"))
        .arg("--out")
        .arg(d.join("empty.parquet")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no data rows"), "{err}");
    let panel = d.join("p.parquet");
    synth("nlsy79", 30, 3, &panel);
    train_empirical(&panel, &d.join("emp"));
    let err = fails(&mut predict(
        &d.join("emp"),
        &d.join("empty.parquet"),
        &d.join("x.parquet"),
    ));
    assert!(err.contains("no worker-years"), "{err}");
    assert!(!d.join("x.parquet").exists());
    // Learning rates and bootstrap sizes are checked where they enter.
    for lr in ["NaN", "-1", "1e9"] {
        let err = fails(
            labor()
                .args(["train", "--kind", "logit", &format!("--lr={lr}"), "--train"])
                .arg(&panel)
                .arg("--valid")
                .arg(&panel)
                .arg("--out")
                .arg(d.join(format!("lr{lr}"))),
        );
        assert!(err.contains("lr"), "{lr}: {err}");
    }
    ok(&mut predict(&d.join("emp"), &panel, &d.join("emp.parquet")));
    let err = fails(
        labor()
            .args([
                "eval",
                "--resamples",
                "18446744073709551615",
                "--predictions",
            ])
            .arg(d.join("emp.parquet"))
            .arg("--out")
            .arg(d.join("eval")),
    );
    assert!(err.contains("resamples"), "{err}");
}

/// `kill -9` in the middle of CAREER's training, then `--resume`: the loss curve and the
/// weights are byte for byte those of a run that was never interrupted.
#[test]
fn career_killed_and_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let panel = d.join("p.parquet");
    synth("nlsy79", 300, 3, &panel);
    let train = |out: &Path, resume: bool| {
        let mut c = labor();
        c.args([
            "train",
            "--kind",
            "career",
            "--epochs",
            "4",
            "--no-early-stopping",
        ])
        .arg("--train")
        .arg(&panel)
        .arg("--valid")
        .arg(&panel)
        .arg("--out")
        .arg(out)
        .stderr(std::process::Stdio::null());
        if resume {
            c.arg("--resume");
        }
        c
    };
    ok(&mut train(&d.join("straight"), false));
    let killed = d.join("killed");
    let mut child = train(&killed, false).spawn().unwrap();
    // Kill once the first epoch's checkpoint is written and the second epoch has begun.
    let started = std::time::Instant::now();
    loop {
        let csv = std::fs::read_to_string(killed.join("loss.csv")).unwrap_or_default();
        if csv.lines().any(|l| l.split(',').nth(1) == Some("2")) {
            break;
        }
        assert!(started.elapsed().as_secs() < 300, "no second epoch: {csv}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(still_running, "the run ended before it could be killed");
    ok(&mut train(&killed, true));
    for f in [
        "loss.csv",
        "model.bpk",
        "checkpoint/model.bpk",
        "checkpoint/state.json",
    ] {
        assert_eq!(
            std::fs::read(d.join("straight").join(f)).unwrap(),
            std::fs::read(killed.join(f)).unwrap(),
            "{f}"
        );
    }
}
