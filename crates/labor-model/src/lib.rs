#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod baselines;
pub mod career;
mod config;
mod error;
pub mod gguf;
mod hf;
mod loader;
mod model;
mod models;
mod predict;
mod pretrain;
mod score;
pub mod seq;
mod tokenizer;
pub mod train;

pub use baselines::bag_of_jobs::{BagOfJobs, BagOfJobsConfig};
pub use baselines::empirical::Empirical;
pub use baselines::logit::{Logit, LogitConfig};
pub use career::{Career, CareerConfig};
pub use config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use error::{Error, Result};
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use hf::{load_hf, save_hf};
pub use loader::{gguf_config, load_gguf, load_llm, unpermute_qk_rows};
pub use model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
pub use models::{
    CareerSize, ModelKind, ModelMeta, SeqPredictor, TrainBuilder, TrainedModel, Trainer,
    load_model, read_meta, save_model, year_range,
};
pub use predict::{LlmPredictor, Predictor, StepPrediction, predict_panel};
pub use pretrain::resume_corpus;
pub use score::{Distribution, Scorer};
pub use seq::{HostBatch, SeqBatch, SeqModel, SeqVocab, masked_nll, two_stage_log_probs};
pub use tokenizer::{Encoded, TextTokenizer};
pub use train::{TrainEvent, TrainOptions, TrainSummary};
