use labor_eval::{Bootstrap, Report, ScoreSet};

fn set(lp: impl Fn(usize) -> f64) -> ScoreSet {
    let mut s = ScoreSet::new();
    for w in 0..20 {
        for t in 0..2 {
            s.push(&format!("w{w}"), lp(w * 2 + t), 1.0).unwrap();
        }
    }
    s
}

#[test]
fn table_six_shaped_report() {
    // Uniform over 16, uniform over 8, uniform over 4: perplexities 16, 8, 4 with no sampling noise.
    let a = set(|_| -(16f64).ln());
    let b = set(|_| -(8f64).ln());
    let c = set(|_| -(4f64).ln());
    let r = Report::evaluate(
        &[("empirical", &a), ("career", &b), ("llm", &c)],
        &Bootstrap::new().with_resamples(20),
    )
    .unwrap();
    insta::assert_snapshot!(r.to_markdown(), @r"
    | | perplexity (SE) |
    |---|---|
    | number of targets | 40 |
    | empirical | 16.000 (0.000) |
    | career | 8.000 (0.000) |
    | llm | 4.000 (0.000) |
    | **perplexity improvement** | |
    | PPL(empirical)-PPL(career) | 8.000 (0.000) |
    | PPL(empirical)-PPL(llm) | 12.000 (0.000) |
    | PPL(career)-PPL(llm) | 4.000 (0.000) |
    ");
    let csv = r.to_csv();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("row,value,bootstrap_se,ci_low,ci_high,n_targets,n_workers")
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[0], "\"empirical\"");
    assert!((first[1].parse::<f64>().unwrap() - 16.0).abs() < 1e-9);
    assert_eq!(&first[5..], ["40", "20"]);
    assert_eq!(csv.lines().count(), 7);
    let json = serde_json::to_value(&r).unwrap();
    for key in ["perplexity", "bootstrap_se", "n_targets", "n_workers"] {
        assert!(json["models"][0].get(key).is_some(), "{key}");
    }
    assert_eq!(json["models"][2]["n_workers"], 20);
}
