//! The true career law as a model: its predictions for any panel over the law's taxonomy.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use labor_data::{CareerLaw, Panel, Prediction, Predictions};

/// The true log-probability of every worker-year of `panel` as [`Predictions`] of the model
/// `truth`, with the true distribution over every outcome when `full`.
pub fn predictions(panel: &Panel, law: &CareerLaw, full: bool) -> Result<Predictions> {
    let mut p = Predictions::new("truth", Arc::clone(panel.taxonomy()));
    for w in panel.workers() {
        for (k, r) in w.records.iter().enumerate() {
            p.push(Prediction {
                worker_id: w.id.clone(),
                year: r.year,
                position: k as u32,
                state: r.state,
                log_prob: law.log_prob(w, k),
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

/// Writes [`predictions`] of `panel` to `path` (Parquet).
pub fn write(path: &Path, panel: &Panel, law: &CareerLaw, full: bool) -> Result<()> {
    predictions(panel, law, full)?
        .write_parquet(path)
        .with_context(|| format!("writing {}", path.display()))
}
