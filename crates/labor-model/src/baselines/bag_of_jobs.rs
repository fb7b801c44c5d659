//! Bag-of-jobs, the CAREER code's non-sequential neural baseline (`models/bag_of_jobs.py`,
//! `--arch bag_of_jobs --two-stage`):
//!
//! ```text
//! z_t = A·E_cur[prev_t] + B·mean(E_ctx[<s>, prev_0 .. prev_{t−1}])
//!     + C·E_year[year_t] + D·mean(E_year′[<s>, year_0 .. year_{t−1}])
//!     + F·E_edu[edu_t]  + G·mean(E_edu′[<s>, edu_0 .. edu_{t−1}])
//!     + H·E_eth + I·E_gender + J·E_region
//! ```
//!
//! Each term has its own embedding table (width `d_embed`, 1024 in the paper) and its own
//! bias-free linear map to the `n_states + 1` two-stage logits, clamped to `[−10, 10]`. The
//! context means include a learned start row (`<s>`, the table's last row) and divide by `t + 1`,
//! as in the original.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::checkpoint::consistency::{embedding_params, linear_params};
use crate::seq::{LOGIT_CLAMP, SeqBatch, SeqModel, SeqVocab};

/// Configuration of [`BagOfJobs`].
#[derive(Config, Debug, PartialEq)]
pub struct BagOfJobsConfig {
    /// The vocabularies.
    pub vocab: SeqVocab,
    /// Embedding width (1024 in the paper).
    #[config(default = 1024)]
    pub d_embed: usize,
}

impl BagOfJobsConfig {
    /// A small model for tests and the quickstart (`d_embed` 64).
    pub fn small(vocab: SeqVocab) -> Self {
        Self::new(vocab).with_d_embed(64)
    }

    /// The number of parameters [`BagOfJobsConfig::init`] allocates (computed without
    /// allocating).
    pub fn num_params(&self) -> u64 {
        let (d, out, v) = (self.d_embed, self.vocab.n_states + 1, &self.vocab);
        [
            v.n_inputs(),
            v.n_inputs() + 1,
            v.n_years(),
            v.n_years() + 1,
            SeqVocab::n_education(),
            SeqVocab::n_education() + 1,
            SeqVocab::n_ethnicity(),
            SeqVocab::n_gender(),
            SeqVocab::n_region(),
        ]
        .into_iter()
        .map(|rows| embedding_params(rows, d).saturating_add(linear_params(d, out, false)))
        .fold(0, u64::saturating_add)
    }

    /// Initialises the model (embeddings `N(0, d^-1/2)`, maps with the default init).
    pub fn init(&self, device: &Device) -> BagOfJobs {
        let d = self.d_embed;
        let out = self.vocab.n_states + 1;
        let term = |rows: usize| BagTerm {
            embedding: EmbeddingConfig::new(rows, d)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: (d as f64).powf(-0.5),
                })
                .init(device),
            map: LinearConfig::new(d, out).with_bias(false).init(device),
        };
        let v = &self.vocab;
        BagOfJobs {
            current: term(v.n_inputs()),
            context: term(v.n_inputs() + 1),
            year: term(v.n_years()),
            year_context: term(v.n_years() + 1),
            education: term(SeqVocab::n_education()),
            education_context: term(SeqVocab::n_education() + 1),
            ethnicity: term(SeqVocab::n_ethnicity()),
            gender: term(SeqVocab::n_gender()),
            region: term(SeqVocab::n_region()),
            vocab: v.clone(),
        }
    }
}

/// One embedding table and its map to the logits.
#[derive(Module, Debug)]
pub struct BagTerm {
    /// The table.
    pub embedding: Embedding,
    /// The bias-free map to the logits.
    pub map: Linear,
}

impl BagTerm {
    /// # Shapes
    /// - ids: `[batch, len]`; output: `[batch, len, n_states + 1]`
    fn direct(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.map.forward(self.embedding.forward(ids))
    }

    /// The mean of the start row and the rows of `ids` before each position.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`; output: `[batch, len, n_states + 1]`
    fn context(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let start = self.embedding.weight.dims()[0] as i64 - 1;
        let device = ids.device();
        let first = Tensor::<2, Int>::full([b, 1], start, &device);
        let shifted = if t > 1 {
            Tensor::cat(vec![first, ids.narrow(1, 0, t - 1)], 1)
        } else {
            first
        };
        let e = self.embedding.forward(shifted).cumsum(1);
        let count: Vec<f32> = (1..=t).map(|i| 1.0 / i as f32).collect();
        let inv = Tensor::<1>::from_floats(count.as_slice(), &device).reshape([1, t, 1]);
        self.map.forward(e * inv)
    }
}

/// The bag-of-jobs model.
#[derive(Module, Debug)]
pub struct BagOfJobs {
    /// The current (previous-record) state.
    pub current: BagTerm,
    /// The mean of the earlier states.
    pub context: BagTerm,
    /// The year of the predicted record.
    pub year: BagTerm,
    /// The mean of the earlier years.
    pub year_context: BagTerm,
    /// The education of the predicted record.
    pub education: BagTerm,
    /// The mean of the earlier educations.
    pub education_context: BagTerm,
    /// Ethnicity.
    pub ethnicity: BagTerm,
    /// Gender.
    pub gender: BagTerm,
    /// Region.
    pub region: BagTerm,
    #[module(skip)]
    vocab: SeqVocab,
}

impl SeqModel for BagOfJobs {
    fn vocab(&self) -> &SeqVocab {
        &self.vocab
    }

    /// # Shapes
    /// - output: `[batch, len, n_states + 1]`
    fn logits(&self, batch: &SeqBatch) -> Tensor<3> {
        let [b, t] = batch.prev.dims();
        let out = self.vocab.n_states + 1;
        let stat = |term: &BagTerm, ids: &Tensor<1, Int>| {
            term.direct(ids.clone().reshape([b, 1])).expand([b, t, out])
        };
        (self.current.direct(batch.prev.clone())
            + self.context.context(batch.prev.clone())
            + self.year.direct(batch.year.clone())
            + self.year_context.context(batch.year.clone())
            + self.education.direct(batch.education.clone())
            + self.education_context.context(batch.education.clone())
            + stat(&self.ethnicity, &batch.ethnicity)
            + stat(&self.gender, &batch.gender)
            + stat(&self.region, &batch.region))
        .clamp(-LOGIT_CLAMP, LOGIT_CLAMP)
    }
}
