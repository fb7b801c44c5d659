#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod baselines;
mod bpe;
pub mod career;
mod config;
mod consistency;
mod error;
mod finetune;
pub mod gguf;
mod hf;
#[cfg(test)]
mod kernel_agreement;
mod loader;
mod lora;
mod mapped;
mod model;
mod models;
mod plan;
mod predict;
mod score;
mod scratch;
pub mod seq;
mod speed;
mod texts;
mod tokenizer;
pub mod train;

pub use baselines::bag_of_jobs::{BagOfJobs, BagOfJobsConfig};
pub use baselines::empirical::Empirical;
pub use baselines::logit::{Logit, LogitConfig};
pub use bpe::{BpeTrainer, BpeTrainerBuilder, END_OF_TEXT};
pub use career::{Career, CareerConfig};
pub use config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use error::{Error, Result};
pub use finetune::{
    CurveRow, Finetune, FinetuneBuilder, FinetuneOptions, FinetuneReport, LinearSchedule, LossOn,
    Progress, SCALED_MAX_EPOCHS, SCALED_MIN_UPDATES, render_resumes, title_perplexity,
};
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use hf::{load_hf, save_hf};
pub use loader::{gguf_config, load_gguf, load_llm, unpermute_qk_rows};
pub use lora::{LoraOptions, LoraTarget, apply_lora, merge_lora, seed_adapters};
pub use model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
pub use models::{
    CareerSize, ModelKind, ModelMeta, SeqPredictor, TrainBuilder, TrainedModel, Trainer,
    load_model, read_meta, save_model, year_range,
};
pub use plan::{MemoryPlan, MemoryPlanBuilder, PlanMode, PlanPrecision, gib};
pub use predict::{LlmPredictor, Predictor, StepPrediction, TruthPredictor, predict_panel};
pub use score::{Distribution, Scorer, TitleScore};
pub use scratch::{Scratch, ScratchBuilder, ScratchReport};
pub use seq::{
    HostBatch, SeqBatch, SeqModel, SeqVocab, masked_nll, two_stage_log_probs, two_stage_nll,
};
pub use speed::{
    DistributionSpeed, ForwardSpeed, ScoringSpeed, distribution_speed, forward_speed,
    scoring_speed, timed,
};
pub use texts::{FreeMass, TextScores, score_texts};
pub use tokenizer::{Encoded, TextTokenizer};
pub use train::{EarlyStopping, TrainEvent, TrainOptions, TrainSummary};

/// Whether the crate's own CPU kernels run for inference on the flex device: the CPU has AVX2
/// and FMA, and `LABOR_CPU_KERNELS` is not `0` (see the crate documentation).
pub fn cpu_kernels() -> bool {
    labor_kernels::enabled()
}
