//! Training a byte-level BPE tokenizer (GPT-2 style: bytes mapped to printable characters, the
//! GPT-2 pre-tokenization regex, merges learnt by frequency) on a corpus, with the Hugging Face
//! `tokenizers` crate. The embedded default model of the quickstart uses one trained on the
//! training resumes.
//!
//! Offsets are not trimmed (no post-processor), so a continuation `" Title\n"` starts and ends on
//! token boundaries, as the [`Scorer`](crate::Scorer) requires.
//!
//! [`BpeTrainerBuilder::with_whole_tokens`] adds pieces that are always one token wherever they
//! occur, such as `" {title}"` for every title of a taxonomy: a small model trained from scratch
//! then predicts a title in one step instead of spelling it out over several BPE tokens.
//!
//! ```
//! use labor_model::BpeTrainerBuilder;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let texts = vec!["1990: Cooks\n1991: Cooks\n".to_string(); 20];
//! let tok = BpeTrainerBuilder::new(300).build()?.train(&texts)?;
//! assert!(tok.vocab_size() <= 300);
//! let enc = tok.encode("1990: Cooks\n")?;
//! assert_eq!(tok.decode(&enc.ids)?, "1990: Cooks\n");
//! # Ok(()) }
//! ```

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder as HfBpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};
use crate::tokenize::tokenizer::TextTokenizer;

/// The special token added first to every trained vocabulary (id 0): end of text, also used to
/// pad batches.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Builds a [`BpeTrainer`].
#[derive(Debug, Clone)]
pub struct BpeTrainerBuilder {
    vocab_size: usize,
    min_frequency: u64,
    whole: Vec<String>,
}

impl BpeTrainerBuilder {
    /// A trainer for a vocabulary of at most `vocab_size` tokens (256 bytes, the special token,
    /// then merges).
    pub fn new(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            min_frequency: 2,
            whole: Vec::new(),
        }
    }

    /// Pieces that are always one token, matched whole in any text (longest match first),
    /// added after the merges (the vocabulary grows by their number). `" {title}"` for every
    /// title makes each title one token.
    ///
    /// ```
    /// use labor_model::BpeTrainerBuilder;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let texts = vec!["1990: Cooks\n1991: Head cooks\n".to_string(); 20];
    /// let tok = BpeTrainerBuilder::new(300)
    ///     .with_whole_tokens([" Cooks", " Head cooks"].map(String::from))
    ///     .build()?
    ///     .train(&texts)?;
    /// let text = "1992: Head cooks\n";
    /// let enc = tok.encode(text)?;
    /// let pieces: Vec<&str> = enc.offsets.iter().map(|&(s, e)| &text[s..e]).collect();
    /// assert!(pieces.ends_with(&[" Head cooks", "\n"]), "{pieces:?}");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_whole_tokens(mut self, pieces: impl IntoIterator<Item = String>) -> Self {
        self.whole.extend(pieces);
        self
    }

    /// Pairs seen fewer times than this are never merged (default 2).
    #[must_use]
    pub fn with_min_frequency(mut self, n: u64) -> Self {
        self.min_frequency = n;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when the vocabulary cannot hold the 256 bytes and the special
    /// token.
    pub fn build(self) -> Result<BpeTrainer> {
        if let Some(p) = self
            .whole
            .iter()
            .find(|p| p.is_empty() || p.contains(END_OF_TEXT))
        {
            return Err(Error::InvalidOption {
                name: "whole_tokens",
                detail: format!("`{p}` cannot be a whole token"),
            });
        }
        if self.vocab_size < 258 {
            return Err(Error::InvalidOption {
                name: "vocab_size",
                detail: format!(
                    "{} cannot hold the 256 bytes and the special token",
                    self.vocab_size
                ),
            });
        }
        Ok(BpeTrainer { opts: self })
    }
}

/// Trains byte-level BPE tokenizers (GPT-2 byte mapping and pre-tokenization regex, merges by
/// frequency, id 0 = [`END_OF_TEXT`]); offsets are not trimmed, so titles keep their token
/// boundaries.
#[derive(Debug, Clone)]
pub struct BpeTrainer {
    opts: BpeTrainerBuilder,
}

impl BpeTrainer {
    /// Learns a vocabulary from `texts`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when training fails.
    pub fn train(&self, texts: &[String]) -> Result<TextTokenizer> {
        let err = |e: tokenizers::Error| Error::Tokenizer {
            detail: format!("training BPE: {e}"),
        };
        let mut trainer: TrainerWrapper = HfBpeTrainerBuilder::new()
            .vocab_size(self.opts.vocab_size)
            .min_frequency(self.opts.min_frequency)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tok = Tokenizer::new(ModelWrapper::from(BPE::default()));
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tok.with_decoder(Some(ByteLevelDecoder::default()));
        tok.train(&mut trainer, texts.iter()).map_err(err)?;
        if !self.opts.whole.is_empty() {
            let pieces: Vec<AddedToken> = self
                .opts
                .whole
                .iter()
                .map(|p| AddedToken::from(p.clone(), false).normalized(false))
                .collect();
            tok.add_tokens(pieces).map_err(err)?;
        }
        Ok(TextTokenizer::from_tokenizer(tok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_whole_tokens_after_training() {
        let texts: Vec<String> = (0..50)
            .map(|i| format!("{}: Secretaries\n{}: Cooks\n", 1980 + i % 10, 1981 + i % 7))
            .collect();
        let tok = BpeTrainerBuilder::new(400)
            .build()
            .unwrap()
            .train(&texts)
            .unwrap();
        // 256 bytes + the special token + merges; frequent words become one token each.
        assert!(tok.vocab_size() > 257 && tok.vocab_size() <= 400);
        let enc = tok.encode("1985: Secretaries\n").unwrap();
        let pieces: Vec<&str> = enc
            .offsets
            .iter()
            .map(|&(s, e)| &"1985: Secretaries\n"[s..e])
            .collect();
        assert!(pieces.contains(&" Secretaries"), "{pieces:?}");
        assert_eq!(pieces.last(), Some(&"\n"));
        assert!(BpeTrainerBuilder::new(100).build().is_err());
    }
}
