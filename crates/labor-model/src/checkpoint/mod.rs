//! Checkpoints in and out: GGUF files (reader and `f32` writer), Hugging Face directories
//! (safetensors and `config.json`), memory-mapped loading, and the consistency checks every
//! checkpoint passes before anything is allocated.

pub(crate) mod consistency;
pub mod gguf;
pub(crate) mod hf;
pub(crate) mod loader;
pub(crate) mod mapped;
