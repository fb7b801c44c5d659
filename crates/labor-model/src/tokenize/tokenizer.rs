//! Tokenizers: Hugging Face `tokenizer.json` files, or built from a GGUF file's metadata.
//!
//! The GGUF side is `crate::checkpoint::gguf::tokenizer` (`TextTokenizer::from_gguf`).

use std::path::Path;

use tokenizers::normalizers::Sequence as NormalizerSequence;
use tokenizers::{NormalizerWrapper, Tokenizer};

use crate::error::{Error, Result};

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
    /// SentencePiece with a space prefix (from GGUF or a `tokenizer.json`): the same tokenizer
    /// without the prefix, for text that continues a document.
    continuation: Option<Tokenizer>,
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

pub(crate) fn tok_err(source: impl std::fmt::Display, what: &str) -> Error {
    Error::Tokenizer {
        detail: format!("{what}: {source}"),
    }
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`; the BOS token is whatever its post-processor adds.
    ///
    /// The file is parsed as JSON first, so that a syntax error is reported with its line and
    /// column (the `tokenizers` crate panics on some malformed files instead of returning an
    /// error; such a panic is also caught and reported as an error).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Tokenizer`] naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| tok_err(e, &name))?;
        let parsed = std::panic::catch_unwind(|| text.parse::<Tokenizer>()).map_err(|p| {
            Error::Tokenizer {
                detail: format!(
                    "{name}: not a tokenizer the tokenizers crate can read ({})",
                    labor_data::panic_message(p.as_ref())
                ),
            }
        })?;
        let inner = parsed.map_err(|e| tok_err(e, &name))?;
        Ok(Self {
            continuation: without_space_prefix(&inner),
            inner,
            bos: None,
            add_bos: false,
        })
    }

    /// A tokenizer of `inner` with `bos` as its BOS token, put first when `add_bos` (the
    /// checkpoint readers build tokenizers from their metadata with it).
    pub(crate) fn from_parts(inner: Tokenizer, bos: Option<u32>, add_bos: bool) -> Self {
        Self {
            continuation: without_space_prefix(&inner),
            inner,
            bos,
            add_bos: add_bos && bos.is_some(),
        }
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
    /// Offsets are spans of `text` itself. The `▁` a SentencePiece tokenizer prepends covers
    /// no text: a token made of it alone gets an empty span at the position it precedes.
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
        if self.continuation.is_some()
            && let Some(space) = self.inner.token_to_id(SPM_SPACE)
        {
            // The prepended `▁` shares the span of the character it precedes (tokenizers aligns
            // it so); alone in a token it is followed by a token starting at the same byte. A `▁`
            // from a space of the text is followed by the next byte instead.
            for i in 0..ids.len().saturating_sub(1) {
                let (s, e) = offsets[i];
                if ids[i] == space && e > s && offsets[i + 1].0 == s {
                    offsets[i] = (s, s);
                }
            }
        }
        Ok(Encoded { ids, offsets })
    }

    /// Encodes `text` as a continuation: no BOS token, whatever the tokenizer's convention, and
    /// no SentencePiece space prefix (`" Cooks"` gives the tokens it has inside a document).
    ///
    /// # Errors
    /// [`Error::Tokenizer`].
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .continuation
            .as_ref()
            .unwrap_or(&self.inner)
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
            continuation: without_space_prefix(&inner),
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

/// SentencePiece's visible space, U+2581.
pub(crate) const SPM_SPACE: &str = "\u{2581}";

/// For a SentencePiece-style tokenizer whose normalizer prepends `▁` (alone or in a
/// sequence, as in Llama-2's and Mistral's `tokenizer.json`), the same tokenizer without it.
fn without_space_prefix(tok: &Tokenizer) -> Option<Tokenizer> {
    let is_prefix = |n: &NormalizerWrapper| matches!(n, NormalizerWrapper::Prepend(p) if p.prepend == SPM_SPACE);
    let normalizer: Option<NormalizerWrapper> = match tok.get_normalizer()? {
        NormalizerWrapper::Sequence(seq) if seq.as_ref().iter().any(is_prefix) => {
            let kept: Vec<NormalizerWrapper> = seq
                .as_ref()
                .iter()
                .filter(|n| !is_prefix(n))
                .cloned()
                .collect();
            Some(NormalizerSequence::new(kept).into())
        }
        n if is_prefix(n) => None,
        _ => return None,
    };
    let mut out = tok.clone();
    out.with_normalizer(normalizer).ok()?;
    Some(out)
}
