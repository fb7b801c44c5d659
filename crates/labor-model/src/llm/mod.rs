//! The Llama-family language model: its configuration, the model on burn, LoRA, and the memory
//! planner. Training it is [`crate::finetune`]'s job, reading and writing it
//! [`crate::checkpoint`]'s, scoring text with it [`crate::score`]'s.

pub(crate) mod config;
pub(crate) mod lora;
pub(crate) mod model;
pub(crate) mod plan;
