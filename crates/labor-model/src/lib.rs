#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
pub mod gguf;
mod hf;
mod loader;
mod model;
mod predict;
mod score;
mod tokenizer;

pub use config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use error::{Error, Result};
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use hf::{load_hf, save_hf};
pub use loader::{gguf_config, load_gguf, load_model, unpermute_qk_rows};
pub use model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
pub use predict::{LlmPredictor, Predictor, StepPrediction, predict_panel};
pub use score::{Distribution, Scorer};
pub use tokenizer::{Encoded, TextTokenizer};
