//! Tokenizers: Hugging Face `tokenizer.json` files, or built from a GGUF file's metadata.
//!
//! For GGUF, the byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`) are supported
//! with the pre-tokenizers `gpt2`/`default` (the GPT-2 regex) and `smollm` (every digit split
//! off first, as llama.cpp does for SmolLM2; transformers' own GGUF converter drops this and
//! tokenizes digits differently). Control and user-defined tokens become special tokens.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, GgufValue};

/// Token ids with the byte span of each token in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids (with the BOS token first when the tokenizer adds one).
    pub ids: Vec<u32>,
    /// Byte range of each token in the text (`(0, 0)` for an added BOS).
    pub offsets: Vec<(usize, usize)>,
}

/// A tokenizer with its beginning-of-sequence convention.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    add_bos: bool,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

fn tok_err(source: impl std::fmt::Display, what: &str) -> Error {
    Error::Tokenizer {
        detail: format!("{what}: {source}"),
    }
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`; the BOS token is whatever its post-processor adds.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner =
            Tokenizer::from_file(path).map_err(|e| tok_err(e, &path.display().to_string()))?;
        Ok(Self {
            inner,
            bos: None,
            add_bos: false,
        })
    }

    /// Builds the tokenizer a GGUF file describes.
    ///
    /// # Errors
    /// [`Error::MissingMetadata`] for missing vocabulary or merges, [`Error::Tokenizer`] for an
    /// unsupported model or pre-tokenizer.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let missing = |key: &str, expected| Error::MissingMetadata {
            path: f.path().to_path_buf(),
            key: key.to_string(),
            expected,
        };
        let model = f
            .get("tokenizer.ggml.model")
            .and_then(GgufValue::as_str)
            .ok_or_else(|| missing("tokenizer.ggml.model", "string"))?;
        if model != "gpt2" {
            return Err(Error::Tokenizer {
                detail: format!(
                    "{}: GGUF tokenizer model `{model}` is not supported yet (gpt2 is)",
                    f.path().display()
                ),
            });
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            f.get(key)
                .and_then(GgufValue::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| missing(key, "array of strings"))
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .into_iter()
            .filter_map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect();
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| tok_err(e, "building BPE"))?;
        let mut inner = Tokenizer::new(bpe);
        let pre = f
            .get("tokenizer.ggml.pre")
            .and_then(GgufValue::as_str)
            .unwrap_or("default");
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "default" | "gpt2" => byte_level.into(),
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            other => {
                return Err(Error::Tokenizer {
                    detail: format!(
                        "{}: GGUF pre-tokenizer `{other}` is not supported yet (gpt2, smollm are)",
                        f.path().display()
                    ),
                });
            }
        };
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        // Control (3) and user-defined (4) tokens match as whole special tokens.
        if let Some(types) = f
            .get("tokenizer.ggml.token_type")
            .and_then(GgufValue::as_array)
        {
            let special: Vec<AddedToken> = types
                .iter()
                .zip(&tokens)
                .filter(|(t, _)| matches!(t.as_u64(), Some(3 | 4)))
                .map(|(_, tok)| AddedToken::from(tok.clone(), true))
                .collect();
            inner
                .add_special_tokens(special)
                .map_err(|e| tok_err(e, "adding special tokens"))?;
        }
        let bos = f
            .get("tokenizer.ggml.bos_token_id")
            .and_then(GgufValue::as_u64)
            .map(|v| v as u32);
        let add_bos = f.get("tokenizer.ggml.add_bos_token").and_then(|v| match v {
            GgufValue::Bool(b) => Some(*b),
            _ => None,
        });
        Ok(Self {
            inner,
            bos,
            add_bos: add_bos.unwrap_or(false) && bos.is_some(),
        })
    }

    /// Whether encoding starts with the BOS token.
    #[must_use]
    pub fn with_bos(mut self, on: bool) -> Self {
        self.add_bos = on && self.bos.is_some();
        self
    }

    /// The BOS token id, if the vocabulary has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encodes `text` (no post-processing templates) with byte offsets.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err(e, "encoding"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        let mut offsets = Vec::with_capacity(enc.len() + 1);
        if self.add_bos
            && let Some(b) = self.bos
        {
            ids.push(b);
            offsets.push((0, 0));
        }
        ids.extend_from_slice(enc.get_ids());
        offsets.extend_from_slice(enc.get_offsets());
        Ok(Encoded { ids, offsets })
    }

    /// Encodes `text` as a continuation: no BOS token, whatever the tokenizer's convention.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err(e, "encoding"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids back to text.
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| tok_err(e, "decoding"))
    }
}

impl TextTokenizer {
    /// Wraps a Hugging Face tokenizer (no BOS token), e.g. one trained by
    /// [`BpeTrainerBuilder`](crate::BpeTrainerBuilder).
    pub fn from_tokenizer(inner: Tokenizer) -> Self {
        Self {
            inner,
            bos: None,
            add_bos: false,
        }
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json` (write to a temporary file, then
    /// rename). The BOS convention is not part of the file.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] or [`Error::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tmp = path.with_extension("json.tmp");
        self.inner
            .save(&tmp, true)
            .map_err(|e| tok_err(e, &tmp.display().to_string()))?;
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
