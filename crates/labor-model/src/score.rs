//! Exact scoring of job titles: `log P(continuation | prompt)` by the chain rule over the
//! continuation's tokens, for every target of a rendered document in one forward pass.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use labor_template::Document;

use crate::error::{Error, Result};
use crate::model::{KvCache, Llama};
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

    /// `log P(c | prompt)` for every continuation `c` (e.g. `" Cooks\n"` for every title of the
    /// taxonomy: the model's full distribution over the outcomes), by the chain rule. The prompt
    /// is run once and its key-value cache shared by all continuations.
    ///
    /// Each continuation is tokenized on its own, which equals its tokenization after the
    /// prompt when the prompt ends on a pre-token boundary (the templates end prompts with `:`
    /// and start continuations with a space).
    ///
    /// # Errors
    /// [`Error::Tokenizer`], or [`Error::TooLong`] when the prompt and a continuation exceed the
    /// model's context.
    pub fn continuation_log_probs(
        &self,
        prompt: &str,
        continuations: &[String],
    ) -> Result<Vec<f64>> {
        let ids = self.tokenizer.encode(prompt)?.ids;
        let too_long = |tokens| Error::TooLong {
            worker_id: String::new(),
            tokens,
            max: self.model.max_seq_len(),
        };
        if ids.is_empty() || ids.len() >= self.model.max_seq_len() {
            return Err(too_long(ids.len()));
        }
        let to_tensor = |v: &[u32]| {
            let v: Vec<i32> = v.iter().map(|i| *i as i32).collect();
            Tensor::<1, Int>::from_ints(v.as_slice(), &self.device).reshape([1, v.len()])
        };
        let read = |t: Tensor<3>| -> Result<Vec<f32>> {
            t.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Tokenizer {
                    detail: format!("reading log-probabilities: {e:?}"),
                })
        };
        let mut cache = KvCache::new();
        let logits = self.model.forward_with_cache(to_tensor(&ids), &mut cache);
        let vocab = logits.dims()[2];
        let first = read(log_softmax(logits.narrow(1, ids.len() - 1, 1), 2))?;
        continuations
            .iter()
            .map(|c| {
                let toks = self.tokenizer.encode_continuation(c)?;
                let Some((&t0, _)) = toks.split_first() else {
                    return Ok(0.0);
                };
                if ids.len() + toks.len() > self.model.max_seq_len() {
                    return Err(too_long(ids.len() + toks.len()));
                }
                let mut total = f64::from(first[t0 as usize]);
                if toks.len() > 1 {
                    let mut c2 = cache.clone();
                    let lp = read(log_softmax(
                        self.model
                            .forward_with_cache(to_tensor(&toks[..toks.len() - 1]), &mut c2),
                        2,
                    ))?;
                    for (j, t) in toks[1..].iter().enumerate() {
                        total += f64::from(lp[j * vocab + *t as usize]);
                    }
                }
                Ok(total)
            })
            .collect()
    }
}
