//! `evaluate_predictions` and the previous state each predictions row carries.

use std::sync::Arc;

use labor_data::{
    Education, Panel, Prediction, Predictions, StateId, TargetRule, Taxonomy, Worker, YearRecord,
};
use labor_eval::{Error, EvalOptions, evaluate_predictions};

/// Worker `w` in 1990..1994: states 3, 3, 5, 5 (a stay at position 1 and 3, a move at 2).
fn states() -> [u16; 4] {
    [3, 3, 5, 5]
}

/// Only the moves of 30 workers (position 2), with their previous state when `carry`.
fn moves_only(carry: bool) -> Predictions {
    let mut p = Predictions::new("moves", Arc::new(Taxonomy::occ1990dd()));
    for w in 0..30 {
        p.push(Prediction {
            worker_id: format!("w{w}"),
            year: 1992,
            position: 2,
            state: StateId(5),
            previous: carry.then_some(StateId(3)),
            log_prob: -1.0 - f64::from(w % 3) / 10.0,
            weight: None,
            probs: None,
        })
        .unwrap();
    }
    p
}

fn options(targets: TargetRule) -> EvalOptions {
    EvalOptions {
        targets,
        resamples: 50,
        ..EvalOptions::default()
    }
}

#[test]
fn moves_are_found_from_the_previous_state_a_row_carries_without_a_panel() {
    let out = evaluate_predictions(
        &[moves_only(true)],
        None,
        &options(TargetRule::Changes),
        |_| {},
    )
    .unwrap();
    assert_eq!(out.evaluation.models[0].n_targets, 30);
    let out = evaluate_predictions(
        &[moves_only(true)],
        None,
        &options(TargetRule::Stays),
        |_| {},
    );
    assert!(matches!(out, Err(Error::Empty)), "{out:?}");
    // Rows without it (files written before it was recorded): a lone row at position 2 has no
    // row before it, so whether it is a move is unknown and it is no target.
    let out = evaluate_predictions(
        &[moves_only(false)],
        None,
        &options(TargetRule::Changes),
        |_| {},
    );
    assert!(matches!(out, Err(Error::Empty)), "{out:?}");
}

#[test]
fn a_previous_state_that_contradicts_the_panel_is_an_error() {
    let workers = (0..30)
        .map(|w| {
            let mut worker = Worker::new(format!("w{w}"), "test");
            for (k, s) in states().into_iter().enumerate() {
                let year = 1990 + k as i32;
                worker
                    .records
                    .push(YearRecord::new(year, StateId(s), Education::HighSchool));
            }
            worker
        })
        .collect();
    let panel = Panel::new(Arc::new(Taxonomy::occ1990dd()), workers).unwrap();
    let opts = options(TargetRule::Changes);
    let out = evaluate_predictions(&[moves_only(true)], Some(&panel), &opts, |_| {}).unwrap();
    assert_eq!(out.evaluation.models[0].n_targets, 30);
    // Position 2's record before is in state 3; a row that says 4 contradicts the panel.
    let mut wrong = Predictions::new("wrong", Arc::new(Taxonomy::occ1990dd()));
    for row in moves_only(true).rows() {
        let mut row = row.clone();
        row.previous = Some(StateId(4));
        wrong.push(row).unwrap();
    }
    let out = evaluate_predictions(&[wrong], Some(&panel), &opts, |_| {});
    match out {
        Err(Error::Contradiction { detail, .. }) => {
            assert!(detail.contains("previous"), "{detail}")
        }
        other => panic!("expected a contradiction, got {other:?}"),
    }
}
