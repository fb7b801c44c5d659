//! Trained models of careers behind one type: training ([`TrainBuilder`]), the model directory
//! ([`save_model`], [`load_model`]) and prediction ([`SeqPredictor`], [`TrainedModel`]).
//!
//! # Model directory
//! `DIR/model.json` holds `{"kind", "taxonomy", "n_states", "config", "summary"}`; the weights
//! of the burn models are in `DIR/model.bpk` (burn's burnpack format through `burn-store`,
//! which keeps parameter ids so that the optimizer state of a checkpoint lines up on resume);
//! the empirical model's counts are in `DIR/empirical.json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::Device;
use labor_data::{Panel, Worker};
use serde::{Deserialize, Serialize};

use crate::baselines::bag_of_jobs::{BagOfJobs, BagOfJobsConfig};
use crate::baselines::empirical::{DEFAULT_ALPHA, Empirical};
use crate::baselines::logit::{Logit, LogitConfig};
use crate::career::{Career, CareerConfig};
use crate::checkpoint::consistency::check_record;
use crate::error::{Error, Result};
use crate::rundir::{Progress, check_run_dir, clear_run_dir, write_atomic};
use crate::score::predict::{Predictor, StepPrediction};
use crate::seq::train::{
    EarlyStopping, TrainOptions, TrainSummary, load_weights, save_weights, train_seq, weights_path,
};
use crate::seq::{HostBatch, SeqModel, SeqVocab, two_stage_log_probs};

/// The kinds of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ModelKind {
    /// The CAREER transformer.
    Career,
    /// Empirical transition frequencies.
    Empirical,
    /// The multinomial logit.
    Logit,
    /// Bag-of-jobs.
    BagOfJobs,
}

impl ModelKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Career => "career",
            ModelKind::Empirical => "empirical",
            ModelKind::Logit => "logit",
            ModelKind::BagOfJobs => "bag-of-jobs",
        }
    }

    /// Default training options of the kind: peak learning rate, warm-up and tokens per batch
    /// sized for a CPU, and a run that lasts until the validation loss stops improving
    /// ([`EarlyStopping::default`]: a patience of 3 epochs and 300 updates), at most 200 epochs,
    /// so that one default fits panels from a few hundred to tens of thousands of workers.
    pub fn default_options(self) -> TrainOptions {
        let (lr, warmup, max_tokens, epochs) = match self {
            ModelKind::Career => (2e-3, 100, 1000, 200),
            ModelKind::Logit => (2e-2, 50, 4000, 200),
            ModelKind::BagOfJobs => (2e-3, 100, 2000, 200),
            ModelKind::Empirical => (0.0, 0, 1, 1),
        };
        TrainOptions {
            epochs,
            max_steps: None,
            max_tokens,
            lr,
            warmup,
            weight_decay: 0.01,
            seed: 1,
            early_stopping: (self != ModelKind::Empirical).then(EarlyStopping::default),
        }
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "career" => Ok(ModelKind::Career),
            "empirical" => Ok(ModelKind::Empirical),
            "logit" => Ok(ModelKind::Logit),
            "bag-of-jobs" | "bag_of_jobs" => Ok(ModelKind::BagOfJobs),
            other => Err(format!(
                "unknown model kind `{other}` (career, empirical, logit, bag-of-jobs)"
            )),
        }
    }
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The kind.
    pub kind: ModelKind,
    /// Name of the taxonomy the states come from.
    pub taxonomy: String,
    /// Number of states.
    pub n_states: usize,
    /// The model's configuration (`CareerConfig`, `LogitConfig`, ...; `{"alpha"}` for empirical).
    pub config: serde_json::Value,
    /// The training run, if any.
    pub summary: Option<TrainSummary>,
}

/// A burn sequence model as a [`Predictor`], one career at a time.
#[derive(Debug, Clone)]
pub struct SeqPredictor<M> {
    model: M,
    name: String,
    max_len: usize,
    device: Device,
}

impl<M: SeqModel + Module> SeqPredictor<M> {
    /// Wraps `model` (on a plain device) under `name`.
    pub fn new(model: M, name: impl Into<String>, max_len: usize) -> Self {
        let device = model.devices().into_iter().next().unwrap_or_default();
        Self {
            model,
            name: name.into(),
            max_len,
            device,
        }
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Log-probabilities of every state at every position of `worker`, row-major
    /// `[records, n_states]`.
    ///
    /// # Errors
    /// As [`HostBatch::from_workers`].
    pub fn log_prob_table(&self, worker: &Worker) -> Result<Vec<f32>> {
        let vocab = self.model.vocab();
        let hb = HostBatch::from_workers(&[worker], vocab, self.max_len)?;
        let b = hb.to_device(&self.device);
        let lp = two_stage_log_probs(self.model.logits(&b), b.prev.clone(), vocab.n_states);
        lp.into_data()
            .try_to_vec::<f32>()
            .map_err(|source| Error::TensorData {
                what: "log-probabilities",
                source,
            })
    }
}

impl<M: SeqModel + Module> Predictor for SeqPredictor<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn predict_worker(&self, worker: &Worker, full: bool) -> Result<Vec<StepPrediction>> {
        if worker.records.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.model.vocab().n_states;
        let table = self.log_prob_table(worker)?;
        Ok(worker
            .records
            .iter()
            .enumerate()
            .map(|(t, r)| {
                let row = &table[t * n..(t + 1) * n];
                StepPrediction {
                    log_prob: f64::from(row[r.state.index()]),
                    probs: full.then(|| row.iter().map(|l| l.exp()).collect()),
                }
            })
            .collect())
    }
}

/// A trained model of any kind.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one value per program; boxing buys nothing
pub enum TrainedModel {
    /// CAREER.
    Career(SeqPredictor<Career>, CareerConfig),
    /// The multinomial logit.
    Logit(SeqPredictor<Logit>, LogitConfig),
    /// Bag-of-jobs.
    BagOfJobs(SeqPredictor<BagOfJobs>, BagOfJobsConfig),
    /// Empirical transition frequencies.
    Empirical(Empirical),
}

impl TrainedModel {
    /// The kind.
    pub fn kind(&self) -> ModelKind {
        match self {
            TrainedModel::Career(..) => ModelKind::Career,
            TrainedModel::Logit(..) => ModelKind::Logit,
            TrainedModel::BagOfJobs(..) => ModelKind::BagOfJobs,
            TrainedModel::Empirical(_) => ModelKind::Empirical,
        }
    }

    fn predictor(&self) -> &dyn Predictor {
        match self {
            TrainedModel::Career(p, _) => p,
            TrainedModel::Logit(p, _) => p,
            TrainedModel::BagOfJobs(p, _) => p,
            TrainedModel::Empirical(e) => e,
        }
    }

    fn config_json(&self) -> Result<serde_json::Value> {
        let v = match self {
            TrainedModel::Career(_, c) => serde_json::to_value(c),
            TrainedModel::Logit(_, c) => serde_json::to_value(c),
            TrainedModel::BagOfJobs(_, c) => serde_json::to_value(c),
            TrainedModel::Empirical(e) => Ok(serde_json::json!({ "alpha": e.alpha() })),
        };
        v.map_err(|source| Error::ConfigJson {
            path: PathBuf::from("model.json"),
            source,
        })
    }
}

impl Predictor for TrainedModel {
    fn name(&self) -> &str {
        self.predictor().name()
    }

    fn predict_worker(&self, worker: &Worker, full: bool) -> Result<Vec<StepPrediction>> {
        self.predictor().predict_worker(worker, full)
    }
}

fn write_meta(dir: &Path, meta: &ModelMeta) -> Result<()> {
    let path = dir.join("model.json");
    let json = serde_json::to_vec_pretty(meta).map_err(|source| Error::ConfigJson {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, &json)
}

/// Writes `model` to the directory `dir` (created if needed).
///
/// # Errors
/// I/O and serialisation errors.
pub fn save_model(
    model: &TrainedModel,
    taxonomy: &str,
    summary: Option<&TrainSummary>,
    dir: impl AsRef<Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let n_states = match model {
        TrainedModel::Career(p, _) => p.model().vocab().n_states,
        TrainedModel::Logit(p, _) => p.model().vocab().n_states,
        TrainedModel::BagOfJobs(p, _) => p.model().vocab().n_states,
        TrainedModel::Empirical(e) => e.n_states(),
    };
    match model {
        TrainedModel::Career(p, _) => save_weights(p.model(), &weights_path(dir))?,
        TrainedModel::Logit(p, _) => save_weights(p.model(), &weights_path(dir))?,
        TrainedModel::BagOfJobs(p, _) => save_weights(p.model(), &weights_path(dir))?,
        TrainedModel::Empirical(e) => {
            let path = dir.join("empirical.json");
            let json = serde_json::to_vec(e).map_err(|source| Error::ConfigJson {
                path: path.clone(),
                source,
            })?;
            write_atomic(&path, &json)?;
        }
    }
    write_meta(
        dir,
        &ModelMeta {
            kind: model.kind(),
            taxonomy: taxonomy.to_string(),
            n_states,
            config: model.config_json()?,
            summary: summary.cloned(),
        },
    )
}

/// The files of a trained model or of a training run in progress.
const MODEL_FILES: &[&str] = &[
    "model.json",
    "model.bpk",
    "empirical.json",
    "loss.csv",
    "checkpoint",
    "checkpoint.old",
    "checkpoint.tmp",
];

/// Reads `DIR/model.json`.
///
/// # Errors
/// I/O and JSON errors.
pub fn read_meta(dir: impl AsRef<Path>) -> Result<ModelMeta> {
    let path = dir.as_ref().join("model.json");
    let text = fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::ConfigJson { path, source })
}

fn config_of<C: serde::de::DeserializeOwned>(dir: &Path, meta: &ModelMeta) -> Result<C> {
    serde_json::from_value(meta.config.clone()).map_err(|source| Error::ConfigJson {
        path: dir.join("model.json"),
        source,
    })
}

/// Loads the model in `dir` onto `device` (a plain device, for prediction).
///
/// The configuration in `model.json` is validated and the number of parameters it declares
/// compared with the weights file's tensor table before the model is allocated.
///
/// # Errors
/// I/O, JSON and checkpoint errors; [`Error::UnsupportedConfig`] for sizes that cannot be a
/// model, [`Error::Inconsistent`] when `model.json` and the weights disagree.
pub fn load_model(dir: impl AsRef<Path>, device: &Device) -> Result<TrainedModel> {
    let dir = dir.as_ref();
    let meta = read_meta(dir)?;
    let w = weights_path(dir);
    Ok(match meta.kind {
        ModelKind::Career => {
            let c: CareerConfig = config_of(dir, &meta)?;
            c.vocab.validate()?;
            c.validate()?;
            check_record(&w, c.num_params())?;
            let m = load_weights(c.init(device), &w)?;
            TrainedModel::Career(SeqPredictor::new(m, "career", c.max_seq_len), c)
        }
        ModelKind::Logit => {
            let c: LogitConfig = config_of(dir, &meta)?;
            c.vocab.validate()?;
            check_record(&w, c.num_params())?;
            let m = load_weights(c.init(device), &w)?;
            TrainedModel::Logit(SeqPredictor::new(m, "logit", usize::MAX), c)
        }
        ModelKind::BagOfJobs => {
            let c: BagOfJobsConfig = config_of(dir, &meta)?;
            c.vocab.validate()?;
            check_record(&w, c.num_params())?;
            let m = load_weights(c.init(device), &w)?;
            TrainedModel::BagOfJobs(SeqPredictor::new(m, "bag-of-jobs", usize::MAX), c)
        }
        ModelKind::Empirical => {
            let path = dir.join("empirical.json");
            let text = fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            TrainedModel::Empirical(
                serde_json::from_str(&text).map_err(|source| Error::ConfigJson { path, source })?,
            )
        }
    })
}

/// Years covered by `panel` (for the year table), or `(1970, 2030)` when it is empty.
pub fn year_range(panel: &Panel) -> (i32, i32) {
    let years = panel
        .workers()
        .iter()
        .flat_map(|w| w.records.iter().map(|r| r.year));
    let (lo, hi) = years.fold((i32::MAX, i32::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if lo > hi { (1970, 2030) } else { (lo, hi) }
}

/// Size of a CAREER model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CareerSize {
    /// [`CareerConfig::paper`].
    Paper,
    /// [`CareerConfig::small`].
    Small,
}

impl FromStr for CareerSize {
    type Err = Error;

    /// Parses `small` or `paper`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "small" => Ok(CareerSize::Small),
            "paper" => Ok(CareerSize::Paper),
            other => Err(Error::InvalidOption {
                name: "size",
                detail: format!("unknown CAREER size `{other}` (small, paper)"),
            }),
        }
    }
}

/// Trains a model of any kind; see [`crate::seq::train`] for the procedure and the files.
///
/// ```no_run
/// # fn main() -> labor_model::Result<()> {
/// use labor_data::io::read_parquet;
/// use labor_model::{ModelKind, Predictor, TrainBuilder};
/// let train = read_parquet("train.parquet")?;
/// let valid = read_parquet("valid.parquet")?;
/// let (model, _summary) = TrainBuilder::new(ModelKind::Career, &train, &valid)
///     .with_epochs(4)
///     .with_out_dir("models/career")
///     .build()?
///     .run(|p| eprintln!("step {} loss {:.3}", p.row.step, p.row.train_loss))?;
/// assert_eq!(model.name(), "career");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TrainBuilder<'a> {
    kind: ModelKind,
    train: &'a Panel,
    valid: &'a Panel,
    options: TrainOptions,
    size: CareerSize,
    career: Option<CareerConfig>,
    out: Option<PathBuf>,
    pretrained: Option<PathBuf>,
    resume: bool,
    overwrite: bool,
    alpha: f64,
    device: Device,
}

impl<'a> TrainBuilder<'a> {
    /// Trains `kind` on `train`, validating on `valid`, with [`ModelKind::default_options`] and
    /// the small CAREER size.
    pub fn new(kind: ModelKind, train: &'a Panel, valid: &'a Panel) -> Self {
        Self {
            kind,
            train,
            valid,
            options: kind.default_options(),
            size: CareerSize::Small,
            career: None,
            out: None,
            pretrained: None,
            resume: false,
            overwrite: false,
            alpha: DEFAULT_ALPHA,
            device: Device::default(),
        }
    }

    /// Replaces every training option.
    #[must_use]
    pub fn with_options(mut self, options: TrainOptions) -> Self {
        self.options = options;
        self
    }

    /// Epochs.
    #[must_use]
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.options.epochs = epochs;
        self
    }

    /// Stop after this many updates.
    #[must_use]
    pub fn with_max_steps(mut self, steps: usize) -> Self {
        self.options.max_steps = Some(steps);
        self
    }

    /// Peak learning rate.
    #[must_use]
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.options.lr = lr;
        self
    }

    /// Seed of initialisation, batch order and dropout.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }

    /// The CAREER size (ignored when a configuration or a pretrained model is given).
    #[must_use]
    pub fn with_size(mut self, size: CareerSize) -> Self {
        self.size = size;
        self
    }

    /// An explicit CAREER configuration.
    #[must_use]
    pub fn with_career_config(mut self, config: CareerConfig) -> Self {
        self.career = Some(config);
        self
    }

    /// Directory for the model, loss curve and checkpoints.
    #[must_use]
    pub fn with_out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out = Some(dir.into());
        self
    }

    /// Fine-tunes every weight of the model in `dir` (same kind) with a fresh optimizer.
    #[must_use]
    pub fn with_pretrained(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pretrained = Some(dir.into());
        self
    }

    /// Continues from the checkpoint in the output directory.
    #[must_use]
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Lets a new run (not a resumed one) replace a model already in the output directory: its
    /// `model.json`, weights, `loss.csv` and checkpoint are removed before training starts.
    /// Without it, [`build`](Self::build) refuses such a directory, so that neither a finished
    /// model nor the checkpoint a later resume would continue is lost or mixed with the new run.
    #[must_use]
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Smoothing of the empirical model.
    #[must_use]
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// The device (plain; autodiff is added for training).
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Training`] for empty panels, panels of different taxonomies, zero epochs,
    /// `resume` without an output directory, or a pretrained model of another kind or
    /// taxonomy; [`Error::Data`] when the pretrained model is the output directory;
    /// [`Error::ModelDir`] for an output directory that already holds a model when neither
    /// resuming nor [overwriting](Self::with_overwrite).
    pub fn build(self) -> Result<Trainer<'a>> {
        let bad = |field, detail: String| Err(Error::Training { field, detail });
        if self.train.is_empty() || self.valid.is_empty() {
            return bad(
                "panels",
                "the training and validation panels must not be empty".into(),
            );
        }
        if self.train.taxonomy().name() != self.valid.taxonomy().name()
            || self.train.taxonomy().len() != self.valid.taxonomy().len()
        {
            return bad(
                "panels",
                "training and validation panels use different taxonomies".into(),
            );
        }
        if self.options.epochs == 0 {
            return bad("epochs", "at least one epoch".into());
        }
        let o = &self.options;
        let gradient = self.kind != ModelKind::Empirical;
        let lr_ok = o.lr.is_finite() && o.lr > 0.0;
        let alpha_ok = self.alpha.is_finite() && self.alpha > 0.0;
        if gradient && !lr_ok {
            return bad("lr", format!("{} is not a positive number", o.lr));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("{} is not a finite non-negative number", o.weight_decay),
            );
        }
        if gradient && o.max_tokens == 0 {
            return bad("max_tokens", "at least one position per batch".into());
        }
        if !gradient && !alpha_ok {
            return bad(
                "alpha",
                format!("{} is not a positive smoothing", self.alpha),
            );
        }
        if self.resume && self.out.is_none() {
            return bad("resume", "resuming needs the output directory".into());
        }
        if let Some(out) = &self.out {
            if let Some(dir) = &self.pretrained {
                labor_data::atomic::check_output(out, [dir.as_path()])?;
            }
            check_run_dir(out, MODEL_FILES, self.resume, self.overwrite)?;
        }
        let pretrained_meta = match &self.pretrained {
            Some(dir) => {
                let meta = read_meta(dir)?;
                if meta.kind != self.kind || meta.n_states != self.train.taxonomy().len() {
                    return bad(
                        "pretrained",
                        format!(
                            "{} is a {} model over {} states; training a {} model over {}",
                            dir.display(),
                            meta.kind.name(),
                            meta.n_states,
                            self.kind.name(),
                            self.train.taxonomy().len()
                        ),
                    );
                }
                Some(meta)
            }
            None => None,
        };
        Ok(Trainer {
            b: self,
            pretrained_meta,
        })
    }
}

/// A checked training run; see [`TrainBuilder`].
#[derive(Debug)]
pub struct Trainer<'a> {
    b: TrainBuilder<'a>,
    pretrained_meta: Option<ModelMeta>,
}

impl Trainer<'_> {
    /// Trains, calling `progress` after every update and validation; returns the best
    /// validation model and the summary (and writes them to the output directory).
    ///
    /// # Errors
    /// As [`train_seq`], and I/O errors.
    pub fn run(self, mut progress: impl FnMut(&Progress)) -> Result<(TrainedModel, TrainSummary)> {
        let b = &self.b;
        let tax = b.train.taxonomy().name().to_string();
        let n = b.train.taxonomy().len();
        let (lo, hi) = year_range(b.train);
        let vocab = SeqVocab::new(n, lo, hi);
        let ad = b.device.clone().autodiff();
        b.device.seed(b.options.seed);
        let out = b.out.as_deref();
        if let Some(o) = out
            && b.overwrite
            && !b.resume
        {
            clear_run_dir(o, MODEL_FILES)?;
        }
        let pre = |kind_dir: &Path| weights_path(kind_dir);
        let (model, summary) = match b.kind {
            ModelKind::Empirical => {
                let start = std::time::Instant::now();
                let m = Empirical::fit(b.train, b.alpha)?;
                let tokens = b.train.n_worker_years() as u64;
                let seconds = start.elapsed().as_secs_f64();
                let mut nll = 0.0;
                for w in b.valid.workers() {
                    nll -= m
                        .predict_worker(w, false)?
                        .iter()
                        .map(|p| p.log_prob)
                        .sum::<f64>();
                }
                let valid_loss = nll / b.valid.n_worker_years().max(1) as f64;
                progress(&Progress {
                    row: crate::rundir::CurveRow {
                        step: 0,
                        epoch: 1,
                        tokens,
                        train_loss: f64::NAN,
                        valid_loss: Some(valid_loss),
                        learning_rate: 0.0,
                    },
                    total_steps: 0,
                    tokens_per_sec: tokens as f64 / seconds.max(1e-9),
                    eta: std::time::Duration::ZERO,
                });
                let summary = TrainSummary {
                    stopped_early: false,
                    patience: 0,
                    state: crate::seq::train::TrainState {
                        step: 0,
                        epoch: 1,
                        tokens,
                        best_valid: valid_loss,
                        best_epoch: 1,
                    },
                    seconds,
                    tokens_per_second: tokens as f64 / seconds.max(1e-9),
                };
                (TrainedModel::Empirical(m), summary)
            }
            ModelKind::Career => {
                let config = match (&self.pretrained_meta, &b.career) {
                    (Some(meta), _) => config_of(Path::new("pretrained"), meta)?,
                    (None, Some(c)) => c.clone(),
                    (None, None) => match b.size {
                        CareerSize::Paper => CareerConfig::paper(vocab),
                        CareerSize::Small => CareerConfig::small(vocab),
                    },
                };
                let mut model = config.init(&ad);
                if let Some(dir) = &b.pretrained {
                    model = load_weights(model, &pre(dir))?;
                }
                let max_len = config.max_seq_len;
                let (m, s) = self.fit(model, max_len, &config, &mut progress, |m, c| {
                    TrainedModel::Career(SeqPredictor::new(m, "career", max_len), c)
                })?;
                (m, s)
            }
            ModelKind::Logit => {
                let config = match &self.pretrained_meta {
                    Some(meta) => config_of(Path::new("pretrained"), meta)?,
                    None => LogitConfig::new(vocab),
                };
                let mut model = config.init(&ad);
                if let Some(dir) = &b.pretrained {
                    model = load_weights(model, &pre(dir))?;
                }
                self.fit(model, usize::MAX, &config, &mut progress, |m, c| {
                    TrainedModel::Logit(SeqPredictor::new(m, "logit", usize::MAX), c)
                })?
            }
            ModelKind::BagOfJobs => {
                let config = match &self.pretrained_meta {
                    Some(meta) => config_of(Path::new("pretrained"), meta)?,
                    None => BagOfJobsConfig::small(vocab),
                };
                let mut model = config.init(&ad);
                if let Some(dir) = &b.pretrained {
                    model = load_weights(model, &pre(dir))?;
                }
                self.fit(model, usize::MAX, &config, &mut progress, |m, c| {
                    TrainedModel::BagOfJobs(SeqPredictor::new(m, "bag-of-jobs", usize::MAX), c)
                })?
            }
        };
        if let Some(o) = out {
            save_model(&model, &tax, Some(&summary), o)?;
        }
        Ok((model, summary))
    }

    fn fit<M, C>(
        &self,
        model: M,
        max_len: usize,
        config: &C,
        progress: &mut dyn FnMut(&Progress),
        wrap: impl Fn(M, C) -> TrainedModel,
    ) -> Result<(TrainedModel, TrainSummary)>
    where
        M: SeqModel + Module + Clone,
        C: Clone,
    {
        let b = &self.b;
        let tax = b.train.taxonomy().name().to_string();
        let mut improved =
            |m: &M, dir: &Path| save_model(&wrap(m.clone(), config.clone()), &tax, None, dir);
        let (best, summary) = train_seq(
            model,
            b.train,
            b.valid,
            &b.options,
            max_len,
            b.out.as_deref(),
            b.resume,
            &mut improved,
            progress,
        )?;
        Ok((wrap(best, config.clone()), summary))
    }
}
