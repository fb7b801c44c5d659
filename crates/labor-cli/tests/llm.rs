//! `labor score` and `labor logprobs` on a small random model saved as a Hugging Face directory
//! with a real byte-level BPE tokenizer, checked against the library's scorer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixtures, labor};

use burn::tensor::Device;
use labor_data::Predictions;
use labor_model::{LlamaConfig, Scorer, load_llm, save_hf};
use labor_template::Document;

fn run_ok(cmd: &mut Command) -> String {
    let out = common::ok(cmd);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A random 2-layer model over the tiny BPE fixture's 600 tokens, as an HF directory.
fn tiny_model(dir: &Path) -> PathBuf {
    let model_dir = dir.join("tiny");
    let config = LlamaConfig::new(48, 2, 4, 2, 96, 600)
        .with_max_seq_len(1024)
        .with_tie_embeddings(true);
    save_hf(&config.init(&Device::default()), &config, &model_dir).unwrap();
    std::fs::copy(
        fixtures().join("models/tiny-bpe/tokenizer.json"),
        model_dir.join("tokenizer.json"),
    )
    .unwrap();
    model_dir
}

fn render(dir: &Path) -> PathBuf {
    let panel = dir.join("panel.parquet");
    run_ok(
        labor()
            .args([
                "synth",
                "--preset",
                "nlsy79",
                "--workers",
                "2",
                "--seed",
                "2",
                "--out",
            ])
            .arg(&panel),
    );
    let docs = dir.join("docs.jsonl");
    run_ok(
        labor()
            .args(["render", "--template", "prompt", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&docs),
    );
    docs
}

#[test]
fn score_writes_what_the_scorer_computes() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model(dir.path());
    let docs_path = render(dir.path());
    let out = dir.path().join("scores.parquet");
    let log = run_ok(
        labor()
            .arg("score")
            .arg("--model")
            .arg(&model_dir)
            .arg("--texts")
            .arg(&docs_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(log.contains("targets/s"), "{log}");
    let preds = Predictions::read_parquet(&out).unwrap();
    assert_eq!(preds.model(), "tiny");
    let docs: Vec<Document> = std::fs::read_to_string(&docs_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (_, model, tok) = load_llm(&model_dir, &Device::default()).unwrap();
    let scorer = Scorer::new(&model, &tok, Device::default());
    let want: Vec<f64> = docs
        .iter()
        .flat_map(|d| scorer.score_document(d).unwrap())
        .collect();
    assert_eq!(preds.len(), want.len());
    for (r, w) in preds.rows().iter().zip(&want) {
        assert!((r.log_prob - w).abs() < 1e-4, "{} vs {w}", r.log_prob);
    }

    // With the full distribution: the observed title's probability is the score, and the mass
    // on valid titles is at most one.
    let full = dir.path().join("full.parquet");
    run_ok(
        labor()
            .arg("score")
            .arg("--model")
            .arg(&model_dir)
            .arg("--texts")
            .arg(&docs_path)
            .arg("--out")
            .arg(&full)
            .arg("--full-distribution"),
    );
    let full = Predictions::read_parquet(&full).unwrap();
    assert!(full.has_distribution());
    let titles: Vec<String> = {
        let tax = std::sync::Arc::clone(full.taxonomy());
        let template = labor_template::TemplateBuilder::new(
            std::sync::Arc::clone(&tax),
            labor_template::TemplateKind::Resume,
        )
        .build()
        .unwrap();
        tax.outcomes()
            .map(|(id, _)| template.continuation(id).unwrap())
            .collect()
    };
    let lib: Vec<_> = docs
        .iter()
        .flat_map(|d| scorer.document_distributions(d, &titles).unwrap())
        .collect();
    assert_eq!(lib.len(), full.len());
    for ((r, w), dist) in full.rows().iter().zip(&want).zip(&lib) {
        let p = r.probs.as_ref().unwrap();
        assert!((r.log_prob - w).abs() < 1e-4);
        // The stored row is the library's distribution in f32 (which may underflow to zero for
        // a random model's long titles), and the observed title's entry is the score.
        assert_eq!(p.len(), dist.log_probs.len());
        for (got, lp) in p.iter().zip(&dist.log_probs) {
            let want = lp.exp() as f32;
            assert!(
                (got - want).abs() <= 1e-6 * want.max(f32::MIN_POSITIVE),
                "{got} vs {want}"
            );
        }
        assert!((dist.log_probs[usize::from(r.state.0)] - w).abs() < 1e-4);
        let mass: f64 = p.iter().map(|x| f64::from(*x)).sum();
        assert!((0.0..=1.0 + 1e-5).contains(&mass), "{mass}");
        assert!(dist.valid_mass() > 0.0 && dist.valid_mass() <= 1.0 + 1e-9);
    }

    // Constrained to the titles: the library's constrained scores, never below the free ones,
    // and the free perplexity in the summary.
    let constrained = dir.path().join("constrained.parquet");
    let log = run_ok(
        labor()
            .arg("score")
            .arg("--model")
            .arg(&model_dir)
            .arg("--texts")
            .arg(&docs_path)
            .arg("--out")
            .arg(&constrained)
            .arg("--constrained"),
    );
    let free_ppl = (-want.iter().sum::<f64>() / want.len() as f64).exp();
    let logged: f64 = log
        .split("free decoding ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no free perplexity in: {log}"));
    // (A random model's free perplexity over long titles may overflow to infinity.)
    assert!(
        (logged - free_ppl).abs() < 2e-3 * free_ppl || logged == free_ppl,
        "{free_ppl}: {log}"
    );
    let constrained = Predictions::read_parquet(&constrained).unwrap();
    let scorer = scorer.with_constrained_titles(&titles).unwrap();
    let lib: Vec<f64> = docs
        .iter()
        .flat_map(|d| scorer.score_document(d).unwrap())
        .collect();
    assert_eq!(constrained.len(), want.len());
    for ((r, free), lib) in constrained.rows().iter().zip(&want).zip(&lib) {
        // `labor score` batches texts and the library call scores one: they agree up to f32
        // rounding (as the free scores above).
        assert!((r.log_prob - lib).abs() < 1e-4, "{} vs {lib}", r.log_prob);
        assert!(r.log_prob >= free - 1e-5 && r.log_prob <= 1e-9);
    }
}

#[test]
fn logprobs_gives_one_value_per_token_and_null_first() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model(dir.path());
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"text\": \"1990 (college): Cashiers\\n\"}\n{\"text\": \"<A worker>\"}\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    run_ok(
        labor()
            .arg("logprobs")
            .arg("--model")
            .arg(&model_dir)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let (_, model, tok) = load_llm(&model_dir, &Device::default()).unwrap();
    let scorer = Scorer::new(&model, &tok, Device::default());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let (ids, lps) = scorer
        .token_log_probs("1990 (college): Cashiers\n")
        .unwrap();
    let got_ids: Vec<u32> = serde_json::from_value(lines[0]["tokens"].clone()).unwrap();
    assert_eq!(got_ids, ids);
    let got: Vec<Option<f64>> = serde_json::from_value(lines[0]["logprobs"].clone()).unwrap();
    assert_eq!(got[0], None);
    for (g, w) in got.iter().zip(&lps).skip(1) {
        assert!((g.unwrap() - w.unwrap()).abs() < 1e-6);
    }
}

#[test]
fn a_model_directory_without_tokenizer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model(dir.path());
    std::fs::remove_file(model_dir.join("tokenizer.json")).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"x y\"}\n").unwrap();
    let out = labor()
        .arg("logprobs")
        .arg("--model")
        .arg(&model_dir)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("o.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn eval_predicts_with_a_language_model_and_evaluates_it() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model(dir.path());
    render(dir.path());
    let panel = dir.path().join("panel.parquet");
    let out = dir.path().join("eval");
    run_ok(
        labor()
            .args(["eval", "--model"])
            .arg(&model_dir)
            .arg("--panel")
            .arg(&panel)
            .args(["--resamples", "20", "--out"])
            .arg(&out),
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let m = &v["models"][0];
    assert_eq!(m["name"], "tiny");
    let panel = labor_data::io::read_parquet(&panel).unwrap();
    assert_eq!(m["n_targets"], panel.n_worker_years());
    assert_eq!(m["n_workers"], panel.len());
    // The mean negative log-likelihood is the library's, resume template, every worker-year (a
    // random model's perplexity overflows f64, so it is not compared).
    let (_, model, tok) = load_llm(&model_dir, &Device::default()).unwrap();
    let template = labor_template::TemplateBuilder::new(
        std::sync::Arc::clone(panel.taxonomy()),
        labor_template::TemplateKind::Resume,
    )
    .build()
    .unwrap();
    let predictor = labor_model::LlmPredictor::new(
        "tiny",
        Scorer::new(&model, &tok, Device::default()),
        template,
        panel.taxonomy(),
    )
    .unwrap();
    let preds = labor_model::predict_panel(&predictor, &panel, false, |_| {}).unwrap();
    let want = -preds.rows().iter().map(|r| r.log_prob).sum::<f64>() / preds.len() as f64;
    let got = m["mean_nll"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-6 * want.abs(), "{got} vs {want}");

    // With --constrained: the constrained predictor's likelihood, below the free one's.
    let out = dir.path().join("eval-constrained");
    run_ok(
        labor()
            .args(["eval", "--constrained", "--model"])
            .arg(&model_dir)
            .arg("--panel")
            .arg(dir.path().join("panel.parquet"))
            .args(["--resamples", "20", "--out"])
            .arg(&out),
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let got = v["models"][0]["mean_nll"].as_f64().unwrap();
    let predictor = predictor.constrained().unwrap();
    let preds = labor_model::predict_panel(&predictor, &panel, false, |_| {}).unwrap();
    let constrained = -preds.rows().iter().map(|r| r.log_prob).sum::<f64>() / preds.len() as f64;
    assert!(
        (got - constrained).abs() < 1e-6 * constrained.abs(),
        "{got} vs {constrained}"
    );
    assert!(constrained < want, "{constrained} vs free {want}");
}
