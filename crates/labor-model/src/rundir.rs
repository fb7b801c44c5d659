//! The skeleton every trainer shares: the run directory (a new run refused where one is,
//! unless it resumes or overwrites; directories written whole and swapped in; a killed swap put
//! back in order), exact resume (parameters numbered and trainable flags restored; options
//! compared), the loss log (one row type, [`CurveRow`], written and read with the `csv` crate)
//! and what a trainer reports after each step ([`Progress`]). CAREER and the baselines
//! ([`crate::seq::train`]) and fine-tuning ([`crate::Finetune`]) run their own loops on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One row of the loss curve of a training run (`loss.csv`), the same for every trainer: one
/// row per optimizer step, and for CAREER and the baselines also one per validation (with the
/// epoch's mean training loss).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// Optimizer steps done (1-based).
    pub step: usize,
    /// Epoch of the step (from 1).
    pub epoch: usize,
    /// Tokens (worker-years for the sequence models) processed so far.
    pub tokens: u64,
    /// Mean loss per token of the step, or of the epoch on a validation row (nats).
    pub train_loss: f64,
    /// Mean validation loss per loss token, when evaluated after this step.
    pub valid_loss: Option<f64>,
    /// Learning rate of the step.
    pub learning_rate: f64,
}

/// What the progress callback sees after each optimizer step.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The row just added to the loss curve.
    pub row: CurveRow,
    /// Steps scheduled in the whole run.
    pub total_steps: usize,
    /// Input tokens per second since this process started (or resumed) the run.
    pub tokens_per_sec: f64,
    /// Estimated time to the end of the run.
    pub eta: Duration,
}

impl Progress {
    /// The event of `row` in a run of `total_steps` steps, of which this process has done
    /// `steps` over `tokens` tokens in `secs` seconds (for the speed and the time left).
    pub(crate) fn new(
        row: CurveRow,
        total_steps: usize,
        tokens: u64,
        steps: usize,
        secs: f64,
    ) -> Self {
        let secs = secs.max(1e-9);
        let left = total_steps.saturating_sub(row.step) as f64;
        Self {
            eta: Duration::from_secs_f64(secs / steps.max(1) as f64 * left),
            tokens_per_sec: tokens as f64 / secs,
            row,
            total_steps,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// burn's error writing or reading the record at `path`.
pub(crate) fn record_err(path: &Path) -> impl FnOnce(burn::store::RecordError) -> Error + '_ {
    move |source| Error::Record {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces directory `dst` by `tmp` (rename `dst` aside, rename `tmp` in, remove the old one).
pub(crate) fn swap_dir(tmp: &Path, dst: &Path) -> Result<()> {
    let old = dst.with_extension("old");
    if dst.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        std::fs::rename(dst, &old).map_err(io_err(dst))?;
    }
    std::fs::rename(tmp, dst).map_err(io_err(dst))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Puts `dst` back in order after a run killed while writing it ([`write_dir_swapped`]):
/// - killed while staging (`dst` whole): the partial `dst.tmp` is removed, and a `dst.old` left
///   behind;
/// - killed between the two renames of [`swap_dir`] (`dst` gone, `dst.old` there): `dst.tmp`
///   was complete (the swap starts only after it is written), so the swap is finished; without
///   it, `dst.old` is put back;
/// - killed while staging the first `dst` (neither there): the partial `dst.tmp` is removed.
///
/// Trainers call it when a run starts, so a resume reads the newest complete checkpoint and a
/// killed run's partial one does not stay on disk.
///
/// # Errors
/// [`Error::Io`] naming the entry that could not be renamed or removed.
pub(crate) fn recover_swap(dst: &Path) -> Result<()> {
    let tmp = dst.with_extension("tmp");
    let old = dst.with_extension("old");
    let remove = |p: &Path| -> Result<()> {
        if p.is_dir() {
            std::fs::remove_dir_all(p).map_err(io_err(p))
        } else if p.exists() {
            std::fs::remove_file(p).map_err(io_err(p))
        } else {
            Ok(())
        }
    };
    if dst.is_dir() {
        remove(&tmp)?;
        return remove(&old);
    }
    if old.is_dir() {
        let newest = if tmp.is_dir() { &tmp } else { &old };
        std::fs::rename(newest, dst).map_err(io_err(dst))?;
        return remove(&old);
    }
    remove(&tmp)
}

/// Writes a directory of files as one: `write` fills a fresh `tmp`, which is then swapped in
/// for `dst` ([`swap_dir`]); when `write` fails (a full disk), `tmp` is removed and `dst` left
/// as it was.
pub(crate) fn write_dir_swapped(
    tmp: &Path,
    dst: &Path,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    fresh_dir(tmp)?;
    if let Err(e) = write(tmp) {
        let _ = std::fs::remove_dir_all(tmp);
        return Err(e);
    }
    swap_dir(tmp, dst)
}

pub(crate) fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Writes `bytes` to `path` through a temporary file and a rename (nothing is left behind
/// when the write fails).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(labor_data::atomic::write(path, bytes)?)
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The columns of `loss.csv`, in order.
const CURVE_COLUMNS: [&str; 6] = [
    "step",
    "epoch",
    "tokens",
    "train_loss",
    "valid_loss",
    "learning_rate",
];

/// The loss log as CSV text: the header and one line per row.
fn curve_csv(path: &Path, rows: &[CurveRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(CURVE_COLUMNS)
            .map_err(|e| csv_err(path, e))?;
    }
    for r in rows {
        w.serialize(r).map_err(|e| csv_err(path, e))?;
    }
    w.into_inner().map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })
}

/// Writes the loss log `rows` to `path` as one file (temporary file, then rename).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub(crate) fn write_curve(path: &Path, rows: &[CurveRow]) -> Result<()> {
    write_atomic(path, &curve_csv(path, rows)?)
}

/// Reads the loss log at `path` (no rows when the file does not exist). A last line cut short
/// by a kill or a full disk (no line end), or any line that is not a whole row, is left out.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub(crate) fn read_curve(path: &Path) -> Result<Vec<CurveRow>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(whole.as_bytes());
    Ok(r.deserialize::<CurveRow>()
        .filter_map(|row| row.ok())
        .collect())
}

/// The loss log of a run that writes a row per step as it goes (CAREER and the baselines): rows
/// are appended and reach the disk at the latest at [`LossLog::flush`].
pub(crate) struct LossLog {
    path: PathBuf,
    out: csv::Writer<fs::File>,
}

impl LossLog {
    /// Starts the log at `path`: a new one (the header alone), or, resuming after `step`, the
    /// rows up to it (the rows after it belong to the interrupted part of an epoch, which runs
    /// again).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub(crate) fn open(path: &Path, resume_after: Option<usize>) -> Result<Self> {
        let kept: Vec<CurveRow> = match resume_after {
            Some(step) => read_curve(path)?
                .into_iter()
                .filter(|r| r.step <= step)
                .collect(),
            None => Vec::new(),
        };
        write_curve(path, &kept)?;
        let f = fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        let out = csv::WriterBuilder::new().has_headers(false).from_writer(f);
        Ok(Self {
            path: path.to_path_buf(),
            out,
        })
    }

    /// Appends `row`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub(crate) fn push(&mut self, row: &CurveRow) -> Result<()> {
        self.out.serialize(row).map_err(|e| csv_err(&self.path, e))
    }

    /// Writes the rows pushed so far to the file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io_err(&self.path))
    }
}

/// Refuses to start a new run in `dir` when it holds any of `names` (a model, a checkpoint, a
/// loss curve), unless the run resumes or may overwrite: a new run must neither lose a finished
/// model nor leave a checkpoint that a later resume would take for its own.
///
/// # Errors
/// [`Error::ModelDir`] naming the files found.
pub(crate) fn check_run_dir(
    dir: &Path,
    names: &[&str],
    resume: bool,
    overwrite: bool,
) -> Result<()> {
    if resume || overwrite {
        return Ok(());
    }
    let found: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::ModelDir {
        path: dir.to_path_buf(),
        detail: format!(
            "already holds a model or a run ({}); resume it (--resume) or replace it (--force)",
            found.join(", ")
        ),
    })
}

/// Removes the files and directories of `names` present in `dir` (before a run that
/// overwrites).
///
/// # Errors
/// [`Error::Io`] naming the entry that could not be removed.
pub(crate) fn clear_run_dir(dir: &Path, names: &[&str]) -> Result<()> {
    for n in names {
        let p = dir.join(n);
        let gone = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else if p.exists() {
            fs::remove_file(&p)
        } else {
            continue;
        };
        gone.map_err(io_err(&p))?;
    }
    Ok(())
}

/// Loads weights written by `Module::save_file` into `model`, keeping what the file does not
/// restore: which parameters are trainable (burn's record load marks every one trainable, which
/// would let a resumed run train a frozen table or a LoRA base) and the parameter ids that the
/// optimizer's state is keyed by ([`number_params`]).
///
/// # Errors
/// [`Error::Checkpoint`] naming the file.
pub(crate) fn load_checkpoint_model<M: Module>(model: M, path: &Path) -> Result<M> {
    struct Trainable(Vec<bool>);
    impl ModuleVisitor for Trainable {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().is_require_grad());
        }
    }
    struct Restore(std::vec::IntoIter<bool>);
    impl ModuleMapper for Restore {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let trainable = self.0.next().unwrap_or(true);
            param.set_require_grad(trainable)
        }
    }
    let mut flags = Trainable(Vec::new());
    model.visit(&mut flags);
    let loaded = model.try_load_file(path).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(number_params(loaded.map(&mut Restore(flags.0.into_iter()))))
}

/// Gives the float parameters of `model` the ids 1, 2, ... in visiting order, so that two
/// instances of one architecture (a run and its resumption) key the optimizer's state alike.
pub(crate) fn number_params<M: Module>(model: M) -> M {
    struct Numbering(u64);
    impl ModuleMapper for Numbering {
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            param.id = ParamId::from(self.0);
            param
        }
    }
    model.map(&mut Numbering(0))
}

/// The first option in which `saved` (a checkpoint's) and `now` (this run's) differ, as
/// ``lr = 0.001 (this run: 0.002)``; options serialise to JSON objects.
pub(crate) fn option_difference<T: Serialize>(saved: &T, now: &T) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(saved), serde_json::to_value(now))
    else {
        return "other options".into();
    };
    a.iter()
        .find(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            let now = b.get(k).map_or_else(|| "none".into(), |x| x.to_string());
            format!("{k} = {v} (this run: {now})")
        })
        .unwrap_or_else(|| "other options".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_log_round_trips_and_drops_a_row_cut_short() {
        let dir = tempfile_dir("loss-log");
        let path = dir.join("loss.csv");
        let row = |step: usize, valid_loss| CurveRow {
            step,
            epoch: 1,
            tokens: 100 * step as u64,
            train_loss: 2.5 / step as f64,
            valid_loss,
            learning_rate: 1e-4,
        };
        let rows = vec![row(1, None), row(2, Some(2.0)), row(3, None)];
        write_curve(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = "step,epoch,tokens,train_loss,valid_loss,learning_rate\n";
        assert!(
            text.starts_with(&format!("{header}1,1,100,2.5,,0.0001\n")),
            "{text}"
        );
        assert_eq!(read_curve(&path).unwrap(), rows);
        // A kill in the middle of a row: the row is left out.
        std::fs::write(&path, format!("{text}4,1,400,0.6")).unwrap();
        assert_eq!(read_curve(&path).unwrap(), rows);
        // Resuming after step 2 keeps rows 1 and 2, then appends.
        let mut log = LossLog::open(&path, Some(2)).unwrap();
        log.push(&row(3, Some(1.5))).unwrap();
        log.flush().unwrap();
        let mut want = rows[..2].to_vec();
        want.push(row(3, Some(1.5)));
        assert_eq!(read_curve(&path).unwrap(), want);
        // A new run: the header alone.
        LossLog::open(&path, None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), header);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_killed_swap_is_put_back_in_order() {
        let dir = tempfile_dir("swap-leftovers");
        let ck = dir.join("checkpoint");
        let put = |name: &str, content: &str| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("state.json"), content).unwrap();
        };
        let read = || std::fs::read_to_string(ck.join("state.json")).unwrap();
        let leftovers =
            || dir.join("checkpoint.tmp").exists() || dir.join("checkpoint.old").exists();
        // Killed while staging: the partial checkpoint goes, the whole one stays.
        put("checkpoint", "2");
        put("checkpoint.tmp", "partial");
        put("checkpoint.old", "1");
        recover_swap(&ck).unwrap();
        assert_eq!((read().as_str(), leftovers()), ("2", false));
        // Killed between the two renames: the staged checkpoint was complete; the swap ends.
        std::fs::rename(&ck, dir.join("checkpoint.old")).unwrap();
        put("checkpoint.tmp", "3");
        recover_swap(&ck).unwrap();
        assert_eq!((read().as_str(), leftovers()), ("3", false));
        // Only the old one left: it comes back.
        std::fs::rename(&ck, dir.join("checkpoint.old")).unwrap();
        recover_swap(&ck).unwrap();
        assert_eq!((read().as_str(), leftovers()), ("3", false));
        // Killed while staging the first checkpoint: nothing to resume from.
        std::fs::remove_dir_all(&ck).unwrap();
        put("checkpoint.tmp", "partial");
        recover_swap(&ck).unwrap();
        assert!(!ck.exists() && !leftovers());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory under the system's temporary directory.
    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("labor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
