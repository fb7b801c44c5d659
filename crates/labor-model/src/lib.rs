#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bpe;
mod config;
mod error;
mod finetune;
pub mod gguf;
mod hf;
mod loader;
mod lora;
mod mixture;
mod model;
mod predict;
mod score;
mod scratch;
mod tokenizer;

pub use bpe::{BpeTrainer, BpeTrainerBuilder, END_OF_TEXT};
pub use config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use error::{Error, Result};
pub use finetune::{
    CurveRow, Finetune, FinetuneBuilder, FinetuneReport, LinearSchedule, LossOn, Progress,
    TrainOptions, render_resumes, title_perplexity,
};
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use hf::{load_hf, save_hf};
pub use loader::{gguf_config, load_gguf, unpermute_qk_rows};
pub use lora::{LoraOptions, LoraTarget, apply_lora, merge_lora};
pub use mixture::MixtureBuilder;
pub use model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
pub use predict::{Predictor, StepPrediction, predict_panel};
pub use score::Scorer;
pub use scratch::{Scratch, ScratchBuilder, ScratchReport};
pub use tokenizer::{Encoded, TextTokenizer};
