//! The run directory: checkpoints swapped in whole, and the loss curve.

use std::path::Path;

use crate::error::{Error, Result};

use super::options::CurveRow;

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn ck_err(path: &Path, e: impl std::fmt::Debug) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        detail: format!("{e:?}"),
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

/// Writes the loss curve CSV (temporary file, then rename).
pub(super) fn write_curve(path: &Path, rows: &[CurveRow]) -> Result<()> {
    let mut s = String::from("step,epoch,tokens,train_loss,valid_loss,learning_rate\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.step,
            r.epoch,
            r.tokens,
            r.train_loss,
            r.valid_loss.map(|v| v.to_string()).unwrap_or_default(),
            r.learning_rate
        ));
    }
    crate::train::write_atomic(path, s.as_bytes())
}
