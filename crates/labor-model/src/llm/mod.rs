//! The Llama-family language model: its configuration, the model on burn, LoRA, fine-tuning and
//! the small model trained from scratch, the memory planner, and speed measurements.

pub(crate) mod config;
pub(crate) mod finetune;
pub(crate) mod job;
pub(crate) mod lora;
pub(crate) mod model;
pub(crate) mod plan;
pub(crate) mod scratch;
pub(crate) mod speed;
