//! Text to tokens: `tokenizer.json` and GGUF vocabularies with byte offsets, and a byte-level
//! BPE trainer for the model trained from scratch.

pub(crate) mod bpe;
pub(crate) mod tokenizer;
