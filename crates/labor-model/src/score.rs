//! Exact scoring of job titles: `log P(continuation | prompt)` by the chain rule over the
//! continuation's tokens, for every target of a rendered document in one forward pass.

use burn::tensor::{Device, Int, Tensor};
use labor_template::Document;

use crate::error::{Error, Result};
use crate::model::Llama;
use crate::tokenizer::TextTokenizer;

/// Scores rendered documents with a model and its tokenizer.
#[derive(Debug)]
pub struct Scorer<'a> {
    model: &'a Llama,
    tokenizer: &'a TextTokenizer,
    device: Device,
}

impl<'a> Scorer<'a> {
    /// A scorer running `model` on `device`.
    pub fn new(model: &'a Llama, tokenizer: &'a TextTokenizer, device: Device) -> Self {
        Self {
            model,
            tokenizer,
            device,
        }
    }

    /// `log P(continuation | prompt)` of every target of `doc`, in target order.
    ///
    /// The text is tokenized once; each continuation must start and end on token boundaries
    /// (the templates put the space before the title into the continuation and end it with the
    /// terminator, so byte-level BPE tokenizers never merge across them).
    ///
    /// # Errors
    /// [`Error::Tokenizer`], [`Error::TokenBoundary`] naming the worker and byte offset, or
    /// [`Error::TooLong`] when the text exceeds the model's context.
    pub fn score_document(&self, doc: &Document) -> Result<Vec<f64>> {
        let enc = self.tokenizer.encode(&doc.text)?;
        let n = enc.ids.len();
        if n > self.model.max_seq_len() {
            return Err(Error::TooLong {
                worker_id: doc.worker_id.clone(),
                tokens: n,
                max: self.model.max_seq_len(),
            });
        }
        if n < 2 {
            return Ok(vec![]);
        }
        let ids: Vec<i32> = enc.ids.iter().map(|i| *i as i32).collect();
        let tokens = Tensor::<1, Int>::from_ints(ids.as_slice(), &self.device).reshape([1, n]);
        let lp: Vec<f32> = self
            .model
            .next_token_log_probs(tokens)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Tokenizer {
                detail: format!("reading log-probabilities: {e:?}"),
            })?;
        let boundary = |offset: usize| -> Result<usize> {
            // The first token starting at `offset`, with every earlier token ending at or before it.
            match enc.offsets.iter().position(|(s, e)| *s >= offset && e > s) {
                Some(j)
                    if enc.offsets[j].0 == offset
                        && enc.offsets[..j].iter().all(|(_, e)| *e <= offset) =>
                {
                    Ok(j)
                }
                None if offset == doc.text.len() => Ok(n),
                _ => Err(Error::TokenBoundary {
                    worker_id: doc.worker_id.clone(),
                    offset,
                }),
            }
        };
        doc.targets
            .iter()
            .map(|t| {
                let (a, b) = (
                    boundary(t.continuation_start)?,
                    boundary(t.continuation_end)?,
                );
                if a == 0 {
                    return Err(Error::TokenBoundary {
                        worker_id: doc.worker_id.clone(),
                        offset: t.continuation_start,
                    });
                }
                Ok((a..b).map(|j| f64::from(lp[j - 1])).sum())
            })
            .collect()
    }
}
