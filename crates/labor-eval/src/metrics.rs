//! Metrics beyond perplexity: top-k accuracy, calibration, and binary event prediction (AUC,
//! binary perplexity) for job changes, unemployment, leaving the labour force and education.
//!
//! ```
//! use labor_eval::{auc, binary_perplexity, top_k_accuracy, Calibration};
//! let dists = [vec![0.7, 0.2, 0.1], vec![0.1, 0.3, 0.6]];
//! let observed = [0, 1];
//! assert_eq!(top_k_accuracy(&dists, &observed, 1).unwrap(), 0.5);
//! assert_eq!(top_k_accuracy(&dists, &observed, 2).unwrap(), 1.0);
//! assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[true, false, true, false]).unwrap(), Some(0.75));
//! assert!((binary_perplexity(&[0.5, 0.5], &[true, false]).unwrap() - 2.0).abs() < 1e-12);
//! let cal = Calibration::top1(&dists, &observed, 10).unwrap();
//! assert!(cal.ece >= 0.0 && cal.ece <= 1.0);
//! ```

use serde::Serialize;

use crate::error::{Error, Result};

fn check_weight(i: usize, w: f64) -> Result<()> {
    if w.is_finite() && w >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "weight",
            detail: format!("weight {i} is {w}"),
        })
    }
}

fn same_len(what: &'static str, a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            left: a,
            right: b,
        })
    }
}

/// Share of targets whose observed outcome is among the `k` most probable of its distribution
/// (ties broken in favour of the observed outcome's rank being lower: an outcome is in the top
/// `k` if fewer than `k` outcomes have strictly larger probability).
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::Empty`], or [`Error::InvalidArgument`] for `k = 0` or an
/// observed index outside its distribution.
pub fn top_k_accuracy<D: AsRef<[f64]>>(dists: &[D], observed: &[usize], k: usize) -> Result<f64> {
    same_len(
        "distributions and observed outcomes",
        dists.len(),
        observed.len(),
    )?;
    if dists.is_empty() {
        return Err(Error::Empty);
    }
    if k == 0 {
        return Err(Error::InvalidArgument {
            name: "k",
            detail: "must be at least 1".into(),
        });
    }
    let mut hits = 0usize;
    for (i, (d, &o)) in dists.iter().zip(observed).enumerate() {
        let d = d.as_ref();
        let Some(&p) = d.get(o) else {
            return Err(Error::InvalidArgument {
                name: "observed",
                detail: format!(
                    "target {i}: outcome {o} outside a distribution of {}",
                    d.len()
                ),
            });
        };
        let above = d.iter().filter(|&&q| q > p).count();
        hits += usize::from(above < k);
    }
    Ok(hits as f64 / dists.len() as f64)
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Lower edge of the confidence bin.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Number of predictions in the bin.
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub confidence: f64,
    /// Observed frequency of the event in the bin.
    pub frequency: f64,
}

/// A reliability table and the expected calibration error
/// `ECE = Σ_b (n_b / n) |frequency_b − confidence_b|`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Equal-width bins over [0, 1] (empty bins included, with count 0).
    pub bins: Vec<CalibrationBin>,
    /// Expected calibration error.
    pub ece: f64,
}

impl Calibration {
    /// Calibration of predicted probabilities `p` of binary events `happened`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::Empty`], [`Error::InvalidArgument`] for zero bins or
    /// a probability outside [0, 1].
    pub fn binary(p: &[f64], happened: &[bool], bins: usize) -> Result<Self> {
        Self::weighted(p, happened, &vec![1.0; p.len()], bins)
    }

    /// As [`Calibration::binary`] with a weight per prediction: bin confidences and
    /// frequencies are weighted means and `ECE = Σ_b (W_b / W) |frequency_b − confidence_b|`
    /// (`count` stays the number of predictions). Unit weights give [`Calibration::binary`].
    ///
    /// # Errors
    /// As [`Calibration::binary`], [`Error::InvalidArgument`] for a negative or non-finite
    /// weight, [`Error::Empty`] when the weights sum to zero.
    pub fn weighted(p: &[f64], happened: &[bool], weights: &[f64], bins: usize) -> Result<Self> {
        same_len("probabilities and events", p.len(), happened.len())?;
        same_len("probabilities and weights", p.len(), weights.len())?;
        if p.is_empty() {
            return Err(Error::Empty);
        }
        if bins == 0 {
            return Err(Error::InvalidArgument {
                name: "bins",
                detail: "must be at least 1".into(),
            });
        }
        // (count, Σ w, Σ w·q, Σ w·event) per bin.
        let mut acc = vec![(0usize, 0.0f64, 0.0f64, 0.0f64); bins];
        for (i, ((&q, &h), &w)) in p.iter().zip(happened).zip(weights).enumerate() {
            if !(0.0..=1.0).contains(&q) {
                return Err(Error::InvalidArgument {
                    name: "probability",
                    detail: format!("prediction {i} is {q}"),
                });
            }
            check_weight(i, w)?;
            let b = ((q * bins as f64) as usize).min(bins - 1);
            acc[b].0 += 1;
            acc[b].1 += w;
            acc[b].2 += w * q;
            acc[b].3 += if h { w } else { 0.0 };
        }
        let total: f64 = acc.iter().map(|a| a.1).sum();
        if total <= 0.0 {
            return Err(Error::Empty);
        }
        let mut ece = 0.0;
        let bins_out = acc
            .iter()
            .enumerate()
            .map(|(b, &(count, wsum, qsum, events))| {
                let (confidence, frequency) = if wsum > 0.0 {
                    (qsum / wsum, events / wsum)
                } else {
                    (0.0, 0.0)
                };
                ece += wsum / total * (frequency - confidence).abs();
                CalibrationBin {
                    lo: b as f64 / bins as f64,
                    hi: (b + 1) as f64 / bins as f64,
                    count,
                    confidence,
                    frequency,
                }
            })
            .collect();
        Ok(Self {
            bins: bins_out,
            ece,
        })
    }

    /// Top-1 calibration of multi-class predictions: the confidence is the largest probability,
    /// the event that the most probable outcome is the observed one.
    ///
    /// # Errors
    /// As [`Calibration::binary`] and [`top_k_accuracy`].
    pub fn top1<D: AsRef<[f64]>>(dists: &[D], observed: &[usize], bins: usize) -> Result<Self> {
        same_len(
            "distributions and observed outcomes",
            dists.len(),
            observed.len(),
        )?;
        let mut conf = Vec::with_capacity(dists.len());
        let mut hit = Vec::with_capacity(dists.len());
        for (d, &o) in dists.iter().zip(observed) {
            let d = d.as_ref();
            let (arg, max) =
                d.iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |(a, m), (i, &q)| if q > m { (i, q) } else { (a, m) },
                    );
            conf.push(max.clamp(0.0, 1.0));
            hit.push(arg == o);
        }
        Self::binary(&conf, &hit, bins)
    }
}

/// Area under the ROC curve of `scores` for `labels` (Mann-Whitney, ties counted half);
/// `None` when one class is absent.
///
/// # Errors
/// [`Error::LengthMismatch`].
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<Option<f64>> {
    same_len("scores and labels", scores.len(), labels.len())?;
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += avg * idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return Ok(None);
    }
    Ok(Some(
        (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg),
    ))
}

/// Perplexity of binary predictions: `exp(-mean log P(observed))`, with `P(event) = p`.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::Empty`], [`Error::InvalidArgument`] for a probability
/// outside [0, 1].
pub fn binary_perplexity(p: &[f64], happened: &[bool]) -> Result<f64> {
    same_len("probabilities and events", p.len(), happened.len())?;
    if p.is_empty() {
        return Err(Error::Empty);
    }
    let mut nll = 0.0;
    for (i, (&q, &h)) in p.iter().zip(happened).enumerate() {
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::InvalidArgument {
                name: "probability",
                detail: format!("prediction {i} is {q}"),
            });
        }
        nll -= if h { q.ln() } else { (1.0 - q).ln() };
    }
    Ok((nll / p.len() as f64).exp())
}

/// Weighted area under the ROC curve: the weighted share of (positive, negative) pairs in which
/// the positive scores higher, ties counted half, each pair weighted `w_pos · w_neg`. Unit
/// weights give [`auc`]. `None` when one class has zero total weight.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::InvalidArgument`] for a negative or non-finite weight.
pub fn weighted_auc(scores: &[f64], labels: &[bool], weights: &[f64]) -> Result<Option<f64>> {
    same_len("scores and labels", scores.len(), labels.len())?;
    same_len("scores and weights", scores.len(), weights.len())?;
    for (i, &w) in weights.iter().enumerate() {
        check_weight(i, w)?;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sweep tie groups from the lowest score: each positive wins against the negative weight
    // below its group and half the negative weight within it.
    let (mut neg_below, mut won, mut w_pos) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let (mut pos, mut neg) = (0.0, 0.0);
        for &k in &idx[i..=j] {
            if labels[k] {
                pos += weights[k];
            } else {
                neg += weights[k];
            }
        }
        won += pos * (neg_below + 0.5 * neg);
        neg_below += neg;
        w_pos += pos;
        i = j + 1;
    }
    if w_pos <= 0.0 || neg_below <= 0.0 {
        return Ok(None);
    }
    Ok(Some(won / (w_pos * neg_below)))
}

/// Weighted binary perplexity `exp(−Σ w log P(observed) / Σ w)`; unit weights give
/// [`binary_perplexity`].
///
/// # Errors
/// As [`binary_perplexity`], [`Error::InvalidArgument`] for a negative or non-finite weight,
/// [`Error::Empty`] when the weights sum to zero.
pub fn weighted_binary_perplexity(p: &[f64], happened: &[bool], weights: &[f64]) -> Result<f64> {
    same_len("probabilities and events", p.len(), happened.len())?;
    same_len("probabilities and weights", p.len(), weights.len())?;
    let (mut nll, mut total) = (0.0, 0.0);
    for (i, ((&q, &h), &w)) in p.iter().zip(happened).zip(weights).enumerate() {
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::InvalidArgument {
                name: "probability",
                detail: format!("prediction {i} is {q}"),
            });
        }
        check_weight(i, w)?;
        if w > 0.0 {
            nll -= w * if h { q.ln() } else { (1.0 - q).ln() };
            total += w;
        }
    }
    if total <= 0.0 {
        return Err(Error::Empty);
    }
    Ok((nll / total).exp())
}
