//! Data-parallel prediction and scoring: the workers (or texts) are cut into one contiguous
//! shard per device, each device loads the model and works through its shard on a thread of its
//! own, and the shards are joined in the input's order. Nothing is exchanged between devices, so
//! no collective is needed, and the result is the one-device result exactly: a worker is
//! predicted alone, and texts are sharded in whole scoring chunks, so every forward pass sees the
//! batches one device would.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use labor_data::{Panel, Predictions, Taxonomy};
use labor_template::{Document, TemplateBuilder, TemplateKind};

use crate::error::{Error, Result};
use crate::load::load_predictor;
use crate::score::Scorer;
use crate::score::predict::predict_workers;
use crate::score::texts::{CHUNK, FreeMass, TextScores, score_texts};

/// `n` items cut into at most `parts` contiguous ranges of whole `unit`s (the last may be
/// shorter), as even as they can be; empty ranges are left out, except the one range of no
/// items (so that an empty input still gives one, empty, result).
///
/// ```
/// # use labor_model::shard_ranges;
/// assert_eq!(shard_ranges(10, 3, 1), [0..4, 4..7, 7..10]);
/// assert_eq!(shard_ranges(70, 2, 32), [0..64, 64..70]);
/// assert_eq!(shard_ranges(5, 4, 32), [0..5]);
/// assert_eq!(shard_ranges(0, 2, 1), [0..0]);
/// ```
pub fn shard_ranges(n: usize, parts: usize, unit: usize) -> Vec<Range<usize>> {
    let units = n.div_ceil(unit.max(1));
    let parts = parts.clamp(1, units.max(1));
    let (base, extra) = (units / parts, units % parts);
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let end = (start + (base + usize::from(p < extra)) * unit).min(n);
        if end > start {
            ranges.push(start..end);
        }
        start = end;
    }
    if ranges.is_empty() {
        ranges.push(0..0);
    }
    ranges
}

/// Runs `work` for every shard on a thread of its own, shard `i` on `devices[i]`, and returns
/// the results in shard order (the first error if any shard fails).
fn on_devices<T: Send>(
    ranges: &[Range<usize>],
    devices: &[Device],
    work: impl Fn(Range<usize>, &Device) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .zip(devices)
            .map(|(r, d)| {
                let work = &work;
                s.spawn(move || work(r.clone(), d))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|p| {
                    Err(Error::InvalidOption {
                        name: "devices",
                        detail: format!(
                            "a device's shard panicked: {}",
                            labor_data::panic_message(p.as_ref())
                        ),
                    })
                })
            })
            .collect()
    })
}

fn no_devices() -> Error {
    Error::InvalidOption {
        name: "devices",
        detail: "at least one device is needed".into(),
    }
}

/// Predicts every worker-year of `panel` with the model at `path` (see [`load_predictor`]),
/// sharded over `devices`: one contiguous shard of the workers per device, each loading the
/// model and predicting on a thread of its own; `progress` gets the worker-years done
/// on all devices together. Equal to [`predict_panel`](crate::predict_panel) on one device.
///
/// # Errors
/// No device; as [`load_predictor`], [`crate::LoadedModel::predictor`] and the predictor.
pub fn predict_panel_sharded(
    path: &Path,
    panel: &Panel,
    devices: &[Device],
    constrained: bool,
    full_distribution: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Predictions> {
    if devices.is_empty() {
        return Err(no_devices());
    }
    let taxonomy = panel.taxonomy();
    let workers = panel.workers();
    let done = AtomicUsize::new(0);
    let ranges = shard_ranges(workers.len(), devices.len(), 1);
    let shards = on_devices(&ranges, devices, |range, device| {
        let model = load_predictor(path, taxonomy, device)?;
        let predictor = model.predictor(taxonomy, constrained)?;
        let mut last = 0;
        predict_workers(
            predictor.as_ref(),
            taxonomy,
            &workers[range],
            full_distribution,
            |n| {
                let total = done.fetch_add(n - last, Ordering::Relaxed) + n - last;
                last = n;
                progress(total);
            },
        )
    })?;
    join(shards)
}

/// The shards' predictions as one set, in order.
fn join(shards: Vec<Predictions>) -> Result<Predictions> {
    let mut shards = shards.into_iter();
    let mut all = shards.next().ok_or_else(no_devices)?;
    for s in shards {
        all.append(s)?;
    }
    Ok(all)
}

/// How [`score_texts_sharded`] scores.
#[derive(Debug, Clone, Default)]
pub struct ShardedScoring {
    /// Padded tokens per forward pass (see [`Scorer::with_batch_tokens`]; 0 keeps the default).
    pub batch_tokens: usize,
    /// Decode constrained to these titles' continuations (see
    /// [`Scorer::with_constrained_titles`]); none when empty.
    pub constrained_to: Vec<String>,
    /// Also give the distribution over these titles' continuations for every target.
    pub distribution_over: Option<Vec<String>>,
}

impl ShardedScoring {
    /// Scoring of resumes over `taxonomy`'s titles, written as `labor render` writes them
    /// (numbered with `numbered_seed` when given; see [`title_continuations`]): decoding
    /// constrained to them when `constrained`, and the distribution over them when
    /// `full_distribution`; the default batch size.
    ///
    /// # Errors
    /// As [`title_continuations`].
    pub fn over_titles(
        taxonomy: &Arc<Taxonomy>,
        numbered_seed: Option<u64>,
        constrained: bool,
        full_distribution: bool,
    ) -> Result<Self> {
        let titles = if constrained || full_distribution {
            title_continuations(taxonomy, numbered_seed)?
        } else {
            vec![]
        };
        Ok(Self {
            batch_tokens: 0,
            constrained_to: if constrained { titles.clone() } else { vec![] },
            distribution_over: full_distribution.then_some(titles),
        })
    }
}

/// The continuation of every outcome of `taxonomy` in the resume template (`" {title}\n"`), in
/// state order, with numbered titles (`job_NNN`, the permutation of `numbered_seed`) when given:
/// what a model scoring rendered resumes chooses among.
///
/// # Errors
/// [`Error::Template`] when the template cannot write an outcome.
pub fn title_continuations(
    taxonomy: &Arc<Taxonomy>,
    numbered_seed: Option<u64>,
) -> Result<Vec<String>> {
    let mut b = TemplateBuilder::new(Arc::clone(taxonomy), TemplateKind::Resume);
    if let Some(seed) = numbered_seed {
        b = b.with_numbered_titles(seed);
    }
    Ok(b.build()?.continuations(taxonomy)?)
}

/// Scores every target of `docs` with the language model at `path` (see
/// [`load_llm`](crate::load_llm)) into predictions named `name`, sharded over `devices` in whole
/// scoring chunks (32 texts), one contiguous shard per device, so that every forward pass sees
/// the batches one device would; `progress` gets the targets done on all devices
/// together. The predictions equal those of [`score_texts`] on one device; the free-decoding
/// sums of [`TextScores::free`] are added shard by shard.
///
/// # Errors
/// No device; as [`load_llm`](crate::load_llm), [`Scorer::with_constrained_titles`] and
/// [`score_texts`].
pub fn score_texts_sharded(
    path: &Path,
    docs: &[Document],
    name: &str,
    taxonomy: &Arc<Taxonomy>,
    devices: &[Device],
    how: &ShardedScoring,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<TextScores> {
    if devices.is_empty() {
        return Err(no_devices());
    }
    let (targets, tokens) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let ranges = shard_ranges(docs.len(), devices.len(), CHUNK);
    let shards = on_devices(&ranges, devices, |range, device| {
        let (_, model, tok) = crate::load_llm(path, device)?;
        let mut scorer = Scorer::new(&model, &tok, device.clone());
        if how.batch_tokens > 0 {
            scorer = scorer.with_batch_tokens(how.batch_tokens);
        }
        if !how.constrained_to.is_empty() {
            scorer = scorer.with_constrained_titles(&how.constrained_to)?;
        }
        let (mut last_targets, mut last_tokens) = (0, 0);
        score_texts(
            &scorer,
            &docs[range],
            name,
            taxonomy,
            how.distribution_over.as_deref(),
            |done, toks| {
                let all =
                    targets.fetch_add(done - last_targets, Ordering::Relaxed) + done - last_targets;
                let all_tokens =
                    tokens.fetch_add(toks - last_tokens, Ordering::Relaxed) + toks - last_tokens;
                (last_targets, last_tokens) = (done, toks);
                progress(all, all_tokens);
            },
        )
    })?;
    let mut tokens = 0;
    let mut free: Option<FreeMass> = None;
    let mut predictions = Vec::with_capacity(shards.len());
    for s in shards {
        tokens += s.tokens;
        free = match (free, s.free) {
            (None, f) => f,
            (Some(a), Some(b)) => Some(FreeMass {
                log_likelihood: a.log_likelihood + b.log_likelihood,
                first_token: (
                    a.first_token.0 + b.first_token.0,
                    a.first_token.1 + b.first_token.1,
                ),
                later_tokens: (
                    a.later_tokens.0 + b.later_tokens.0,
                    a.later_tokens.1 + b.later_tokens.1,
                ),
            }),
            (Some(a), None) => Some(a),
        };
        predictions.push(s.predictions);
    }
    Ok(TextScores {
        predictions: join(predictions)?,
        tokens,
        free,
    })
}
