#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod model;

pub use config::{HfRopeScaling, LlamaConfig, LlamaHfConfig, RopeScaling};
pub use error::{Error, Result};
pub use model::{
    Attention, AttentionConfig, Block, FeedForward, FeedForwardConfig, KvCache, Llama,
    rope_inv_freq,
};
