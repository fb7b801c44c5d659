//! End-to-end tests of the `labor` binary.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{fails, fixtures, labor, ok, synth};

fn run_ok(cmd: &mut Command) -> String {
    let out = common::ok(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `labor synth --preset PRESET --workers N --seed S --out OUT`.
/// `labor split --panel PANEL --out-dir OUT`.
fn split(panel: &std::path::Path, out: &std::path::Path) {
    run_ok(
        labor()
            .args(["split", "--panel"])
            .arg(panel)
            .arg("--out-dir")
            .arg(out),
    );
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
    // Fractions as one comma-separated value or three values; anything else is refused.
    for fractions in [&["0.5,0.25,0.25"][..], &["0.5", "0.25", "0.25"]] {
        run_ok(
            labor()
                .args(["split", "--panel"])
                .arg(&panel)
                .arg("--out-dir")
                .arg(dir.path().join("halves"))
                .arg("--fractions")
                .args(fractions),
        );
        let train = dir.path().join("halves").join("train.parquet");
        let json = run_ok(labor().args(["describe", "--json", "--panel"]).arg(&train));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let n = v["workers"].as_u64().unwrap();
        assert!(
            (130..=170).contains(&n),
            "{n} of 300 workers for a fraction of 0.5"
        );
    }
    let err = fails(
        labor()
            .args(["split", "--fractions", "0.5,0.5", "--panel"])
            .arg(&panel)
            .arg("--out-dir")
            .arg(dir.path().join("bad")),
    );
    assert!(err.contains("three numbers"), "{err}");
    let json = run_ok(labor().args(["describe", "--json", "--panel"]).arg(&panel));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["workers"], 300);
    // Same seed, same bytes of the summary.
    let panel2 = dir.path().join("panel2.parquet");
    synth("nlsy97", 300, 4, &panel2);
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

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let (w, h, rgb) = labor_eval::plots::decode_rgb(&std::fs::read(path).unwrap()).unwrap();
    // Not blank: some pixels are neither white nor grey.
    assert!(
        rgb.chunks(3).any(|p| p[0].abs_diff(p[2]) > 60),
        "{}",
        path.display()
    );
    (w, h)
}

#[test]
fn eval_truth_predictions_on_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy79",
                "--workers",
                "400",
                "--seed",
                "5",
                "--out",
            ])
            .arg(d.join("panel.parquet"))
            .arg("--truth")
            .arg(d.join("truth.parquet"))
            .arg("--full-distribution"),
    );
    run_ok(
        labor()
            .args(["split", "--seed", "5", "--panel"])
            .arg(d.join("panel.parquet"))
            .arg("--out-dir")
            .arg(d.join("split")),
    );
    let curve = d.join("loss.csv");
    std::fs::write(
        &curve,
        "step,epoch,tokens,train_loss,valid_loss,learning_rate\n1,0.1,100,3.0,,0.001\n2,0.2,200,2.5,2.7,0.001\n",
    )
    .unwrap();
    let out_dir = d.join("eval");
    let eval = |rule: &str, out: &std::path::Path| {
        run_ok(
            labor()
                .args(["eval", "--predictions"])
                .arg(d.join("truth.parquet"))
                .arg(d.join("truth.parquet"))
                .arg("--panel")
                .arg(d.join("split/test.parquet"))
                .args(["--targets", rule, "--resamples", "200", "--seed", "3"])
                .arg("--loss-curve")
                .arg(format!("run={}", curve.display()))
                .arg("--out")
                .arg(out),
        )
    };
    let stdout = eval("exclude-first", &out_dir);
    assert!(stdout.contains("| truth |"), "{stdout}");
    assert!(stdout.contains("PPL(truth)-PPL(truth#2)"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(v["target_rule"], "exclude-first");
    assert_eq!(v["resamples"], 200);
    let test = labor_data_counts(&d.join("split/test.parquet"));
    let m = &v["models"][0];
    for key in [
        "perplexity",
        "bootstrap_se",
        "n_targets",
        "n_workers",
        "ci_low",
        "ci_high",
    ] {
        assert!(m[key].is_number(), "{key}: {m}");
    }
    // exclude-first: one target fewer than records per worker.
    assert_eq!(m["n_workers"], test.0);
    assert_eq!(m["n_targets"], test.1 - test.0);
    let ppl = m["perplexity"].as_f64().unwrap();
    assert!(
        ppl > 1.0 && m["ci_low"].as_f64().unwrap() <= ppl && ppl <= m["ci_high"].as_f64().unwrap()
    );
    // The truth: full distributions summing to 1, calibrated.
    assert!((m["valid_mass"]["mean"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    assert!(m["calibration"]["ece"].as_f64().unwrap() < 0.1);
    let events: Vec<&str> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "job_change",
            "unemployment",
            "leaving_labor_force",
            "education"
        ]
    );
    for dim in ["gender", "ethnicity", "region", "dataset", "decade"] {
        assert!(!m["subgroups"][dim].as_array().unwrap().is_empty(), "{dim}");
    }
    // The same file twice: a paired difference of exactly zero on all targets.
    let p = &v["paired"][0];
    assert_eq!(p["difference"], 0.0);
    assert_eq!(p["n_targets"], m["n_targets"]);
    for f in ["report.md", "report.csv"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    for f in [
        "calibration.png",
        "perplexity_by_gender.png",
        "perplexity_by_decade.png",
        "perplexity_by_region.png",
        "loss_curves.png",
    ] {
        assert_eq!(png_size(&out_dir.join(f)), (960, 640), "{f}");
    }
    // Same seed, same numbers.
    let again = d.join("eval2");
    eval("exclude-first", &again);
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(v["models"], w["models"]);
    assert_eq!(v["paired"], w["paired"]);
}

/// (workers, worker-years) of a panel, from `labor describe --json`.
fn labor_data_counts(panel: &std::path::Path) -> (u64, u64) {
    let json = run_ok(labor().args(["describe", "--json", "--panel"]).arg(panel));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    (
        v["workers"].as_u64().unwrap(),
        v["worker_years"].as_u64().unwrap(),
    )
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
        let predict = |out: &str, extra: &[&str]| {
            run_stderr(
                labor()
                    .args(["predict", "--model", &d(kind), "--panel", &test])
                    .args(["--out", &d(out), "--full-distribution"])
                    .args(extra),
            )
        };
        let err = predict(&format!("{kind}.parquet"), &[]);
        assert!(err.contains("perplexity"), "{err}");
        let p = labor_data::Predictions::read_parquet(d(&format!("{kind}.parquet"))).unwrap();
        assert_eq!(p.model(), kind);
        assert!(p.has_distribution());
        // Sharded over two devices (two CPU shards here): the same file.
        predict(
            &format!("{kind}-sharded.parquet"),
            &["--devices", "flex,flex"],
        );
        assert_eq!(
            std::fs::read(d(&format!("{kind}-sharded.parquet"))).unwrap(),
            std::fs::read(d(&format!("{kind}.parquet"))).unwrap()
        );
    }
    // `labor eval --model` predicts and evaluates in one go: the same numbers as evaluating the
    // predictions file, with the model directory's predictions after the file's.
    let metrics = |args: &[&str], out: &str| -> serde_json::Value {
        run_ok(labor().arg("eval").args(args).args([
            "--panel",
            &test,
            "--resamples",
            "50",
            "--out",
            &d(out),
        ]));
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("metrics.json")).unwrap(),
        )
        .unwrap()
    };
    let from_file = metrics(&["--predictions", &d("empirical.parquet")], "eval-file");
    let direct = metrics(
        &[
            "--predictions",
            &d("logit.parquet"),
            "--model",
            &d("empirical"),
        ],
        "eval-model",
    );
    assert_eq!(direct["models"][1]["name"], "empirical");
    for key in ["perplexity", "bootstrap_se", "n_targets", "n_workers"] {
        let (a, b) = (&from_file["models"][0][key], &direct["models"][1][key]);
        assert!(
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
            "{key}: {a} vs {b}"
        );
    }
    // --model needs the panel to predict.
    let out = labor()
        .args(["eval", "--model", &d("empirical"), "--out", &d("eval-bad")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--panel"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

#[test]
fn finetune_scratch_with_extra_workers_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth("nlsy79", 60, 1, &d.join("n.parquet"));
    synth("psid81", 30, 2, &d.join("p.parquet"));
    split(&d.join("n.parquet"), &d.join("split"));
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
                "--epochs",
                "1",
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

/// `labor finetune --numbered-seed S` trains on resumes whose titles are `job_NNN` codes: the
/// tokenizer it learns from scratch has a token for " job", which English resumes never write.
#[test]
fn finetune_on_numbered_titles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth("nlsy79", 40, 3, &d.join("n.parquet"));
    split(&d.join("n.parquet"), &d.join("split"));
    let vocab = |numbered: bool| {
        let out = d.join(if numbered { "numbered" } else { "english" });
        let mut c = labor();
        c.args(["finetune", "--base", "scratch", "--train"])
            .arg(d.join("split/train.parquet"))
            .arg("--valid")
            .arg(d.join("split/valid.parquet"))
            .args([
                "--epochs",
                "1",
                "--max-train-docs",
                "4",
                "--batch-size",
                "4",
            ])
            .args(["--vocab-size", "400", "--max-valid-docs", "2", "--out"])
            .arg(&out);
        if numbered {
            c.args(["--numbered-seed", "3"]);
        }
        run_ok(&mut c);
        let json = std::fs::read_to_string(out.join("best/tokenizer.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["model"]["vocab"].as_object().unwrap().clone()
    };
    assert!(vocab(true).contains_key("\u{120}job"));
    assert!(!vocab(false).contains_key("\u{120}job"));
    let out = labor()
        .args([
            "finetune",
            "--base",
            "scratch",
            "--title-tokens",
            "--numbered-seed",
            "1",
        ])
        .args(["--train", "x.parquet", "--valid", "y.parquet", "--out", "z"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'--title-tokens' cannot be used with '--numbered-seed"),
        "{err}"
    );
}

/// `labor finetune --base FILE.gguf` on the real SmolLM2-135M (set by `scripts/test`): one
/// full fine-tuning step, exported as a Hugging Face directory whose tokenizer gives the GGUF's
/// ids and whose weights reload.
#[test]
fn finetune_from_a_gguf_file() {
    let Some(gguf) = std::env::var_os("LABOR_SMOLLM2_GGUF").map(PathBuf::from) else {
        eprintln!(
            "!!! SKIPPED finetune_from_a_gguf_file: LABOR_SMOLLM2_GGUF is not set (scripts/test sets it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth("nlsy79", 20, 4, &d.join("n.parquet"));
    split(&d.join("n.parquet"), &d.join("split"));
    let out = d.join("ft");
    let stdout = run_ok(
        labor()
            .args(["finetune", "--base"])
            .arg(&gguf)
            .arg("--train")
            .arg(d.join("split/train.parquet"))
            .arg("--valid")
            .arg(d.join("split/valid.parquet"))
            .args([
                "--epochs",
                "1",
                "--max-train-docs",
                "2",
                "--batch-size",
                "2",
                "--max-tokens",
                "48",
            ])
            .args(["--max-valid-docs", "1", "--out"])
            .arg(&out),
    );
    // "validation title perplexity A -> B; ..." with finite numbers.
    let line = stdout
        .lines()
        .find(|l| l.contains(" -> "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let nums: Vec<f64> = line
        .split([' ', ';'])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        nums.len() >= 2 && nums.iter().all(|x| x.is_finite()),
        "{line}"
    );
    let csv = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "one optimizer step: {csv}");
    let device = burn::tensor::Device::default();
    let (_, _, from_gguf) = labor_model::load_llm(&gguf, &device).unwrap();
    let (config, _, exported) = labor_model::load_llm(out.join("best"), &device).unwrap();
    assert_eq!(config.n_layers, 30);
    let text = "1990 (college): Cooks\n1991 (high school): Registered nurses ½ 2024\n";
    assert_eq!(
        exported.encode(text).unwrap().ids,
        from_gguf.encode(text).unwrap().ids
    );
}

#[test]
fn plan_gives_the_memory_of_a_run_and_refuses_one_that_does_not_fit() {
    let out = ok(labor().args([
        "plan",
        "--model",
        "smollm2-135m",
        "--mode",
        "full",
        "--batch",
        "4",
        "--seq-len",
        "256",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("smollm2-135m, full, f32, 1 device(s), batch 4 x 256 tokens: 134.5M parameters, 134.5M trainable"), "{text}");
    assert!(text.contains("| optimizer (AdamW) | 1.00 GiB |"), "{text}");
    assert!(text.contains("| **total** | **4.52 GiB** |"), "{text}");
    let err = fails(labor().args([
        "plan",
        "--model",
        "llama3.1-8b",
        "--mode",
        "full",
        "--device-memory",
        "80",
    ]));
    assert!(
        err.contains(
            "the run needs 191.03 GiB per device and 80.00 GiB is available (largest: activations 65.50 GiB"
        ),
        "{err}"
    );
    assert!(
        err.contains("try a smaller batch per device (more devices or gradient accumulation), activation checkpointing, bf16, LoRA"),
        "{err}"
    );
    let err = fails(labor().args(["plan", "--model", "gpt-5"]));
    assert!(
        err.contains("`gpt-5` is neither a preset (smollm2-135m"),
        "{err}"
    );
}
