//! The multinomial logit of the CAREER code's regression baseline (`models/regression.py`,
//! `--arch regression --two-stage` with every feature flag):
//!
//! ```text
//! z_t = b + W_cur[prev_t] + W_prev[prev2_t] + tenure_t·w₁ + position_t·w₂ + gap_t·w₃
//!       + W_year[year_t] + W_edu[edu_t] + edu_change_t·w₄ + W_eth + W_gender + W_region
//! ```
//!
//! Every table holds one coefficient per outcome (`n_states + 1` columns, the last for the stay
//! logit), so the model is linear in one-hot features; logits are clamped to `[−10, 10]` and go
//! through the two-stage output. Features (see [`crate::HostBatch`]): `tenure` = years the
//! previous state has lasted, `position` = years observed so far (both divided by 10),
//! `gap` = 1 when the year does not follow the previous record's, `edu_change` = 1 when
//! education changed (1 at the first record). The state two records back uses the begin row
//! where there is none (the original pads it to a zero row). Coefficients start at zero and are
//! fitted by maximum likelihood with Adam (weight decay 0.01, as in the original, and no other
//! penalty).

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::checkpoint::consistency::{embedding_params, linear_params};
use crate::seq::{LOGIT_CLAMP, SeqBatch, SeqModel, SeqVocab};

/// Configuration of [`Logit`].
#[derive(Config, Debug, PartialEq)]
pub struct LogitConfig {
    /// The vocabularies.
    pub vocab: SeqVocab,
}

impl LogitConfig {
    /// The number of parameters [`LogitConfig::init`] allocates (computed without allocating).
    pub fn num_params(&self) -> u64 {
        let out = self.vocab.n_states + 1;
        [
            self.vocab.n_inputs(),
            self.vocab.n_inputs(),
            self.vocab.n_years(),
            SeqVocab::n_education(),
            SeqVocab::n_ethnicity(),
            SeqVocab::n_gender(),
            SeqVocab::n_region(),
        ]
        .into_iter()
        .map(|rows| embedding_params(rows, out))
        .chain([linear_params(4, out, true)])
        .fold(0, u64::saturating_add)
    }

    /// Initialises every coefficient at zero (the uniform distribution, stay probability 1/2).
    pub fn init(&self, device: &Device) -> Logit {
        let out = self.vocab.n_states + 1;
        let table = |rows: usize| {
            EmbeddingConfig::new(rows, out)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        Logit {
            current: table(self.vocab.n_inputs()),
            previous: table(self.vocab.n_inputs()),
            year: table(self.vocab.n_years()),
            education: table(SeqVocab::n_education()),
            ethnicity: table(SeqVocab::n_ethnicity()),
            gender: table(SeqVocab::n_gender()),
            region: table(SeqVocab::n_region()),
            numeric: LinearConfig::new(4, out)
                .with_initializer(Initializer::Zeros)
                .init(device),
            vocab: self.vocab.clone(),
        }
    }
}

/// The multinomial logit.
#[derive(Module, Debug)]
pub struct Logit {
    /// Coefficients of the current (previous-record) state.
    pub current: Embedding,
    /// Coefficients of the state two records back.
    pub previous: Embedding,
    /// Coefficients of the year.
    pub year: Embedding,
    /// Coefficients of education.
    pub education: Embedding,
    /// Coefficients of ethnicity.
    pub ethnicity: Embedding,
    /// Coefficients of gender.
    pub gender: Embedding,
    /// Coefficients of region.
    pub region: Embedding,
    /// Intercepts and the coefficients of tenure, position, year gap and education change.
    pub numeric: Linear,
    #[module(skip)]
    vocab: SeqVocab,
}

pub(crate) fn static_term(e: &Embedding, ids: &Tensor<1, Int>, t: usize) -> Tensor<3> {
    let b = ids.dims()[0];
    let out = e.weight.dims()[1];
    e.forward(ids.clone().reshape([b, 1])).expand([b, t, out])
}

impl SeqModel for Logit {
    fn vocab(&self) -> &SeqVocab {
        &self.vocab
    }

    /// # Shapes
    /// - output: `[batch, len, n_states + 1]`
    fn logits(&self, batch: &SeqBatch) -> Tensor<3> {
        let [b, t] = batch.prev.dims();
        let numeric = Tensor::stack::<3>(
            vec![
                batch.tenure.clone(),
                batch.position.clone(),
                batch.year_gap.clone(),
                batch.education_change.clone(),
            ],
            2,
        );
        debug_assert_eq!(numeric.dims(), [b, t, 4]);
        (self.current.forward(batch.prev.clone())
            + self.previous.forward(batch.prev2.clone())
            + self.year.forward(batch.year.clone())
            + self.education.forward(batch.education.clone())
            + static_term(&self.ethnicity, &batch.ethnicity, t)
            + static_term(&self.gender, &batch.gender, t)
            + static_term(&self.region, &batch.region, t)
            + self.numeric.forward(numeric))
        .clamp(-LOGIT_CLAMP, LOGIT_CLAMP)
    }
}
