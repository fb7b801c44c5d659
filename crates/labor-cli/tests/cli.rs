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

#[test]
fn finetune_scratch_with_extra_workers_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy79",
                "--workers",
                "60",
                "--seed",
                "1",
                "--out",
            ])
            .arg(d.join("n.parquet")),
    );
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "psid81",
                "--workers",
                "30",
                "--seed",
                "2",
                "--out",
            ])
            .arg(d.join("p.parquet")),
    );
    run_ok(
        labor()
            .args(["split", "--panel"])
            .arg(d.join("n.parquet"))
            .arg("--out-dir")
            .arg(d.join("split")),
    );
    let out = d.join("ft");
    let finetune = |resume: bool| {
        let mut c = labor();
        c.args(["finetune", "--base", "scratch", "--train"])
            .arg(d.join("split/train.parquet"))
            .arg("--extra")
            .arg(d.join("p.parquet"))
            .args([
                "--extra-fraction",
                "0.1",
                "--mix-fraction",
                "0.5",
                "--valid",
            ])
            .arg(d.join("split/valid.parquet"))
            .args([
                "--max-train-docs",
                "12",
                "--batch-size",
                "4",
                "--vocab-size",
                "400",
            ])
            .args(["--max-valid-docs", "3", "--checkpoint-every", "1", "--out"])
            .arg(&out);
        if resume {
            c.arg("--resume");
        }
        run_ok(&mut c)
    };
    let first = finetune(false);
    assert!(first.contains("validation title perplexity"), "{first}");
    let csv = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    // 12 documents in batches of 4: three optimizer steps, the last one evaluated.
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "step,epoch,tokens,train_loss,valid_loss,learning_rate"
    );
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(!rows[3].split(',').nth(4).unwrap().is_empty());
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(out.join("best").join(f).is_file(), "{f}");
    }
    // Resuming a finished run changes nothing.
    finetune(true);
    assert_eq!(std::fs::read_to_string(out.join("loss.csv")).unwrap(), csv);
}
