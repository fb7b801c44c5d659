//! End-to-end tests of the `labor` binary.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

use std::path::PathBuf;
use std::process::Command;

fn labor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labor"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("labor runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn synth_split_describe() {
    let dir = tempfile::tempdir().unwrap();
    let panel = dir.path().join("panel.parquet");
    let out = run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy97",
                "--workers",
                "300",
                "--seed",
                "4",
                "--out",
            ])
            .arg(&panel)
            .arg("--truth")
            .arg(dir.path().join("truth.parquet")),
    );
    assert!(out.contains("wrote 300 workers"), "{out}");
    let out = run_ok(
        labor()
            .args(["split", "--seed", "4", "--panel"])
            .arg(&panel)
            .arg("--out-dir")
            .arg(dir.path().join("split")),
    );
    assert!(out.contains("train:"), "{out}");
    for s in ["train", "valid", "test"] {
        assert!(
            dir.path()
                .join("split")
                .join(format!("{s}.parquet"))
                .is_file()
        );
    }
    let json = run_ok(labor().args(["describe", "--json", "--panel"]).arg(&panel));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["workers"], 300);
    // Same seed, same bytes of the summary.
    let panel2 = dir.path().join("panel2.parquet");
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy97",
                "--workers",
                "300",
                "--seed",
                "4",
                "--out",
            ])
            .arg(&panel2),
    );
    let json2 = run_ok(labor().args(["describe", "--json", "--panel"]).arg(&panel2));
    assert_eq!(json, json2);
}

#[test]
fn ingest_reports_and_fails_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("long");
    let report = dir.path().join("ingest.json");
    let out = run_ok(
        labor()
            .args([
                "ingest",
                "--format",
                "long",
                "--on-error",
                "drop",
                "--input",
            ])
            .arg(f.join("panel.csv"))
            .arg("--mapping")
            .arg(f.join("mapping.toml"))
            .arg("--out")
            .arg(dir.path().join("p.parquet"))
            .arg("--report")
            .arg(&report),
    );
    assert!(out.contains("5 workers, 16 worker-years"), "{out}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["dropped"]["unknown_occupation"], 1);

    let failed = labor()
        .args(["ingest", "--format", "long", "--input"])
        .arg(f.join("panel.csv"))
        .arg("--mapping")
        .arg(f.join("mapping.toml"))
        .arg("--out")
        .arg(dir.path().join("q.parquet"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("panel.csv:18: worker `104` already has a record for 2002"),
        "{err}"
    );
}

#[test]
fn ingest_with_user_taxonomy_and_crosswalk() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.csv");
    std::fs::write(&input, "id,year,isco\na,2000,7512\na,2001,2341\n").unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(&mapping, "dataset = \"mine\"\n[columns]\nworker_id = \"id\"\nyear = \"year\"\noccupation = \"isco\"\n[occupation]\nscheme = \"isco08\"\n").unwrap();
    let t = fixtures().join("taxonomy");
    let jsonl = dir.path().join("p.jsonl");
    run_ok(
        labor()
            .args(["ingest", "--format", "long", "--input"])
            .arg(&input)
            .arg("--mapping")
            .arg(&mapping)
            .arg("--taxonomy")
            .arg(t.join("toy.csv"))
            .arg("--crosswalk")
            .arg(format!("isco08={}", t.join("toy_crosswalk.csv").display()))
            .arg("--out")
            .arg(&jsonl),
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert!(
        text.contains("\"state\":\"B1\",\"title\":\"Bakers\""),
        "{text}"
    );
    assert!(
        text.contains("\"state\":\"T1\",\"title\":\"Teachers\""),
        "{text}"
    );
}

#[test]
fn render_resumes_and_icl() {
    let dir = tempfile::tempdir().unwrap();
    let panel = dir.path().join("panel.parquet");
    run_ok(
        labor()
            .args(["synth", "--preset", "nlsy79", "--workers", "200", "--out"])
            .arg(&panel),
    );
    run_ok(
        labor()
            .args(["split", "--panel"])
            .arg(&panel)
            .arg("--out-dir")
            .arg(dir.path()),
    );
    let out = dir.path().join("texts.jsonl");
    let msg = run_ok(
        labor()
            .args(["render", "--template", "resume", "--panel"])
            .arg(dir.path().join("test.parquet"))
            .arg("--out")
            .arg(&out),
    );
    assert!(msg.contains("(resume)"), "{msg}");
    let text = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let body = first["text"].as_str().unwrap();
    let t0 = &first["targets"][0];
    let (s, e) = (
        t0["continuation_start"].as_u64().unwrap() as usize,
        t0["continuation_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&body[s..e], format!(" {}\n", t0["title"].as_str().unwrap()));
    assert!(body.starts_with("<A Resume from the NLSY79 Dataset>"));

    // In-context examples need the training split; one text per target.
    let icl = dir.path().join("icl.jsonl");
    let failed = labor()
        .args(["render", "--template", "icl", "--panel"])
        .arg(dir.path().join("test.parquet"))
        .arg("--out")
        .arg(&icl)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("needs a pool of training workers"));
    run_ok(
        labor()
            .args([
                "render",
                "--template",
                "icl",
                "--icl-k",
                "3",
                "--randomize",
                "gender",
                "--panel",
            ])
            .arg(dir.path().join("test.parquet"))
            .arg("--train")
            .arg(dir.path().join("train.parquet"))
            .arg("--out")
            .arg(&icl),
    );
    let lines = std::fs::read_to_string(&icl).unwrap();
    let v: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(v["targets"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["text"]
            .as_str()
            .unwrap()
            .matches("<A worker from the NLSY79 dataset>")
            .count(),
        4
    );
}

fn run_stderr(cmd: &mut Command) -> String {
    let out = cmd.output().expect("labor runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stderr: {err}");
    err
}

#[test]
fn train_predict_pretrain_finetune() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy79",
                "--workers",
                "150",
                "--seed",
                "2",
            ])
            .args(["--out", &d("panel.parquet")]),
    );
    run_ok(labor().args([
        "split",
        "--panel",
        &d("panel.parquet"),
        "--out-dir",
        &d("s"),
    ]));
    let (train, valid, test) = (
        d("s/train.parquet"),
        d("s/valid.parquet"),
        d("s/test.parquet"),
    );
    for kind in ["empirical", "logit"] {
        let err = run_stderr(
            labor()
                .args(["train", "--kind", kind, "--epochs", "1"])
                .args(["--train", &train, "--valid", &valid, "--out", &d(kind)]),
        );
        assert!(err.contains(&format!("trained {kind}")), "{err}");
        let err = run_stderr(labor().args([
            "predict",
            "--model",
            &d(kind),
            "--panel",
            &test,
            "--out",
            &d(&format!("{kind}.parquet")),
            "--full-distribution",
        ]));
        assert!(err.contains("perplexity"), "{err}");
        let p = labor_data::Predictions::read_parquet(d(&format!("{kind}.parquet"))).unwrap();
        assert_eq!(p.model(), kind);
        assert!(p.has_distribution());
    }
    let csv = std::fs::read_to_string(dir.path().join("logit/loss.csv")).unwrap();
    assert!(csv.starts_with("step,epoch,tokens,train_loss,valid_loss,learning_rate\n"));
    // Pretrain CAREER on the resume-like corpus, then fine-tune every weight on the survey.
    run_stderr(
        labor()
            .args([
                "train",
                "--kind",
                "career",
                "--as-resumes",
                "--epochs",
                "1",
                "--max-steps",
                "3",
            ])
            .args(["--train", &train, "--valid", &valid, "--out", &d("pre")]),
    );
    let err = run_stderr(
        labor()
            .args([
                "train",
                "--kind",
                "career",
                "--epochs",
                "1",
                "--max-steps",
                "3",
                "--pretrained",
                &d("pre"),
            ])
            .args(["--train", &train, "--valid", &valid, "--out", &d("ft")]),
    );
    assert!(err.contains("trained career"), "{err}");
    // A pretrained model of another kind is refused.
    let out = labor()
        .args(["train", "--kind", "logit", "--pretrained", &d("pre")])
        .args(["--train", &train, "--valid", &valid, "--out", &d("bad")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("career model"));
}
