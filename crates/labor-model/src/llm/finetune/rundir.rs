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
    crate::seq::train::write_atomic(path, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
