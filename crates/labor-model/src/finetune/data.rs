//! Training examples: resumes rendered and tokenized with their loss masks, batches, and the
//! losses computed over them.

use burn::tensor::{Device, Int, Tensor, TensorData};
use labor_data::Panel;
use labor_template::{Document, TemplateBuilder, TemplateKind};

use crate::error::{Error, Result};
use crate::llm::model::Llama;
use crate::score::Scorer;
use crate::tokenize::tokenizer::TextTokenizer;

use super::options::LossOn;

/// A tokenized text with the loss mask: `mask[i]` weights the prediction of `ids[i]` from
/// `ids[..i]` (`mask[0]` is 0).
#[derive(Debug, Clone)]
pub(super) struct Example {
    pub(super) ids: Vec<u32>,
    pub(super) mask: Vec<f32>,
}

pub(super) fn tokenize(
    docs: &[Document],
    tokenizer: &TextTokenizer,
    loss_on: LossOn,
    max_tokens: usize,
) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let enc = tokenizer.encode(&doc.text)?;
        let n = enc.ids.len().min(max_tokens);
        let mut mask: Vec<f32> = (0..n)
            .map(|i| {
                let (s, e) = enc.offsets[i];
                let on = match loss_on {
                    LossOn::All => i > 0,
                    LossOn::Titles => {
                        i > 0
                            && e > s
                            && doc
                                .targets
                                .iter()
                                .any(|t| s >= t.continuation_start && e <= t.continuation_end)
                    }
                };
                if on { 1.0 } else { 0.0 }
            })
            .collect();
        if n >= 2 && mask.iter().any(|m| *m > 0.0) {
            mask.truncate(n);
            out.push(Example {
                ids: enc.ids[..n].to_vec(),
                mask,
            });
        }
    }
    Ok(out)
}

/// Right-padded ids `[b, len]`, loss mask `[b, len - 1]` (for the targets `ids[:, 1..]`), the
/// number of non-padding tokens and of loss tokens.
pub(super) fn batch(
    examples: &[&Example],
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2>, u64, f64) {
    let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(2);
    let b = examples.len();
    let mut ids = vec![0i32; b * len];
    let mut mask = vec![0f32; b * (len - 1)];
    let (mut tokens, mut loss_tokens) = (0u64, 0f64);
    for (r, e) in examples.iter().enumerate() {
        for (j, id) in e.ids.iter().enumerate() {
            ids[r * len + j] = *id as i32;
        }
        for j in 1..e.ids.len() {
            mask[r * (len - 1) + j - 1] = e.mask[j];
            loss_tokens += f64::from(e.mask[j]);
        }
        tokens += e.ids.len() as u64;
    }
    (
        Tensor::<2, Int>::from_data(TensorData::new(ids, [b, len]), device),
        Tensor::<2>::from_data(TensorData::new(mask, [b, len - 1]), device),
        tokens,
        loss_tokens,
    )
}

/// `Σ mask · (-log P(next token))` over a batch, as a one-element tensor.
pub(super) fn loss_sum(model: &Llama, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<1> {
    // Under autodiff this is log-softmax and gather; for validation on the CPU it takes the
    // kernels that never write the log-softmax matrix.
    (model.next_token_log_probs(ids) * mask).sum().neg()
}

pub(super) fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|source| Error::TensorData {
            what: "a loss",
            source,
        })?;
    Ok(v.first().copied().map_or(f64::NAN, f64::from))
}

/// Mean loss per loss token of `examples` under `model` (no gradients).
pub(super) fn mean_loss(model: &Llama, examples: &[Example], batch_size: usize) -> Result<f64> {
    let device = model.embed.weight.val().device();
    let (mut total, mut count) = (0.0, 0.0);
    for chunk in examples.chunks(batch_size) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let (ids, mask, _, n) = batch(&refs, &device);
        total += scalar(loss_sum(model, ids, mask))?;
        count += n;
    }
    Ok(if count > 0.0 { total / count } else { f64::NAN })
}

/// Renders every worker of `panel` with the paper's fine-tuning resume template.
///
/// # Errors
/// [`Error::Template`].
pub fn render_resumes(panel: &Panel) -> Result<Vec<Document>> {
    let template = TemplateBuilder::new(panel.taxonomy().clone(), TemplateKind::Resume).build()?;
    Ok(template.render_panel(panel)?)
}

/// Perplexity of the job titles of `docs` under `model`: `exp(-Σ log P(title | prompt) / n)`
/// over the `n` targets, each scored exactly by the [`Scorer`]. Returns the perplexity and `n`.
///
/// # Errors
/// As [`Scorer::score_document`].
pub fn title_perplexity(
    model: &Llama,
    tokenizer: &TextTokenizer,
    docs: &[Document],
) -> Result<(f64, usize)> {
    let device = model.embed.weight.val().device();
    let scorer = Scorer::new(model, tokenizer, device);
    let (mut sum, mut n) = (0.0, 0usize);
    for doc in docs {
        for lp in scorer.score_document(doc)? {
            sum += lp;
            n += 1;
        }
    }
    Ok(((-sum / n.max(1) as f64).exp(), n))
}
