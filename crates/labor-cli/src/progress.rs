//! Progress bars on stderr, one style for every command.

use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use labor_data::{Panel, Predictions};

/// A bar named `name`: `name [=====>   ] pos/len` followed by `tail`, an indicatif template
/// (`{msg}` for what the caller sets with `set_message`, `{per_sec}`, `{eta}`...).
pub(crate) fn bar(len: u64, name: &str, tail: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(s) = ProgressStyle::with_template(&format!(
        "{{prefix:>12}} [{{bar:30}}] {{pos}}/{{len}} {tail}"
    )) {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_prefix(name.to_string());
    pb
}

/// A spinner showing the evaluation's current step.
pub(crate) fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if let Ok(s) = ProgressStyle::with_template("{spinner} eval {elapsed:>4} {msg}") {
        pb.set_style(s);
    }
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Runs `predictor` over every worker-year of `panel` (see [`labor_model::predict_panel`]) with
/// a progress bar, and prints how long it took.
pub(crate) fn predict(
    predictor: &dyn labor_model::Predictor,
    panel: &Panel,
    full_distribution: bool,
) -> Result<Predictions> {
    let n = panel.n_worker_years() as u64;
    let pb = bar(n, predictor.name(), "worker-years {per_sec} eta {eta}");
    let start = Instant::now();
    let preds = labor_model::predict_panel(predictor, panel, full_distribution, |done| {
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    eprintln!(
        "{}: {} worker-years predicted in {:.1}s",
        preds.model(),
        preds.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(preds)
}

/// Loads the model at `path` (see [`labor_model::load_predictor`]) and predicts `panel` with it
/// (see [`predict`]).
pub(crate) fn predict_model(
    path: &std::path::Path,
    panel: &Panel,
    constrained: bool,
    full_distribution: bool,
) -> Result<Predictions> {
    use anyhow::Context;
    let device = burn::tensor::Device::default();
    let model = labor_model::load_predictor(path, panel.taxonomy(), &device)
        .with_context(|| format!("loading {}", path.display()))?;
    let predictor = model.predictor(panel.taxonomy(), constrained)?;
    predict(predictor.as_ref(), panel, full_distribution)
}
