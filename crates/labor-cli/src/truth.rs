//! Writing the synthetic truth as predictions of the true model.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use labor_data::{CareerLaw, Prediction, Predictions, SynthOutput};

/// The true log-probability of every worker-year as [`Predictions`] of the model `truth`, with
/// the true distribution over every outcome when `full`.
pub fn predictions(out: &SynthOutput, law: &CareerLaw, full: bool) -> Result<Predictions> {
    let mut p = Predictions::new("truth", Arc::clone(out.panel.taxonomy()));
    for (w, lp) in out.panel.workers().iter().zip(&out.truth.log_probs) {
        for (k, r) in w.records.iter().enumerate() {
            p.push(Prediction {
                worker_id: w.id.clone(),
                year: r.year,
                position: k as u32,
                state: r.state,
                log_prob: lp[k],
                weight: w.weight,
                probs: full.then(|| {
                    law.distribution(w, k)
                        .into_iter()
                        .map(|p| p as f32)
                        .collect()
                }),
            })?;
        }
    }
    Ok(p)
}

/// Writes [`predictions`] to `path` (Parquet).
pub fn write(path: &Path, out: &SynthOutput, law: &CareerLaw, full: bool) -> Result<()> {
    predictions(out, law, full)?
        .write_parquet(path)
        .with_context(|| format!("writing {}", path.display()))
}
