//! The quickstart: the whole pipeline on a synthetic NLSY79-like panel, in the shape of the
//! paper's Table 6.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use labor_data::{Panel, PanelSummary, Predictions, Preset, SplitterBuilder, SynthBuilder, io};
use labor_eval::{EvalOptions, EvalOutput, LossCurve, evaluate_predictions};
use labor_model::{
    LlmPredictor, ModelKind, Predictor, Scorer, ScratchBuilder, TrainBuilder, TruthPredictor,
    predict_panel, render_resumes,
};
use labor_template::{TemplateBuilder, TemplateKind};

use crate::error::{Error, Result};

/// The stages of [`Quickstart::run`], in order.
pub const STAGES: [&str; 7] = [
    "synthesising an NLSY79-like panel",
    "splitting by worker (70/10/20)",
    "training the empirical, logit and CAREER baselines",
    "training a small language model from scratch on the training resumes (BPE tokenizer with \
     every title one token + 2-layer Llama)",
    "scoring the test split with the language model",
    "the true career law on the test split: the perplexity floor",
    "evaluating every model with worker-level bootstrap standard errors",
];

/// The name of the language model in the quickstart's tables.
const LM_NAME: &str = "llm (from scratch)";

/// What [`Quickstart::run`] reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum QuickstartEvent<'a> {
    /// Stage `number` (1-based, of [`STAGES`]) begins.
    Stage {
        /// Its number.
        number: usize,
        /// What it does.
        what: &'a str,
    },
    /// Progress of a task within a stage: `done` of `total` (`total` is 0 when unknown).
    Progress {
        /// The task (a model's name, `synth`, `eval`).
        task: &'a str,
        /// Units done (training steps, worker-years).
        done: usize,
        /// Units in all.
        total: usize,
        /// The task's state in a few words (loss, speed, the step of the evaluation).
        status: String,
    },
    /// The result of a finished task, one or more lines of text.
    Done(String),
}

/// Builds a [`Quickstart`].
///
/// ```
/// use labor_pipeline::QuickstartBuilder;
///
/// let q = QuickstartBuilder::new("labor-quickstart").with_workers(0).build();
/// assert!(q.is_err()); // a panel needs workers
/// ```
#[derive(Debug, Clone)]
pub struct QuickstartBuilder {
    out: PathBuf,
    workers: usize,
    lm_train_docs: usize,
    lm_epochs: usize,
    resamples: usize,
    seed: u64,
}

impl QuickstartBuilder {
    /// Writes every file of the pipeline under `out`, replacing an earlier quickstart's.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            workers: 4000,
            lm_train_docs: 0,
            lm_epochs: 2,
            resamples: 1000,
            seed: 0,
        }
    }

    /// Workers of the synthetic panel (default 4,000; the survey has 12,479).
    #[must_use]
    pub fn with_workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Training resumes of the small language model (default 0: all of them).
    #[must_use]
    pub fn with_lm_train_docs(mut self, n: usize) -> Self {
        self.lm_train_docs = n;
        self
    }

    /// Epochs of the small language model (default 2).
    #[must_use]
    pub fn with_lm_epochs(mut self, n: usize) -> Self {
        self.lm_epochs = n;
        self
    }

    /// Bootstrap resamples (default 1,000).
    #[must_use]
    pub fn with_resamples(mut self, n: usize) -> Self {
        self.resamples = n;
        self
    }

    /// Seed of the careers drawn, the split, the models and the bootstrap (default 0).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] without workers, with fewer than 2 or more than
    /// [`labor_eval::MAX_RESAMPLES`] resamples, or without an epoch.
    pub fn build(self) -> Result<Quickstart> {
        let invalid = |name, detail: String| Err(Error::InvalidOption { name, detail });
        if self.workers == 0 {
            return invalid("workers", "the panel needs at least one worker".into());
        }
        if !(2..=labor_eval::MAX_RESAMPLES).contains(&self.resamples) {
            return invalid(
                "resamples",
                format!(
                    "{} is not in 2..={}",
                    self.resamples,
                    labor_eval::MAX_RESAMPLES
                ),
            );
        }
        if self.lm_epochs == 0 {
            return invalid("lm_epochs", "the language model needs an epoch".into());
        }
        Ok(Quickstart { b: self })
    }
}

/// The quickstart pipeline ([`QuickstartBuilder::build`]): synthesise an NLSY79-like panel with
/// a known truth, split it by worker, train the empirical, logit and CAREER baselines and a small
/// language model (its own BPE tokenizer, with every title one token, trained from scratch on
/// the training resumes), score the test split with each, and evaluate them all with
/// worker-level bootstrap standard errors next to the true model's floor.
#[derive(Debug, Clone)]
pub struct Quickstart {
    b: QuickstartBuilder,
}

/// The result of [`Quickstart::run`].
#[derive(Debug)]
pub struct QuickstartReport {
    /// The evaluation (its [`EvalOutput::table`] is the quickstart's table).
    pub output: EvalOutput,
    /// The files of the evaluation directory.
    pub written: Vec<PathBuf>,
    /// The evaluation directory (`report.md`, `metrics.json`, plots).
    pub eval_dir: PathBuf,
    /// The directory of the predictions files, one per model.
    pub predictions_dir: PathBuf,
}

impl Quickstart {
    /// Runs the pipeline, telling `on_event` what it does (see [`QuickstartEvent`]). Its files:
    /// `panel.parquet`, `truth.parquet`, `split/`, `models/<name>/`, `predictions/` and `eval/`
    /// under the output directory.
    ///
    /// # Errors
    /// Unwritable files, and the errors of the layers.
    pub fn run(&self, mut on_event: impl FnMut(QuickstartEvent<'_>)) -> Result<QuickstartReport> {
        let b = &self.b;
        let out = &b.out;
        let mut stage = 0;
        let mut next_stage = |on_event: &mut dyn FnMut(QuickstartEvent<'_>)| {
            stage += 1;
            on_event(QuickstartEvent::Stage {
                number: stage,
                what: STAGES[stage - 1],
            });
        };
        std::fs::create_dir_all(out).map_err(|source| Error::Io {
            path: out.clone(),
            source,
        })?;

        next_stage(&mut on_event);
        let t = Instant::now();
        let synth = SynthBuilder::new(Preset::Nlsy79)
            .with_workers(b.workers)
            .with_seed(b.seed)
            .with_world_seed(1990)
            .build()?;
        let drawn = synth.generate_with_progress(|done| {
            on_event(QuickstartEvent::Progress {
                task: "synth",
                done,
                total: b.workers,
                status: String::new(),
            });
        });
        let panel_path = out.join("panel.parquet");
        io::write_panel(&drawn.panel, &panel_path)?;
        let truth = TruthPredictor::new(synth.law());
        let truth_path = out.join("truth.parquet");
        predict_panel(&truth, &drawn.panel, false, |_| {})?.write_parquet(&truth_path)?;
        on_event(QuickstartEvent::Done(format!(
            "wrote {} workers, {} worker-years to {} in {:.1}s; true perplexity {:.3}\n\
             wrote the truth to {}",
            drawn.panel.len(),
            drawn.panel.n_worker_years(),
            panel_path.display(),
            t.elapsed().as_secs_f64(),
            drawn.truth.perplexity(),
            truth_path.display()
        )));

        next_stage(&mut on_event);
        let parts = SplitterBuilder::new()
            .with_seed(b.seed)
            .with_fractions(0.7, 0.1, 0.2)
            .build()?
            .split(&drawn.panel);
        let split_dir = out.join("split");
        parts.write_dir(&split_dir)?;
        on_event(QuickstartEvent::Done(format!(
            "{parts}wrote {}\n{}",
            split_dir.display(),
            PanelSummary::of(&parts.train)
        )));
        let (train, valid, test) = (&parts.train, &parts.valid, &parts.test);
        let mut models: Vec<Predictions> = vec![];
        let mut curves: Vec<LossCurve> = vec![];

        next_stage(&mut on_event);
        for kind in [ModelKind::Empirical, ModelKind::Logit, ModelKind::Career] {
            let dir = out.join("models").join(kind.name());
            let t = Instant::now();
            // The quickstart's directory is its own: a rerun replaces its models.
            let (model, summary) = TrainBuilder::new(kind, train, valid)
                .with_out_dir(&dir)
                .with_overwrite(true)
                .build()?
                .run(|e| {
                    on_event(QuickstartEvent::Progress {
                        task: kind.name(),
                        done: e.row.step,
                        total: e.total_steps,
                        status: format!(
                            "loss {:.3} {:.0} worker-years/s",
                            e.row.train_loss, e.tokens_per_sec
                        ),
                    });
                })?;
            on_event(QuickstartEvent::Done(format!(
                "  {:<10} best validation loss {:.4} nats/worker-year (perplexity {:.3}), {:.1} s",
                kind.name(),
                summary.state.best_valid,
                summary.state.best_valid.exp(),
                t.elapsed().as_secs_f64()
            )));
            curves.extend(loss_curve(kind.name(), &dir));
            models.push(predict(&model, test, &mut on_event)?);
        }

        next_stage(&mut on_event);
        let lm_dir = out.join("models").join("llm");
        let mut train_docs = render_resumes(train)?;
        if b.lm_train_docs > 0 {
            train_docs.truncate(b.lm_train_docs);
        }
        // The scratch defaults, with the epochs asked for, batches of 4, and every title of the
        // taxonomy one token of the vocabulary (a title is then one prediction, as for CAREER).
        let titles = train
            .taxonomy()
            .outcomes()
            .map(|(_, o)| format!(" {}", o.title));
        let report = ScratchBuilder::new(train_docs, render_resumes(valid)?, &lm_dir)
            .with_whole_tokens(titles)
            .with_epochs(b.lm_epochs)
            .with_batch_size(4)
            .with_max_valid_docs(100)
            .with_seed(b.seed)
            .with_overwrite(true)
            .build()?
            .run(|p| {
                on_event(QuickstartEvent::Progress {
                    task: "llm",
                    done: p.row.step,
                    total: p.total_steps,
                    status: format!(
                        "loss {:.3} {:.0} tokens/s",
                        p.row.train_loss, p.tokens_per_sec
                    ),
                });
                ControlFlow::Continue(())
            })?;
        on_event(QuickstartEvent::Done(format!(
            "  llm        {} steps in {:.0} s; validation title perplexity {:.1} before, {:.1} after",
            report.report.steps,
            report.wall.as_secs_f64(),
            report.title_ppl_before,
            report.title_ppl_after
        )));
        curves.extend(loss_curve(LM_NAME, &lm_dir));

        next_stage(&mut on_event);
        let template =
            TemplateBuilder::new(Arc::clone(test.taxonomy()), TemplateKind::Resume).build()?;
        let predictor = LlmPredictor::new(
            LM_NAME,
            Scorer::new(&report.report.model, &report.tokenizer, Device::default()),
            template,
            test.taxonomy(),
        )?;
        models.push(predict(&predictor, test, &mut on_event)?);

        next_stage(&mut on_event);
        models.push(predict_panel(&truth, test, false, |_| {})?);
        let predictions_dir = out.join("predictions");
        std::fs::create_dir_all(&predictions_dir).map_err(|source| Error::Io {
            path: predictions_dir.clone(),
            source,
        })?;
        for p in &models {
            let name = p.model().replace([' ', '(', ')'], "_");
            p.write_parquet(predictions_dir.join(format!("{name}.parquet")))?;
        }

        next_stage(&mut on_event);
        let opts = EvalOptions {
            resamples: b.resamples,
            seed: b.seed,
            loss_curves: curves,
            ..EvalOptions::default()
        };
        let output = evaluate_predictions(&models, Some(test), &opts, |s| {
            on_event(QuickstartEvent::Progress {
                task: "eval",
                done: 0,
                total: 0,
                status: s.to_string(),
            });
        })?;
        let eval_dir = out.join("eval");
        let written = output.write_dir(&eval_dir)?;
        Ok(QuickstartReport {
            output,
            written,
            eval_dir,
            predictions_dir,
        })
    }
}

/// The loss curve a training run wrote to `dir/loss.csv`, named `name` (none when it is
/// missing or unreadable: the plot is then left out, the numbers are not affected).
fn loss_curve(name: &str, dir: &Path) -> Option<LossCurve> {
    let text = std::fs::read_to_string(dir.join("loss.csv")).ok()?;
    LossCurve::from_csv_str(name, &text).ok()
}

/// `predictor`'s predictions of every worker-year of `panel`, with progress and timing events.
fn predict(
    predictor: &dyn Predictor,
    panel: &Panel,
    on_event: &mut dyn FnMut(QuickstartEvent<'_>),
) -> Result<Predictions> {
    let t = Instant::now();
    let total = panel.n_worker_years();
    let preds = predict_panel(predictor, panel, false, |done| {
        on_event(QuickstartEvent::Progress {
            task: predictor.name(),
            done,
            total,
            status: String::new(),
        });
    })?;
    on_event(QuickstartEvent::Done(format!(
        "{}: {} worker-years predicted in {:.1}s",
        preds.model(),
        preds.len(),
        t.elapsed().as_secs_f64()
    )));
    Ok(preds)
}
