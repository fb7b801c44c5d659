//! The tokenizer a GGUF file describes in its metadata, built as a Hugging Face tokenizer.
//!
//! For GGUF, two tokenizer models are supported:
//! - byte-level BPE (`tokenizer.ggml.model = "gpt2"`, e.g. SmolLM2, Llama-3) with the
//!   pre-tokenizers `gpt2`/`default` (the GPT-2 regex) and `smollm` (every digit split off
//!   first, as llama.cpp does for SmolLM2; transformers' own GGUF converter drops this and
//!   tokenizes digits differently);
//! - SentencePiece-style vocabularies (`"llama"`, e.g. Llama-2, Mistral, TinyLlama): pieces
//!   with `▁` for spaces, a score per piece and `<0xXX>` byte tokens. As in llama.cpp, spaces
//!   become `▁`, one `▁` is prepended (`tokenizer.ggml.add_space_prefix`, default true), the
//!   adjacent pair whose concatenation has the highest score merges first, and characters
//!   outside the vocabulary fall back to their UTF-8 bytes. It is built as a BPE model whose
//!   merges are ranked by the merged piece's score, which is how Hugging Face converts these
//!   vocabularies; equal scores rank by the pieces' ids rather than by position in the text.
//!
//! Control and user-defined tokens (and, for SentencePiece, the unknown token) become special
//! tokens, matched whole in the text.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

use super::{GgufFile, GgufValue};
use crate::error::{Error, Result};
use crate::tokenize::tokenizer::{SPM_SPACE, TextTokenizer, tok_err};

impl TextTokenizer {
    /// Builds the tokenizer a GGUF file describes: byte-level BPE (`tokenizer.ggml.model =
    /// "gpt2"`) or a SentencePiece-style vocabulary with scores (`"llama"`).
    ///
    /// The BOS token comes first when `tokenizer.ggml.add_bos_token` says so (default: false
    /// for gpt2, true for llama). For llama, `tokenizer.ggml.bos_token_id` and
    /// `unknown_token_id` default to 1 and 0, as in llama.cpp.
    ///
    /// # Errors
    /// [`Error::MissingMetadata`] for a missing vocabulary, merges (gpt2) or scores (llama),
    /// [`Error::Tokenizer`] for an unsupported model or pre-tokenizer, or metadata arrays that
    /// disagree in length.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let model = f
            .get("tokenizer.ggml.model")
            .and_then(GgufValue::as_str)
            .ok_or_else(|| missing(f, "tokenizer.ggml.model", "string"))?;
        let tokens = gguf_strings(f, "tokenizer.ggml.tokens")?;
        let types: Option<Vec<u64>> = f
            .get("tokenizer.ggml.token_type")
            .and_then(GgufValue::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| v.as_u64().unwrap_or(TYPE_NORMAL))
                    .collect()
            });
        if let Some(types) = &types {
            one_per_token(f, "token types", types.len(), tokens.len())?;
        }
        // Token types matched as whole special tokens in the text.
        let (mut inner, special_types, default_bos): (_, &[u64], _) = match model {
            "gpt2" => (
                gpt2_tokenizer(f, &tokens)?,
                &[TYPE_CONTROL, TYPE_USER_DEFINED],
                None,
            ),
            "llama" => (
                spm_tokenizer(f, &tokens, types.as_deref())?,
                &[TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER_DEFINED],
                Some(1),
            ),
            other => {
                return Err(Error::Tokenizer {
                    detail: format!(
                        "{}: GGUF tokenizer model `{other}` is not supported (gpt2 and llama are)",
                        f.path().display()
                    ),
                });
            }
        };
        if let Some(types) = &types {
            let special: Vec<AddedToken> = types
                .iter()
                .zip(&tokens)
                .filter(|(t, _)| special_types.contains(t))
                .map(|(_, tok)| AddedToken::from(tok.clone(), true))
                .collect();
            inner
                .add_special_tokens(special)
                .map_err(|e| tok_err(e, "adding special tokens"))?;
        }
        let bos = f
            .get("tokenizer.ggml.bos_token_id")
            .and_then(GgufValue::as_u64)
            .map(|v| v as u32)
            .or(default_bos)
            .filter(|b| (*b as usize) < tokens.len());
        let add_bos = f
            .get("tokenizer.ggml.add_bos_token")
            .and_then(gguf_bool)
            .unwrap_or(model == "llama");
        Ok(Self::from_parts(inner, bos, add_bos))
    }
}

// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TYPE_NORMAL: u64 = 1;
const TYPE_UNKNOWN: u64 = 2;
const TYPE_CONTROL: u64 = 3;
const TYPE_USER_DEFINED: u64 = 4;

fn missing(f: &GgufFile, key: &str, expected: &'static str) -> Error {
    Error::MissingMetadata {
        path: f.path().to_path_buf(),
        key: key.to_string(),
        expected,
    }
}

/// A per-token metadata array (`what`, of length `n`) must have one entry per token.
fn one_per_token(f: &GgufFile, what: &str, n: usize, tokens: usize) -> Result<()> {
    if n == tokens {
        return Ok(());
    }
    Err(Error::Tokenizer {
        detail: format!("{}: {n} {what} for {tokens} tokens", f.path().display()),
    })
}

fn gguf_strings(f: &GgufFile, key: &str) -> Result<Vec<String>> {
    f.get(key)
        .and_then(GgufValue::as_array)
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| missing(f, key, "array of strings"))
}

fn gguf_bool(v: &GgufValue) -> Option<bool> {
    match v {
        GgufValue::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Byte-level BPE with the GGUF's merges and pre-tokenizer.
fn gpt2_tokenizer(f: &GgufFile, tokens: &[String]) -> Result<Tokenizer> {
    let merges: Vec<(String, String)> = gguf_strings(f, "tokenizer.ggml.merges")?
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
    Ok(inner)
}

/// A SentencePiece-style vocabulary as BPE.
///
/// llama.cpp's SPM tokenizer starts from the characters of the text (spaces replaced by `▁`,
/// one `▁` prepended) and merges, again and again, the adjacent pair whose concatenation is the
/// vocabulary token with the highest score; characters outside the vocabulary become their
/// UTF-8 bytes `<0xXX>`. As BPE: every split of a normal token into two normal tokens is a
/// merge, ranked by the token's score (highest first), with byte fallback.
fn spm_tokenizer(f: &GgufFile, tokens: &[String], types: Option<&[u64]>) -> Result<Tokenizer> {
    let key = "tokenizer.ggml.scores";
    let scores: Vec<f64> = f
        .get(key)
        .and_then(GgufValue::as_array)
        .and_then(|a| a.iter().map(GgufValue::as_f64).collect::<Option<Vec<_>>>())
        .ok_or_else(|| missing(f, key, "array of numbers"))?;
    one_per_token(f, "scores", scores.len(), tokens.len())?;
    let unk = f
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(GgufValue::as_u64)
        .unwrap_or(0);
    let unk_token = usize::try_from(unk)
        .ok()
        .and_then(|i| tokens.get(i))
        .ok_or_else(|| Error::Tokenizer {
            detail: format!(
                "{}: unknown token id {unk} is outside the {} tokens",
                f.path().display(),
                tokens.len()
            ),
        })?;
    // Only normal and user-defined pieces take part in merges (never control, unknown,
    // unused or byte tokens, which SentencePiece does not build from characters).
    let mergeable: Vec<bool> = (0..tokens.len())
        .map(|i| types.is_none_or(|t| matches!(t[i], TYPE_NORMAL | TYPE_USER_DEFINED)))
        .collect();
    let merges = spm_merges(tokens, &scores, &mergeable);
    // The first of duplicate pieces wins, as in llama.cpp's `token_to_id`.
    let mut vocab = tokenizers::models::bpe::Vocab::default();
    for (i, t) in tokens.iter().enumerate() {
        vocab.entry(t.clone()).or_insert(i as u32);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk_token.clone())
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| tok_err(e, "building BPE"))?;
    let prefix = f
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(gguf_bool)
        .unwrap_or(true);
    let mut tok = Tokenizer::new(bpe);
    let space = Replace::new(" ", SPM_SPACE).map_err(|e| tok_err(e, "normalizer"))?;
    let normalizer: NormalizerWrapper = if prefix {
        NormalizerSequence::new(vec![Prepend::new(SPM_SPACE.into()).into(), space.into()]).into()
    } else {
        space.into()
    };
    tok.with_normalizer(Some(normalizer))
        .map_err(|e| tok_err(e, "normalizer"))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new(SPM_SPACE, " ")
            .map_err(|e| tok_err(e, "decoder"))?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tok.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tok)
}

/// The BPE merges of a SentencePiece vocabulary: `(left, right)` for every mergeable token that
/// splits into two mergeable tokens, ranked by the merged token's score, highest first. Ties
/// (e.g. Llama-2's whitespace runs, all at -1e9) go by the left token's id, then the right
/// one's, as Hugging Face's `SentencePieceExtractor` orders them.
fn spm_merges(tokens: &[String], scores: &[f64], mergeable: &[bool]) -> Vec<(String, String)> {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if mergeable[i] {
            ids.entry(t.as_str()).or_insert(i);
        }
    }
    let mut merges: Vec<(usize, usize, usize)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if ids.get(t.as_str()) != Some(&i) {
            continue;
        }
        for (k, _) in t.char_indices().skip(1) {
            if let (Some(l), Some(r)) = (ids.get(&t[..k]), ids.get(&t[k..])) {
                merges.push((*l, *r, i));
            }
        }
    }
    merges.sort_by(|a, b| {
        scores[b.2]
            .total_cmp(&scores[a.2])
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (tokens[l].clone(), tokens[r].clone()))
        .collect()
}
