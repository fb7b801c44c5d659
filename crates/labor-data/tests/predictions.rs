use std::sync::Arc;

use labor_data::{Prediction, Predictions, StateId, Taxonomy};

fn row(worker: &str, year: i32, position: u32, state: u16, lp: f64, n: usize) -> Prediction {
    Prediction {
        worker_id: worker.into(),
        year,
        position,
        state: StateId(state),
        previous: (position > 0).then_some(StateId(7)),
        log_prob: lp,
        weight: (position == 0).then_some(2.5),
        probs: (n > 0).then(|| {
            let mut p = vec![0.0f32; n];
            p[state as usize] = lp.exp() as f32;
            p
        }),
    }
}

#[test]
fn predictions_round_trip_with_and_without_distributions() {
    let tax = Arc::new(Taxonomy::occ1990dd());
    let dir = tempfile::tempdir().unwrap();
    for full in [false, true] {
        let n = if full { tax.len() } else { 0 };
        let mut p = Predictions::new("career", Arc::clone(&tax));
        p.push(row("a", 1990, 0, 5, -1.25, n)).unwrap();
        p.push(row("a", 1992, 1, 343, -0.5, n)).unwrap();
        p.push(row("b", 2001, 0, 0, -3.0, n)).unwrap();
        let path = dir.path().join(format!("p{full}.parquet"));
        p.write_parquet(&path).unwrap();
        let back = Predictions::read_parquet(&path).unwrap();
        assert_eq!(back.model(), "career");
        assert_eq!(back.rows(), p.rows());
        assert_eq!(back.has_distribution(), full);
    }
}

#[test]
fn predictions_reject_bad_rows() {
    let tax = Arc::new(Taxonomy::occ1990dd());
    let mut p = Predictions::new("m", Arc::clone(&tax));
    assert!(p.push(row("a", 1990, 0, 5, 0.5, 0)).is_err());
    assert!(p.push(row("a", 1990, 0, 5, f64::NAN, 0)).is_err());
    assert!(p.push(row("a", 1990, 0, 9999, -1.0, 0)).is_err());
    let mut bad = row("a", 1990, 0, 5, -1.0, 0);
    bad.probs = Some(vec![0.1; 3]);
    let err = p.push(bad).unwrap_err().to_string();
    assert!(err.contains("3 probabilities"), "{err}");
    assert!(p.is_empty());
}
