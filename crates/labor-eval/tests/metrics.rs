use labor_eval::{Calibration, auc, binary_perplexity, top_k_accuracy};
use proptest::prelude::*;

#[test]
fn auc_golden_values() {
    // Hand-checked (and equal to sklearn.metrics.roc_auc_score on the same inputs):
    // positives at 0.9 and 0.2, negatives at 0.8 and 0.1: pairs won 3 of 4.
    assert_eq!(
        auc(&[0.9, 0.8, 0.2, 0.1], &[true, false, true, false]).unwrap(),
        Some(0.75)
    );
    // Ties count half: roc_auc_score([1, 0], [0.5, 0.5]) = 0.5.
    assert_eq!(auc(&[0.5, 0.5], &[true, false]).unwrap(), Some(0.5));
    assert_eq!(
        auc(&[0.1, 0.2, 0.3], &[false, true, true]).unwrap(),
        Some(1.0)
    );
    assert_eq!(auc(&[0.1, 0.2], &[true, true]).unwrap(), None);
}

#[test]
fn calibration_table_by_hand() {
    let p = [0.05, 0.15, 0.12, 0.85, 0.95, 0.9];
    let y = [false, false, true, true, true, false];
    let c = Calibration::binary(&p, &y, 10).unwrap();
    assert_eq!(c.bins.len(), 10);
    assert_eq!(c.bins[0].count, 1);
    assert_eq!(c.bins[1].count, 2);
    assert!((c.bins[1].confidence - 0.135).abs() < 1e-12);
    assert_eq!(c.bins[1].frequency, 0.5);
    assert_eq!(c.bins[9].count, 2);
    // ECE = 1/6·|0 − .05| + 2/6·|.5 − .135| + 1/6·|1 − .85| + 2/6·|.5 − .925|
    let want = (0.05 + 2.0 * 0.365 + 0.15 + 2.0 * 0.425) / 6.0;
    assert!((c.ece - want).abs() < 1e-12, "{} vs {want}", c.ece);
}

#[test]
fn binary_perplexity_and_topk() {
    assert!(
        (binary_perplexity(&[0.9, 0.2], &[true, false]).unwrap()
            - (-(0.9f64.ln() + 0.8f64.ln()) / 2.0).exp())
        .abs()
            < 1e-12
    );
    let d = [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]];
    assert_eq!(top_k_accuracy(&d, &[2, 1], 1).unwrap(), 0.0);
    assert_eq!(top_k_accuracy(&d, &[2, 1], 2).unwrap(), 0.5);
    assert_eq!(top_k_accuracy(&d, &[2, 1], 3).unwrap(), 1.0);
    assert!(top_k_accuracy(&d, &[3, 1], 1).is_err());
}

proptest! {
    #[test]
    fn auc_is_symmetric_under_label_flip(v in prop::collection::vec((0.0f64..1.0, any::<bool>()), 2..100)) {
        let (s, l): (Vec<f64>, Vec<bool>) = v.into_iter().unzip();
        let flipped: Vec<bool> = l.iter().map(|x| !x).collect();
        if let (Some(a), Some(b)) = (auc(&s, &l).unwrap(), auc(&s, &flipped).unwrap()) {
            prop_assert!((a + b - 1.0).abs() < 1e-9);
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }

    #[test]
    fn perfectly_calibrated_bins_have_zero_ece(n in 1usize..50) {
        // Half the predictions at 0.5 happen: the bin is exact.
        let p = vec![0.5; 2 * n];
        let y: Vec<bool> = (0..2 * n).map(|i| i % 2 == 0).collect();
        prop_assert!(Calibration::binary(&p, &y, 10).unwrap().ece.abs() < 1e-12);
    }
}

#[test]
fn weighted_metrics_by_hand() {
    use labor_eval::{weighted_auc, weighted_binary_perplexity};
    // Weight 2 on the positive at 0.2 is that positive twice. Positives {0.9 (w 1), 0.2 (w 2)}
    // against negatives {0.8, 0.1}: 0.9 wins both (1·2), 0.2 wins against 0.1 (2·1): 4 of 3·2.
    let s = [0.9, 0.8, 0.2, 0.1];
    let l = [true, false, true, false];
    let w = [1.0, 1.0, 2.0, 1.0];
    assert!((weighted_auc(&s, &l, &w).unwrap().unwrap() - 4.0 / 6.0).abs() < 1e-12);
    let dup = auc(
        &[0.9, 0.8, 0.2, 0.2, 0.1],
        &[true, false, true, true, false],
    )
    .unwrap();
    assert_eq!(weighted_auc(&s, &l, &w).unwrap(), dup);
    // (2·ln 0.9 + ln 0.8) / 3
    let b = weighted_binary_perplexity(&[0.9, 0.2], &[true, false], &[2.0, 1.0]).unwrap();
    assert!((b - (-(2.0 * 0.9f64.ln() + 0.8f64.ln()) / 3.0).exp()).abs() < 1e-12);
    assert!(weighted_binary_perplexity(&[0.5], &[true], &[0.0]).is_err());
    assert!(weighted_auc(&s, &l, &[1.0, -1.0, 1.0, 1.0]).is_err());
    // Weighted calibration: one bin, confidence (3·0.3 + 0.7)/4 = 0.4, frequency 1/4.
    let c = Calibration::weighted(&[0.3, 0.35], &[false, true], &[3.0, 1.0], 2).unwrap();
    assert_eq!(c.bins[0].count, 2);
    assert!((c.bins[0].confidence - (3.0 * 0.3 + 0.35) / 4.0).abs() < 1e-12);
    assert!((c.ece - ((3.0 * 0.3 + 0.35) / 4.0 - 0.25f64).abs()).abs() < 1e-12);
}

proptest! {
    #[test]
    fn unit_weights_give_the_unweighted_metrics(v in prop::collection::vec((0.0f64..1.0, any::<bool>()), 1..80)) {
        use labor_eval::{weighted_auc, weighted_binary_perplexity};
        let (p, y): (Vec<f64>, Vec<bool>) = v.into_iter().unzip();
        let ones = vec![1.0; p.len()];
        match (auc(&p, &y).unwrap(), weighted_auc(&p, &y, &ones).unwrap()) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12),
            (a, b) => prop_assert_eq!(a, b),
        }
        let q: Vec<f64> = p.iter().map(|x| x.clamp(1e-6, 1.0 - 1e-6)).collect();
        let a = binary_perplexity(&q, &y).unwrap();
        prop_assert!((a - weighted_binary_perplexity(&q, &y, &ones).unwrap()).abs() < 1e-9 * a);
        prop_assert_eq!(Calibration::binary(&p, &y, 7).unwrap(), Calibration::weighted(&p, &y, &ones, 7).unwrap());
    }
}
