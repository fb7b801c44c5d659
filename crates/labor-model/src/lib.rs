#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod baselines;
pub mod career;
mod checkpoint;
mod device;
mod error;
mod finetune;
#[cfg(test)]
mod kernel_agreement;
mod llm;
mod load;
mod registry;
mod rundir;
mod score;
pub mod seq;
mod shard;
mod tokenize;

pub use checkpoint::gguf;
pub use seq::train;

pub use baselines::bag_of_jobs::{BagOfJobs, BagOfJobsConfig};
pub use baselines::empirical::Empirical;
pub use baselines::logit::{Logit, LogitConfig};
pub use career::{Career, CareerConfig};
pub use checkpoint::gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use checkpoint::hf::{load_hf, save_hf};
pub use checkpoint::loader::{gguf_config, llm_config, load_gguf, load_llm, unpermute_qk_rows};
pub use device::{backends, check_device, device_named, devices_named, devices_or_default};
pub use error::{Error, Result};
pub use finetune::job::{BaseModel, FinetuneJob, FinetuneJobBuilder, JobReport, JobSummary};
pub use finetune::scratch::{Scratch, ScratchBuilder, ScratchReport};
pub use finetune::{
    Finetune, FinetuneBuilder, FinetuneOptions, FinetuneReport, LinearSchedule, LossOn,
    SCALED_MAX_EPOCHS, SCALED_MIN_UPDATES, load_base, render_resumes, title_perplexity,
};
pub use llm::config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use llm::lora::{LoraOptions, LoraTarget, apply_lora, merge_lora, seed_adapters};
pub use llm::model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
pub use llm::plan::{
    MemoryPlan, MemoryPlanBuilder, PlanGrid, PlanMode, PlanPrecision, PlanRow, gib, plans_table,
};
pub use load::{LoadedModel, load_predictor, model_name};
pub use registry::{
    CareerSize, ModelKind, ModelMeta, SeqPredictor, TrainBuilder, TrainedModel, Trainer,
    load_model, read_meta, save_model, year_range,
};
pub use rundir::{CurveRow, Progress};
pub use score::predict::{LlmPredictor, Predictor, StepPrediction, TruthPredictor, predict_panel};
pub use score::speed::{
    DistributionSpeed, ForwardSpeed, ScoringSpeed, distribution_speed, forward_speed, scoring_speed,
};
pub use score::texts::{FreeMass, TextScores, score_texts};
pub use score::{Distribution, Scorer, TitleScore};
pub use seq::{
    HostBatch, SeqBatch, SeqModel, SeqVocab, masked_nll, two_stage_log_probs, two_stage_nll,
};
pub use shard::{
    ShardedScoring, predict_panel_sharded, score_texts_sharded, shard_ranges, title_continuations,
};
pub use tokenize::bpe::{BpeTrainer, BpeTrainerBuilder, END_OF_TEXT};
pub use tokenize::tokenizer::{Encoded, TextTokenizer};
pub use train::{EarlyStopping, TrainOptions, TrainSummary};

/// Whether the crate's own CPU kernels run for inference on the flex device: the CPU has AVX2
/// and FMA, and `LABOR_CPU_KERNELS` is not `0` (see the crate documentation).
pub fn cpu_kernels() -> bool {
    labor_kernels::enabled()
}
