use labor_eval::{
    Bootstrap, Error, Evaluator, Event, ModelPredictions, Subgroups, TargetRow, TargetRule,
};
use proptest::prelude::*;

/// Two workers over three states; the last distribution puts only 0.9 on valid outcomes (as a
/// language model may).
type Row = (&'static str, i32, u32, usize, Option<usize>, [f32; 3]);

fn small() -> ModelPredictions {
    let rows: [Row; 5] = [
        ("w1", 1989, 0, 0, None, [0.5, 0.3, 0.2]),
        ("w1", 1990, 1, 1, Some(0), [0.6, 0.3, 0.1]),
        ("w1", 1991, 2, 1, Some(1), [0.2, 0.7, 0.1]),
        ("w2", 2001, 0, 2, None, [0.2, 0.2, 0.6]),
        ("w2", 2002, 1, 0, Some(2), [0.25, 0.25, 0.4]),
    ];
    let mut m = ModelPredictions::new("m", 3);
    for (w, y, k, s, prev, p) in rows {
        let lp = f64::from(p[s]).ln();
        m.push(TargetRow::new(w, y, k, s, prev, lp), Some(&p))
            .unwrap();
    }
    m
}

fn evaluator(rule: TargetRule) -> Evaluator {
    Evaluator::builder()
        .with_rule(rule)
        .with_bootstrap(Bootstrap::new().with_resamples(200).with_seed(9))
        .with_events(vec![
            Event::change(),
            Event::in_states("unemployment", vec![2]),
            Event::enter("enter_2", vec![2]),
        ])
        .build()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[test]
fn golden_metrics_by_hand() {
    let out = evaluator(TargetRule::All).run(&[small()], None).unwrap();
    let m = &out.models[0];
    let lp = |p: f32| f64::from(p).ln();
    let want = (-(lp(0.5) + lp(0.3) + lp(0.7) + lp(0.6) + lp(0.25)) / 5.0).exp();
    assert!(close(m.perplexity, want), "{} vs {want}", m.perplexity);
    assert_eq!((m.n_targets, m.n_workers), (5, 2));
    // Observed state most probable in targets 1, 3 and 4; always among the top 5 of 3.
    assert_eq!(m.top1_accuracy, Some(0.6));
    assert_eq!(m.top5_accuracy, Some(1.0));
    let v = m.valid_mass.unwrap();
    assert!(close(v.mean, 0.98) && close(v.min, 0.9));
    assert_eq!(v.share_below_0_99, 0.2);
    // Job change, on the three targets with a previous state: P = 1 − p(previous), the last
    // renormalised by its mass 0.9: (0.4, change), (0.3, stay), (1 − 0.4/0.9, change).
    let ch = &m.events[0];
    assert_eq!((ch.name.as_str(), ch.n_targets), ("job_change", 3));
    assert!(close(ch.base_rate, 2.0 / 3.0));
    assert_eq!(ch.auc, Some(1.0));
    let p5: f64 = 1.0 - 0.4 / 0.9;
    let want = (-((0.4f64).ln() + (0.7f64).ln() + p5.ln()) / 3.0).exp();
    assert!(
        close(ch.binary_perplexity, want),
        "{}",
        ch.binary_perplexity
    );
    assert!(close(ch.mean_predicted, (0.4 + 0.3 + p5) / 3.0));
    // Unemployment = state 2: P = (.2, .1, .1, .6, .4/.9), happened only at the fourth.
    let un = &m.events[1];
    assert_eq!(un.n_targets, 5);
    assert!(close(un.base_rate, 0.2));
    assert_eq!(un.auc, Some(1.0));
    // Entering state 2: defined where the previous state is known and not 2 (targets 2 and 3),
    // P = (.1, .1), never happened.
    let en = &m.events[2];
    assert_eq!((en.n_targets, en.base_rate, en.auc), (2, 0.0, None));
    assert!(close(en.binary_perplexity, 1.0 / 0.9));
    // Decades 1980s (1 target, p = .5), 1990s (2), 2000s (2).
    let dec = &m.subgroups["decade"];
    assert_eq!(
        dec.iter()
            .map(|g| (g.group.as_str(), g.n_targets))
            .collect::<Vec<_>>(),
        [("1980s", 1), ("1990s", 2), ("2000s", 2)]
    );
    assert!(close(dec[0].perplexity, 2.0));
    // Top-1 calibration over confidences (.5, .6, .7, .6, .4/.9) with hits (1, 0, 1, 1, 0).
    // In f32, 0.7 is 0.69999999 and the first distribution sums to 1.00000001, so 10 bins put
    // {.5, .444} in bin 4 and {.6, .7, .6} in bin 6:
    // ECE = 2/5·|1/2 − (.5 + .4/.9)/2| + 3/5·|2/3 − 1.9/3|.
    let cal = m.calibration.as_ref().unwrap();
    let counts: Vec<usize> = cal.bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [0, 0, 0, 0, 2, 0, 3, 0, 0, 0]);
    let want =
        0.4 * (0.5 - (0.5 + 0.4 / 0.9) / 2.0f64).abs() + 0.6 * (2.0 / 3.0 - 1.9 / 3.0f64).abs();
    assert!((cal.ece - want).abs() < 1e-6, "{} vs {want}", cal.ece);
}

#[test]
fn target_rules_select_worker_years() {
    let lp = |p: f64| p.ln();
    let ex = evaluator(TargetRule::ExcludeFirst)
        .run(&[small()], None)
        .unwrap();
    let want = (-(lp(0.3) + lp(0.7) + lp(0.25)) / 3.0).exp();
    assert!(close(ex.models[0].perplexity, want));
    assert_eq!(ex.models[0].n_targets, 3);
    let ch = evaluator(TargetRule::Changes)
        .run(&[small()], None)
        .unwrap();
    assert_eq!(ch.models[0].n_targets, 2);
    assert!(close(
        ch.models[0].perplexity,
        (-(lp(0.3) + lp(0.25)) / 2.0).exp()
    ));
    // Every selected target is a change: no negatives, no AUC.
    assert_eq!(ch.models[0].events[0].auc, None);
    assert_eq!(ch.target_rule.as_str(), "changes");
    // Stays are the rest of exclude-first: here the one worker-year at 0.7.
    let st = evaluator(TargetRule::Stays).run(&[small()], None).unwrap();
    assert_eq!(st.models[0].n_targets, 1);
    assert!(close(st.models[0].perplexity, 1.0 / 0.7));
    assert_eq!(st.target_rule.as_str(), "stays");
}

#[test]
fn weights_enter_perplexity() {
    let mut m = ModelPredictions::new("w", 2);
    m.push(
        TargetRow::new("a", 2000, 0, 0, None, -1.0).with_weight(3.0),
        None,
    )
    .unwrap();
    m.push(
        TargetRow::new("b", 2000, 0, 0, None, -3.0).with_weight(1.0),
        None,
    )
    .unwrap();
    let out = evaluator(TargetRule::All).run(&[m], None).unwrap();
    assert!(close(out.models[0].perplexity, 1.5f64.exp()));
    assert_eq!(out.models[0].top1_accuracy, None);
    assert!(out.models[0].events.is_empty());
}

#[test]
fn paired_differences_on_common_targets() {
    let a = small();
    // b scores only the first four targets, each at half a's probability... bounded by 1.
    let mut b = ModelPredictions::new("b", 3);
    for r in &a.rows()[..4] {
        b.push(
            TargetRow {
                log_prob: r.log_prob - 2f64.ln(),
                ..r.clone()
            },
            None,
        )
        .unwrap();
    }
    let out = evaluator(TargetRule::All)
        .run(&[b, a.clone()], None)
        .unwrap();
    let p = &out.paired[0];
    assert_eq!(
        (p.name.as_str(), p.n_targets, p.n_workers),
        ("PPL(b)-PPL(m)", 4, 2)
    );
    let lp = |p: f64| p.ln();
    let ppl_a4 = (-(lp(0.5) + lp(0.3) + lp(0.7) + lp(0.6)) / 4.0).exp();
    // Halving every probability doubles perplexity.
    assert!(
        close(p.difference, 2.0 * ppl_a4 - ppl_a4),
        "{}",
        p.difference
    );
    assert!(p.ci_low <= p.difference && p.difference <= p.ci_high);
    // Same targets: the full set is paired.
    let out = evaluator(TargetRule::All)
        .run(&[a.clone(), a], None)
        .unwrap();
    assert_eq!(out.paired[0].n_targets, 5);
    assert_eq!(out.paired[0].difference, 0.0);
}

#[test]
fn subgroups_from_worker_attributes() {
    let mut sg = Subgroups::new(&["gender", "dataset"]);
    sg.insert("w1", vec!["female", "nlsy79"]).unwrap();
    assert!(sg.insert("w2", vec!["male"]).is_err());
    let out = evaluator(TargetRule::All)
        .run(&[small()], Some(&sg))
        .unwrap();
    let g = &out.models[0].subgroups["gender"];
    // w2 has no attributes: "unknown".
    assert_eq!(
        g.iter()
            .map(|x| (x.group.as_str(), x.n_targets))
            .collect::<Vec<_>>(),
        [("female", 3), ("unknown", 2)]
    );
    assert_eq!(out.models[0].subgroups.len(), 3);
    let md = out.to_markdown();
    assert!(md.contains("| gender | m | targets |"), "{md}");
    assert!(md.contains("| female |"), "{md}");
    let csv = out.to_csv();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("m,perplexity_by_gender,female,"))
    );
}

#[test]
fn inputs_are_checked() {
    let mut m = ModelPredictions::new("x", 2);
    assert!(matches!(
        m.push(TargetRow::new("a", 2000, 0, 2, None, -1.0), None),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(
        m.push(TargetRow::new("a", 2000, 0, 0, None, -1.0), Some(&[0.5]))
            .is_err()
    );
    assert!(matches!(
        m.push(
            TargetRow::new("a", 2000, 0, 0, None, f64::NEG_INFINITY),
            None
        ),
        Err(Error::InvalidLogProb { .. })
    ));
    // A rounding error above zero reads as log 1.
    m.push(
        TargetRow::new("a", 2000, 0, 0, None, 1e-9),
        Some(&[1.0, 0.0]),
    )
    .unwrap();
    assert_eq!(m.rows()[0].log_prob, 0.0);
    assert!(
        m.push(TargetRow::new("a", 2001, 1, 0, Some(0), -1.0), None)
            .is_err()
    );
    let e = Evaluator::builder()
        .with_events(vec![Event::in_states("u", vec![5])])
        .build()
        .unwrap();
    assert!(e.run(&[m.clone()], None).is_err());
    assert!(
        Evaluator::builder()
            .with_calibration_bins(0)
            .build()
            .is_err()
    );
    assert!(
        Evaluator::builder()
            .with_events(vec![Event::change(), Event::change()])
            .build()
            .is_err()
    );
    let ex = Evaluator::builder()
        .with_rule(TargetRule::Changes)
        .build()
        .unwrap();
    assert!(matches!(ex.run(&[m], None).unwrap_err(), Error::Empty));
    assert!("sometimes".parse::<TargetRule>().is_err());
}

fn arb_model() -> impl Strategy<Value = ModelPredictions> {
    prop::collection::vec(
        (
            0usize..30,
            1usize..6,
            prop::collection::vec(0.01f32..1.0, 4),
        ),
        1..40,
    )
    .prop_map(|workers| {
        let mut m = ModelPredictions::new("p", 4);
        for (w, len, raw) in workers {
            let total: f32 = raw.iter().sum();
            let p: Vec<f32> = raw.iter().map(|x| x / total).collect();
            let mut prev = None;
            for k in 0..len {
                let s = (w + 3 * k) % 4;
                let row = TargetRow::new(
                    format!("w{w}"),
                    1980 + 3 * k as i32,
                    k as u32,
                    s,
                    prev,
                    f64::from(p[s]).ln(),
                );
                prev = Some(s);
                // Workers may repeat: positions still increase within each run.
                let _ = m.push(row, Some(&p));
            }
        }
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn perplexity_at_least_one_intervals_contain_estimates_seed_fixes_all(m in arb_model(), seed in any::<u64>()) {
        let run = |threads: usize| {
            Evaluator::builder()
                .with_bootstrap(Bootstrap::new().with_resamples(30).with_seed(seed).with_threads(threads))
                .build()
                .unwrap()
                .run(std::slice::from_ref(&m), None)
                .unwrap()
        };
        let out = run(1);
        let x = &out.models[0];
        prop_assert!(x.perplexity >= 1.0);
        // Below two workers no standard error exists, and none is reported.
        if x.n_workers < 2 {
            prop_assert!(x.bootstrap_se.is_nan() && x.ci_low.is_nan());
        } else {
            prop_assert!(x.ci_low <= x.perplexity && x.perplexity <= x.ci_high);
        }
        for g in x.subgroups.values().flatten() {
            prop_assert!(g.perplexity >= 1.0);
            if g.n_workers < 2 {
                prop_assert!(g.bootstrap_se.is_nan());
            } else {
                prop_assert!(g.ci_low <= g.perplexity && g.perplexity <= g.ci_high);
            }
        }
        prop_assert!((0.0..=1.0).contains(&x.calibration.as_ref().unwrap().ece));
        // NaN is not equal to itself: compare the JSON, where it is `null`.
        let json = |e: &labor_eval::Evaluation| serde_json::to_string(e).unwrap();
        prop_assert_eq!(json(&out), json(&run(3)));
    }

    #[test]
    fn uniform_model_over_k_states(k in 1usize..400, workers in 1usize..20) {
        let p = vec![1.0 / k as f32; k];
        let mut m = ModelPredictions::new("uniform", k);
        for w in 0..workers {
            for t in 0..3u32 {
                let s = (w * 7 + t as usize) % k;
                let prev = (t > 0).then(|| (w * 7 + t as usize - 1) % k);
                m.push(TargetRow::new(format!("w{w}"), 2000 + t as i32, t, s, prev, -(k as f64).ln()), Some(&p)).unwrap();
            }
        }
        let out = Evaluator::builder()
            .with_bootstrap(Bootstrap::new().with_resamples(20))
            .build()
            .unwrap()
            .run(&[m], None)
            .unwrap();
        let x = &out.models[0];
        prop_assert!((x.perplexity - k as f64).abs() < 1e-9 * k as f64);
        // No sampling noise when every target has the same probability (and no standard
        // error at all with one worker).
        if workers < 2 {
            prop_assert!(x.bootstrap_se.is_nan());
        } else {
            prop_assert!(x.bootstrap_se.abs() < 1e-9 * k as f64);
        }
        // All tied: the observed state counts as most probable.
        prop_assert_eq!(x.top1_accuracy, Some(1.0));
        prop_assert!((x.valid_mass.unwrap().mean - 1.0).abs() < 1e-4);
    }
}

#[test]
fn weights_enter_every_metric() {
    // Doubling a target's weight is the same as listing it twice (under another worker id, so
    // only the bootstrap differs).
    let base = small();
    let mut weighted = ModelPredictions::new("m", 3);
    let mut doubled = ModelPredictions::new("m", 3);
    for (i, r) in base.rows().iter().enumerate() {
        let d = base.distribution(i);
        let w = if i == 1 || i == 4 { 2.0 } else { 1.0 };
        weighted.push(r.clone().with_weight(w), d).unwrap();
        doubled.push(r.clone(), d).unwrap();
        if w == 2.0 {
            let copy = TargetRow {
                worker: format!("{}-copy", r.worker),
                ..r.clone()
            };
            doubled.push(copy, d).unwrap();
        }
    }
    let ev = evaluator(TargetRule::All);
    let a = &ev.run(&[weighted], None).unwrap().models[0];
    let b = &ev.run(&[doubled], None).unwrap().models[0];
    assert!(close(a.perplexity, b.perplexity));
    assert_eq!(a.top1_accuracy, b.top1_accuracy);
    assert!(close(
        a.valid_mass.unwrap().mean,
        b.valid_mass.unwrap().mean
    ));
    assert!(close(
        a.calibration.as_ref().unwrap().ece,
        b.calibration.as_ref().unwrap().ece
    ));
    for (x, y) in a.events.iter().zip(&b.events) {
        assert!(close(x.base_rate, y.base_rate), "{}", x.name);
        assert!(
            close(x.binary_perplexity, y.binary_perplexity),
            "{}",
            x.name
        );
        assert_eq!(
            x.auc.map(|v| (v * 1e9).round()),
            y.auc.map(|v| (v * 1e9).round())
        );
    }
}
