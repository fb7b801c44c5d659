use labor_data::{PanelSummary, Preset, SpecialState, SynthBuilder};

/// Each preset, at its real sample size, reproduces its targets within the stated tolerances:
/// years per worker within 5%, each special-state share within 2 points, persistence within 3.
#[test]
fn presets_match_their_targets() {
    for preset in [Preset::Nlsy79, Preset::Nlsy97, Preset::Psid81] {
        let synth = SynthBuilder::new(preset).with_seed(11).build().unwrap();
        let spec = synth.spec().clone();
        let out = synth.generate();
        let s = PanelSummary::of(&out.panel);
        let t = spec.targets;
        assert_eq!(s.workers, spec.workers);
        let rel =
            (s.mean_years_per_worker - t.mean_years_per_worker).abs() / t.mean_years_per_worker;
        assert!(
            rel < 0.05,
            "{preset:?} years/worker {} vs {}",
            s.mean_years_per_worker,
            t.mean_years_per_worker
        );
        for (code, target) in [
            (SpecialState::InEducation.code(), t.education_share),
            (SpecialState::Unemployed.code(), t.unemployed_share),
            (SpecialState::NotInLaborForce.code(), t.nilf_share),
        ] {
            let got = s.state_shares[code];
            assert!(
                (got - target).abs() < 0.02,
                "{preset:?} {code} {got} vs {target}"
            );
        }
        assert!(
            (s.occupational_persistence - t.persistence).abs() < 0.03,
            "{preset:?} persistence {} vs {}",
            s.occupational_persistence,
            t.persistence
        );
        let (b0, b1) = s.birth_years.unwrap();
        assert!(b0 >= spec.birth_years.0 && b1 <= spec.birth_years.1);
        let (y0, y1) = s.years.unwrap();
        assert!(y0 >= spec.waves[0] && y1 <= *spec.waves.last().unwrap());
        for (key, share) in [("white", spec.ethnicity[0]), ("black", spec.ethnicity[1])] {
            assert!(
                (s.ethnicity_shares[key] - share).abs() < 0.02,
                "{preset:?} {key}"
            );
        }
        // Nearly every occupation appears in a full-size panel.
        assert!(
            s.distinct_occupations > 320,
            "{preset:?} {}",
            s.distinct_occupations
        );
        // The truth is a proper floor: between 1 and the number of outcomes, near CAREER's range.
        let ppl = out.truth.perplexity();
        assert!(
            (5.0..15.0).contains(&ppl),
            "{preset:?} truth perplexity {ppl}"
        );
    }
}

/// The law depends on more than the last state: the true probability of the same next state,
/// after the same last state, differs with the earlier history.
#[test]
fn law_uses_history_beyond_the_last_state() {
    let synth = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(1)
        .build()
        .unwrap();
    let tax = synth.law().taxonomy().clone();
    let cook = tax.id_of_code("436").unwrap();
    let teacher = tax.id_of_code("156").unwrap();
    let unemployed = tax.special(SpecialState::Unemployed);
    let mut w = labor_data::Worker::new("x", "nlsy79");
    w.birth_year = Some(1960);
    let rec = |y, s| labor_data::YearRecord::new(y, s, labor_data::Education::College);
    w.records = vec![
        rec(1990, teacher),
        rec(1991, unemployed),
        rec(1992, teacher),
    ];
    let p_back = synth.law().prob(&w, 2, teacher);
    w.records[0] = rec(1990, cook);
    let p_other = synth.law().prob(&w, 2, teacher);
    assert!(p_back > 5.0 * p_other, "{p_back} vs {p_other}");
}

#[test]
fn hundred_thousand_workers_generate_quickly_and_deterministically() {
    let t0 = std::time::Instant::now();
    let a = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(100_000)
        .with_seed(3)
        .build()
        .unwrap()
        .generate();
    let elapsed = t0.elapsed();
    assert_eq!(a.panel.len(), 100_000);
    // Not a timing assertion (timings are noisy here): a generous bound that only catches an
    // accidental quadratic blow-up.
    assert!(elapsed.as_secs() < 120, "{elapsed:?}");
    let b = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(100_000)
        .with_seed(3)
        .build()
        .unwrap()
        .generate();
    assert_eq!(a.truth, b.truth);
}
