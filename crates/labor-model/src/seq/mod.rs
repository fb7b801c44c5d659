//! What the sequence models of careers (CAREER, the multinomial logit, bag-of-jobs) share: the
//! vocabularies of states and covariates, the batches, and the two-stage output.
//!
//! # Alignment
//! Position `t` of a worker's sequence predicts record `t`. Its inputs are the state of record
//! `t − 1` (the *begin* token, id `n_states`, at `t = 0`) and the year and education of record
//! `t` itself, the step being predicted, as in the CAREER code (its covariates are read from the
//! target stream). Static covariates (ethnicity, gender, region) are the same at every position.
//!
//! # Covariate vocabularies
//! Every covariate has an explicit *unknown* row, so that a covariate a survey lacks maps to it
//! instead of being dropped: years outside `year_min..=year_max` share one extra row, and
//! [`Education`], [`Ethnicity`], [`Gender`] and [`Region`] each have an `Unknown` variant.
//!
//! # Two-stage output
//! A model emits `n_states + 1` logits per position, clamped to `[−10, 10]`; the last one, `s`, is
//! the "stay" logit. With `p` the previous state,
//! `P(p) = σ(s)` and `P(j ≠ p) = (1 − σ(s)) · exp(z_j) / Σ_{k≠p} exp(z_k)`.
//! At `t = 0` the previous "state" is the begin token, which is not a state of the taxonomy.
//! In fairseq the stay mass then goes to `</s>`, a symbol that can never be observed; here the
//! distribution at `t = 0` is the softmax over the `n_states` logits (the stay logit is
//! ignored), i.e. fairseq's distribution renormalised over the taxonomy. Every reported
//! distribution therefore sums to one over the taxonomy's states.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use labor_model::two_stage_log_probs;
//! let device = Device::default();
//! // 3 states; one position whose previous state is 1, stay logit 0 (σ = 1/2).
//! let logits = Tensor::<1>::from_floats([0.0, 0.0, 0.0, 0.0], &device).reshape([1, 1, 4]);
//! let prev = Tensor::<1, Int>::from_ints([1], &device).reshape([1, 1]);
//! let lp: Vec<f32> = two_stage_log_probs(logits, prev, 3).exp().into_data().try_to_vec().unwrap();
//! assert!((lp[1] - 0.5).abs() < 1e-6 && (lp[0] - 0.25).abs() < 1e-6);
//! ```

use burn::tensor::{Device, Int, Tensor};
use labor_data::{Education, Ethnicity, Gender, Region, Worker};
use serde::{Deserialize, Serialize};

pub mod train;

use crate::error::{Error, Result};

/// Bound of every logit, as in the CAREER code (`transformer_decoder.py`).
pub const LOGIT_CLAMP: f64 = 10.0;

/// The vocabularies of a sequence model: the taxonomy's states plus a begin token, and the
/// covariate tables with their unknown rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqVocab {
    /// Number of states of the taxonomy (ids `0..n_states`).
    pub n_states: usize,
    /// First year with its own embedding row.
    pub year_min: i32,
    /// Last year with its own embedding row.
    pub year_max: i32,
}

impl SeqVocab {
    /// A vocabulary for `n_states` states and the years `year_min..=year_max`.
    pub fn new(n_states: usize, year_min: i32, year_max: i32) -> Self {
        Self {
            n_states,
            year_min,
            year_max,
        }
    }

    /// Id of the begin token (the input at position 0).
    pub fn begin(&self) -> usize {
        self.n_states
    }

    /// Rows of the job input table: the states and the begin token.
    pub fn n_inputs(&self) -> usize {
        self.n_states + 1
    }

    /// Rows of the year table: one per year of the range plus the unknown row (last).
    pub fn n_years(&self) -> usize {
        (i64::from(self.year_max) - i64::from(self.year_min) + 1).max(0) as usize + 1
    }

    /// Checks sizes read from a file: between 1 and [`SeqVocab::MAX_STATES`] states, and a
    /// year range of at most [`SeqVocab::MAX_YEARS`] years with `year_min <= year_max`.
    ///
    /// # Errors
    /// [`Error::UnsupportedConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=Self::MAX_STATES).contains(&self.n_states) {
            return Err(Error::UnsupportedConfig {
                field: "n_states",
                detail: format!(
                    "{} states (1 to {} supported)",
                    self.n_states,
                    Self::MAX_STATES
                ),
            });
        }
        let span = i64::from(self.year_max) - i64::from(self.year_min) + 1;
        if !(1..=Self::MAX_YEARS as i64).contains(&span) {
            return Err(Error::UnsupportedConfig {
                field: "year_min",
                detail: format!(
                    "years {}..={} (a range of 1 to {} years supported)",
                    self.year_min,
                    self.year_max,
                    Self::MAX_YEARS
                ),
            });
        }
        Ok(())
    }

    /// The most states a vocabulary read from a file may have.
    pub const MAX_STATES: usize = 1_000_000;

    /// The longest year range a vocabulary read from a file may cover.
    pub const MAX_YEARS: usize = 10_000;

    /// Row of `year` in the year table (the unknown row when outside the range).
    pub fn year_index(&self, year: i32) -> usize {
        if (self.year_min..=self.year_max).contains(&year) {
            (year - self.year_min) as usize
        } else {
            self.n_years() - 1
        }
    }

    /// Rows of the education table (every category including `Unknown`).
    pub fn n_education() -> usize {
        Education::ALL.len()
    }

    /// Rows of the ethnicity table.
    pub fn n_ethnicity() -> usize {
        Ethnicity::ALL.len()
    }

    /// Rows of the gender table.
    pub fn n_gender() -> usize {
        Gender::ALL.len()
    }

    /// Rows of the region table.
    pub fn n_region() -> usize {
        Region::ALL.len()
    }
}

/// The inputs of a batch of careers on the host, padded on the right to the longest.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Sequences.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
    /// Length of each sequence.
    pub lens: Vec<usize>,
    /// Previous state (begin token at position 0), `[batch * len]`.
    pub prev: Vec<i32>,
    /// The state before the previous one (the begin token where there is none).
    pub prev2: Vec<i32>,
    /// State to predict (0 on padding).
    pub target: Vec<i32>,
    /// Year row of the target record.
    pub year: Vec<i32>,
    /// Education row of the target record.
    pub education: Vec<i32>,
    /// Years the previous state has lasted (run length of identical inputs, from 0; CAREER's
    /// "years in current job"), divided by 10.
    pub tenure: Vec<f32>,
    /// Position in the sequence (CAREER's "total years"), divided by 10.
    pub position: Vec<f32>,
    /// 1 where the target's year does not follow the previous record's year (0 at position 0).
    pub year_gap: Vec<f32>,
    /// 1 where education differs from the previous record's (1 at position 0, as in CAREER).
    pub education_change: Vec<f32>,
    /// 1 on real positions, 0 on padding.
    pub mask: Vec<f32>,
    /// Ethnicity row per sequence.
    pub ethnicity: Vec<i32>,
    /// Gender row per sequence.
    pub gender: Vec<i32>,
    /// Region row per sequence.
    pub region: Vec<i32>,
}

impl HostBatch {
    /// Builds the batch of `workers`.
    ///
    /// # Errors
    /// [`Error::StateOutOfVocabulary`] for a state outside the vocabulary, [`Error::TooLong`] for
    /// a career longer than `max_len`.
    pub fn from_workers(workers: &[&Worker], vocab: &SeqVocab, max_len: usize) -> Result<Self> {
        let len = workers.iter().map(|w| w.records.len()).max().unwrap_or(0);
        let n = workers.len() * len;
        let mut b = HostBatch {
            batch: workers.len(),
            len,
            lens: Vec::with_capacity(workers.len()),
            prev: vec![vocab.begin() as i32; n],
            prev2: vec![vocab.begin() as i32; n],
            target: vec![0; n],
            year: vec![vocab.year_index(i32::MIN) as i32; n],
            education: vec![Education::Unknown.index() as i32; n],
            tenure: vec![0.0; n],
            position: vec![0.0; n],
            year_gap: vec![0.0; n],
            education_change: vec![0.0; n],
            mask: vec![0.0; n],
            ethnicity: Vec::with_capacity(workers.len()),
            gender: Vec::with_capacity(workers.len()),
            region: Vec::with_capacity(workers.len()),
        };
        for (i, w) in workers.iter().enumerate() {
            let t_len = w.records.len();
            if t_len > max_len {
                return Err(Error::TooLong {
                    worker_id: w.id.clone(),
                    tokens: t_len,
                    max: max_len,
                });
            }
            b.lens.push(t_len);
            b.ethnicity.push(w.ethnicity.index() as i32);
            b.gender.push(w.gender.index() as i32);
            b.region.push(w.region.index() as i32);
            let mut run = 0usize;
            for (t, r) in w.records.iter().enumerate() {
                let state = r.state.index();
                if state >= vocab.n_states {
                    return Err(Error::StateOutOfVocabulary {
                        worker_id: w.id.clone(),
                        state,
                        n_states: vocab.n_states,
                    });
                }
                let k = i * len + t;
                b.target[k] = state as i32;
                b.year[k] = vocab.year_index(r.year) as i32;
                b.education[k] = r.education.index() as i32;
                b.mask[k] = 1.0;
                b.position[k] = t as f32 / 10.0;
                if t >= 1 {
                    let p = &w.records[t - 1];
                    b.prev[k] = p.state.index() as i32;
                    if t >= 2 {
                        let pp = &w.records[t - 2];
                        b.prev2[k] = pp.state.index() as i32;
                        run = if pp.state == p.state { run + 1 } else { 0 };
                    }
                    b.year_gap[k] = f32::from(u8::from(r.year - p.year != 1));
                    b.education_change[k] = f32::from(u8::from(r.education != p.education));
                } else {
                    b.education_change[k] = 1.0;
                }
                b.tenure[k] = run as f32 / 10.0;
            }
        }
        Ok(b)
    }

    /// Number of real (unpadded) positions.
    pub fn n_tokens(&self) -> usize {
        self.lens.iter().sum()
    }

    /// Moves the batch to `device`.
    pub fn to_device(&self, device: &Device) -> SeqBatch {
        let (b, t) = (self.batch, self.len);
        let int2 = |v: &[i32]| Tensor::<1, Int>::from_ints(v, device).reshape([b, t]);
        let float2 = |v: &[f32]| Tensor::<1>::from_floats(v, device).reshape([b, t]);
        let int1 = |v: &[i32]| Tensor::<1, Int>::from_ints(v, device);
        SeqBatch {
            prev: int2(&self.prev),
            prev2: int2(&self.prev2),
            target: int2(&self.target),
            year: int2(&self.year),
            education: int2(&self.education),
            tenure: float2(&self.tenure),
            position: float2(&self.position),
            year_gap: float2(&self.year_gap),
            education_change: float2(&self.education_change),
            mask: float2(&self.mask),
            ethnicity: int1(&self.ethnicity),
            gender: int1(&self.gender),
            region: int1(&self.region),
            n_tokens: self.n_tokens(),
        }
    }
}

/// A batch on a device; see [`HostBatch`] for the fields. Shapes `[batch, len]`, statics `[batch]`.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct SeqBatch {
    pub prev: Tensor<2, Int>,
    pub prev2: Tensor<2, Int>,
    pub target: Tensor<2, Int>,
    pub year: Tensor<2, Int>,
    pub education: Tensor<2, Int>,
    pub tenure: Tensor<2>,
    pub position: Tensor<2>,
    pub year_gap: Tensor<2>,
    pub education_change: Tensor<2>,
    pub mask: Tensor<2>,
    pub ethnicity: Tensor<1, Int>,
    pub gender: Tensor<1, Int>,
    pub region: Tensor<1, Int>,
    /// Real positions.
    pub n_tokens: usize,
}

/// A model that maps a batch of careers to two-stage logits.
pub trait SeqModel {
    /// The vocabularies.
    fn vocab(&self) -> &SeqVocab;

    /// Two-stage logits, clamped to `[−10, 10]`.
    ///
    /// # Shapes
    /// - output: `[batch, len, n_states + 1]`, the last column is the stay logit
    fn logits(&self, batch: &SeqBatch) -> Tensor<3>;
}

/// Log-probabilities of every state under the two-stage output (see the module docs).
pub use labor_kernels::ops::two_stage_log_probs;

/// The training loss of the two-stage output: the mean over `batch`'s real positions of
/// `−log P(target)`, equal to `masked_nll(two_stage_log_probs(logits, prev, n_states), batch)`
/// with `n_states` the logits' width less one.
///
/// On burn's CPU backend under autodiff it is one node of the graph, which reads the logits
/// once each way, without the `[batch, len, n_states]` matrix of log-probabilities; elsewhere
/// it is that composition.
///
/// # Shapes
/// - logits: `[batch, len, n_states + 1]`
/// - output: `[1]`
pub fn two_stage_nll(logits: Tensor<3>, batch: &SeqBatch) -> Tensor<1> {
    labor_kernels::ops::two_stage_nll(
        logits,
        batch.prev.clone(),
        batch.target.clone(),
        batch.mask.clone(),
        batch.n_tokens,
    )
}

/// Mean negative log-likelihood (nats per worker-year) of the targets, and its sum.
///
/// # Shapes
/// - log_probs: `[batch, len, n_states]`
/// - output: `[1]`
pub fn masked_nll(log_probs: Tensor<3>, batch: &SeqBatch) -> Tensor<1> {
    labor_kernels::ops::masked_nll(
        log_probs,
        batch.target.clone(),
        batch.mask.clone(),
        batch.n_tokens,
    )
}
