//! The quickstart on a small panel: every model is evaluated, the truth is the floor, the
//! baselines beat the empirical table, the files are written, and a rerun gives the same table.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used)]

use labor_pipeline::{QuickstartBuilder, QuickstartEvent, STAGES};

fn run(out: &std::path::Path) -> (labor_pipeline::QuickstartReport, Vec<usize>) {
    let mut stages = Vec::new();
    let report = QuickstartBuilder::new(out)
        .with_workers(300)
        .with_lm_train_docs(40)
        .with_lm_epochs(1)
        .with_resamples(50)
        .build()
        .unwrap()
        .run(|e| {
            if let QuickstartEvent::Stage { number, what } = e {
                assert_eq!(what, STAGES[number - 1]);
                stages.push(number);
            }
        })
        .unwrap();
    (report, stages)
}

#[test]
fn the_quickstart_evaluates_every_model_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (report, stages) = run(dir.path());
    assert_eq!(stages, (1..=STAGES.len()).collect::<Vec<_>>());
    let models = &report.output.evaluation.models;
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "empirical",
            "logit",
            "career",
            "llm (from scratch)",
            "truth"
        ]
    );
    let ppl = |name: &str| models.iter().find(|m| m.name == name).unwrap().perplexity;
    for name in ["empirical", "logit", "career", "llm (from scratch)"] {
        assert!(ppl("truth") < ppl(name), "{name} beats the truth");
    }
    assert!(ppl("logit") < ppl("empirical"));
    assert!(ppl("career") < ppl("empirical"));
    for file in [
        "panel.parquet",
        "truth.parquet",
        "split/train.parquet",
        "models/career/model.json",
        "predictions/career.parquet",
        "eval/report.md",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} is missing");
    }
    // Fixed seeds: a second run over the first one's directory gives the same table.
    let (again, _) = run(dir.path());
    assert_eq!(again.output.table(), report.output.table());
}
