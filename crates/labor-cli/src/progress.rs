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

/// Shows a training run's progress on `pb`: the step on the bar, the loss, learning rate, speed
/// and time left as its message, and every validation as a line of its own (on stderr).
pub(crate) fn training(pb: &ProgressBar, p: &labor_model::Progress) {
    let r = &p.row;
    pb.set_length(p.total_steps as u64);
    pb.set_position(r.step as u64);
    pb.set_message(format!(
        "epoch {} loss {:.3} lr {:.2e} {:.0} tokens/s eta {}",
        r.epoch,
        r.train_loss,
        r.learning_rate,
        p.tokens_per_sec,
        indicatif::HumanDuration(std::time::Duration::from_secs(p.eta.as_secs()))
    ));
    if let Some(v) = r.valid_loss {
        let line = format!(
            "epoch {:>3} step {:>6}: train {:.4} valid {v:.4} nats (ppl {:.3}), lr {:.2e}, {:.0} tokens/s",
            r.epoch,
            r.step,
            r.train_loss,
            v.exp(),
            r.learning_rate,
            p.tokens_per_sec
        );
        if pb.is_hidden() {
            eprintln!("{line}");
        } else {
            pb.println(line);
        }
    }
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

/// Predicts every worker-year of `panel` with the model at `path` (see
/// [`labor_model::load_predictor`]) on `devices` at once (see
/// [`labor_model::predict_panel_sharded`]), with a progress bar, and prints how long it took.
pub(crate) fn predict_model(
    path: &std::path::Path,
    panel: &Panel,
    constrained: bool,
    full_distribution: bool,
    devices: &[String],
) -> Result<Predictions> {
    use anyhow::Context;
    let devices = labor_model::devices_or_default(devices)?;
    let n = panel.n_worker_years() as u64;
    let name = labor_model::model_name(path);
    let pb = bar(n, &name, "worker-years {per_sec} eta {eta}");
    let start = Instant::now();
    let preds = labor_model::predict_panel_sharded(
        path,
        panel,
        &devices,
        constrained,
        full_distribution,
        &|done| pb.set_position(done as u64),
    )
    .with_context(|| format!("predicting with {}", path.display()))?;
    pb.finish_and_clear();
    eprintln!(
        "{}: {} worker-years predicted in {:.1}s on {} device{}",
        preds.model(),
        preds.len(),
        start.elapsed().as_secs_f64(),
        devices.len(),
        if devices.len() == 1 { "" } else { "s" }
    );
    Ok(preds)
}
