use labor_eval::{Bootstrap, Error, MAX_RESAMPLES, ScoreSet};
use proptest::prelude::*;

fn arb_scores() -> impl Strategy<Value = ScoreSet> {
    prop::collection::vec(
        (
            0u32..40,
            -8.0f64..0.0,
            prop::sample::select(vec![1.0, 0.5, 2.0]),
        ),
        1..300,
    )
    .prop_map(|rows| {
        let mut s = ScoreSet::new();
        for (w, lp, wt) in rows {
            s.push(&format!("w{w}"), lp, wt).unwrap();
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn perplexity_is_at_least_one(s in arb_scores()) {
        prop_assert!(s.perplexity().unwrap() >= 1.0);
    }

    #[test]
    fn uniform_model_over_k_states_has_perplexity_k(k in 1usize..500, n in 1usize..50) {
        let mut s = ScoreSet::new();
        for i in 0..n {
            s.push(&format!("w{}", i % 7), -(k as f64).ln(), 1.0).unwrap();
        }
        prop_assert!((s.perplexity().unwrap() - k as f64).abs() < 1e-9 * k as f64);
    }

    #[test]
    fn interval_contains_estimate_and_seed_fixes_everything(s in arb_scores(), seed in any::<u64>()) {
        let b = Bootstrap::new().with_resamples(50).with_seed(seed);
        let e = b.perplexity(&s).unwrap();
        if s.n_workers() < 2 {
            // One worker: no standard error exists, and none is reported.
            prop_assert!(e.se.is_nan() && e.ci.0.is_nan() && e.resamples == 0);
            return Ok(());
        }
        prop_assert!(e.ci.0 <= e.value && e.value <= e.ci.1);
        prop_assert!(e.se >= 0.0);
        // Same seed, any number of threads: identical.
        prop_assert_eq!(e, b.with_threads(1).perplexity(&s).unwrap());
        prop_assert_eq!(e, b.with_threads(3).perplexity(&s).unwrap());
    }

    #[test]
    fn paired_difference_with_itself_is_exactly_zero(s in arb_scores()) {
        let e = Bootstrap::new().with_resamples(20).paired_difference(&s, &s).unwrap();
        prop_assert_eq!(e.value, 0.0);
        if s.n_workers() >= 2 {
            prop_assert_eq!(e.se, 0.0);
        } else {
            prop_assert!(e.se.is_nan());
        }
    }
}

/// With many independent workers, the cluster bootstrap SE matches the delta-method SE of the
/// ratio estimator: SE(PPL) ≈ PPL · sqrt(Σ_i (S_i − r W_i)²) / W, r = S / W.
#[test]
fn bootstrap_se_matches_the_delta_method() {
    let mut s = ScoreSet::new();
    let (mut sums, mut weights) = (Vec::new(), Vec::new());
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for w in 0..2000 {
        let n = 1 + (next() * 20.0) as usize;
        let worker_effect = -1.5 * next();
        let (mut si, mut wi) = (0.0, 0.0);
        for _ in 0..n {
            let lp = -0.5 + worker_effect - 3.0 * next();
            s.push(&format!("w{w}"), lp, 1.0).unwrap();
            si += lp;
            wi += 1.0;
        }
        sums.push(si);
        weights.push(wi);
    }
    let (ts, tw): (f64, f64) = (sums.iter().sum(), weights.iter().sum());
    let r = ts / tw;
    let ppl = (-r).exp();
    let delta = ppl
        * sums
            .iter()
            .zip(&weights)
            .map(|(si, wi)| (si - r * wi).powi(2))
            .sum::<f64>()
            .sqrt()
        / tw;
    let e = Bootstrap::new()
        .with_resamples(2000)
        .with_seed(3)
        .perplexity(&s)
        .unwrap();
    assert!((e.value - ppl).abs() < 1e-9 * ppl);
    assert!(
        (e.se / delta - 1.0).abs() < 0.08,
        "bootstrap {} vs delta method {delta}",
        e.se
    );
    // The 95% percentile interval is about ±1.96 SE wide.
    let half = (e.ci.1 - e.ci.0) / 2.0;
    assert!((half / (1.96 * delta) - 1.0).abs() < 0.12, "{half}");
}

#[test]
fn pairing_removes_shared_worker_noise() {
    let (mut a, mut b) = (ScoreSet::new(), ScoreSet::new());
    for w in 0..300 {
        let effect = -2.0 * ((w * 37 % 100) as f64 / 100.0);
        for t in 0..5 {
            let lp = -1.0 + effect - 0.3 * ((t * 11 + w) % 7) as f64 / 7.0;
            a.push(&w.to_string(), lp, 1.0).unwrap();
            b.push(&w.to_string(), lp - 0.1, 1.0).unwrap();
        }
    }
    let boot = Bootstrap::new().with_resamples(400).with_seed(1);
    let d = boot.paired_difference(&b, &a).unwrap();
    let (pa, pb) = (boot.perplexity(&a).unwrap(), boot.perplexity(&b).unwrap());
    assert!((d.value - (pb.value - pa.value)).abs() < 1e-12);
    // exp(0.1) ratio: PPL(b) = e^0.1 PPL(a).
    assert!((pb.value / pa.value - 0.1f64.exp()).abs() < 1e-12);
    assert!(
        d.se < 0.2 * pa.se.min(pb.se),
        "{} vs {} {}",
        d.se,
        pa.se,
        pb.se
    );
    assert!(d.ci.0 > 0.0);
}

#[test]
fn errors_are_typed() {
    let mut s = ScoreSet::new();
    assert_eq!(
        s.push("w", 0.5, 1.0).unwrap_err().to_string(),
        "target 0 (worker `w`): log-probability 0.5 is not a finite number <= 0"
    );
    assert!(matches!(
        s.push("w", f64::NEG_INFINITY, 1.0),
        Err(Error::InvalidLogProb { .. })
    ));
    assert!(matches!(
        s.push("w", -1.0, -1.0),
        Err(Error::InvalidWeight { .. })
    ));
    assert!(matches!(s.perplexity(), Err(Error::Empty)));
    s.push("w", -1.0, 1.0).unwrap();
    let mut t = ScoreSet::new();
    t.push("v", -1.0, 1.0).unwrap();
    assert_eq!(
        Bootstrap::new()
            .paired_difference(&s, &t)
            .unwrap_err()
            .to_string(),
        "score sets differ at target 0: worker `w` against `v`"
    );
    assert!(matches!(
        Bootstrap::new().with_resamples(1).perplexity(&s),
        Err(Error::InvalidArgument { .. })
    ));
    let weighted = ScoreSet::from_slices(&["a", "b"], &[-1.0, -3.0], Some(&[3.0, 1.0])).unwrap();
    // exp((3·1 + 1·3) / 4) = exp(1.5)
    assert!((weighted.perplexity().unwrap() - 1.5f64.exp()).abs() < 1e-12);
    let sub = weighted.subset(|i| i == 1);
    assert_eq!(
        (sub.n_targets(), sub.workers()),
        (1, &["b".to_string()][..])
    );
}

#[test]
fn subgroups_are_evaluated_separately() {
    let mut s = ScoreSet::new();
    let mut groups = Vec::new();
    for w in 0..40 {
        let (g, lp) = if w % 2 == 0 {
            ("female", -(4f64).ln())
        } else {
            ("male", -(8f64).ln())
        };
        for _ in 0..3 {
            s.push(&format!("w{w}"), lp, 1.0).unwrap();
            groups.push(g);
        }
    }
    let by = Bootstrap::new()
        .with_resamples(50)
        .by_group(&s, &groups)
        .unwrap();
    assert_eq!(by.len(), 2);
    assert!((by["female"].value - 4.0).abs() < 1e-9);
    assert!((by["male"].value - 8.0).abs() < 1e-9);
    // Constant log-probabilities within a group: no sampling variance.
    assert!(by["female"].se.abs() < 1e-9);
    assert!(Bootstrap::new().by_group(&s, &groups[1..]).is_err());
}

#[test]
fn resamples_beyond_the_bound_are_refused_before_any_allocation() {
    let mut s = ScoreSet::new();
    s.push("a", -1.0, 1.0).unwrap();
    s.push("b", -2.0, 1.0).unwrap();
    for n in [MAX_RESAMPLES + 1, usize::MAX] {
        let err = Bootstrap::new()
            .with_resamples(n)
            .perplexity(&s)
            .unwrap_err();
        assert!(err.to_string().contains("resamples"), "{err}");
    }
    assert!(
        Bootstrap::new()
            .with_resamples(MAX_RESAMPLES)
            .perplexity(&s)
            .is_ok()
    );
}
