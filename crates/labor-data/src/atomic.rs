//! Outputs that appear complete or not at all, and outputs that are never one of the inputs.
//!
//! Every file a `labor` command writes goes through [`AtomicFile`]: the bytes go to a temporary
//! file in the destination's directory, which is flushed to disk and renamed over the
//! destination only when the writer is [committed](AtomicFile::commit). An error or a crash
//! before that leaves the old file untouched, and a writer dropped without a commit removes its
//! temporary file. Outputs made of several files that belong together (the three parts of a
//! split) go through [`AtomicDir`], which stages the whole set in a fresh directory and swaps it
//! in. [`check_output`] refuses an output path that names one of the command's inputs before
//! anything is written.
//!
//! ```
//! use std::io::Write;
//! use labor_data::atomic::AtomicFile;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("out.txt");
//! std::fs::write(&path, "old")?;
//! let mut f = AtomicFile::create(&path)?;
//! f.write_all(b"new")?;
//! assert_eq!(std::fs::read_to_string(&path)?, "old"); // not visible before the commit
//! f.commit()?;
//! assert_eq!(std::fs::read_to_string(&path)?, "new");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes the temporary names of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden sibling of `dest` that no other writer uses: `.{name}.{pid}.{n}.{suffix}`.
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file = format!(".{name}.{}.{n}.{suffix}", std::process::id());
    match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join(file),
        None => PathBuf::from(file),
    }
}

/// Removes what killed writers left beside `dest`: hidden siblings `.{name}.{pid}.{n}.tmp`
/// (a file being written) and `.{name}.{pid}.{n}.new` (a set being staged) of processes that
/// no longer run, and `.{name}.{pid}.{n}.old` (a replaced set) when `dest` exists (when it does
/// not, a crash fell between the two renames of a swap, and the old set is all there is: it
/// stays). Live writers, other processes' included, are never touched (processes are looked
/// up in this process's `/proc`: a writer in another PID namespace, such as another container
/// sharing the directory, is not seen). Where process ids cannot be checked (no `/proc`),
/// nothing is removed. Best effort: errors are ignored.
fn remove_stale_siblings(dest: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        let [pid, n, kind] = parts[..] else {
            continue;
        };
        if !(pid.bytes().all(|b| b.is_ascii_digit()) && n.bytes().all(|b| b.is_ascii_digit()))
            || pid.is_empty()
            || n.is_empty()
            || proc.join(pid).exists()
        {
            continue;
        }
        let path = e.path();
        let _ = match kind {
            "tmp" => std::fs::remove_file(&path),
            "new" => std::fs::remove_dir_all(&path),
            "old" if dest.exists() => std::fs::remove_dir_all(&path),
            _ => Ok(()),
        };
    }
}

/// A file written to a temporary sibling and renamed over its destination on
/// [`commit`](Self::commit); dropped without a commit, it removes the temporary file and leaves
/// the destination as it was. Temporary files that killed writers left beside the destination
/// are removed when the next writer starts.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `dest` (its directory must exist).
    ///
    /// # Errors
    /// [`Error::Io`] naming the temporary file when it cannot be created.
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        remove_stale_siblings(&dest);
        let tmp = sibling(&dest, "tmp");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(Self {
            dest,
            tmp,
            out: Some(BufWriter::new(file)),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes the bytes to disk and renames the temporary file over the destination.
    ///
    /// # Errors
    /// [`Error::Io`] naming the destination (a full disk shows here at the latest); the
    /// destination is then untouched and the temporary file removed.
    pub fn commit(mut self) -> Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let done = (|| {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.tmp, &self.dest)
        })();
        if let Err(e) = done {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::io(&self.dest, e));
        }
        Ok(())
    }

    /// The open writer and the destination's path.
    fn parts(&mut self) -> std::io::Result<(&mut BufWriter<File>, &Path)> {
        match self.out.as_mut() {
            Some(out) => Ok((out, &self.dest)),
            None => Err(std::io::Error::other("write after commit")),
        }
    }
}

/// A write error with the destination named (a full disk must say which file it stopped),
/// keeping the error's kind.
fn located(dest: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("writing {}: {e}", dest.display()))
}

/// Writes go to the temporary file; an error names the destination.
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (out, dest) = self.parts()?;
        out.write(buf).map_err(|e| located(dest, e))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let (out, dest) = self.parts()?;
        out.write_all(buf).map_err(|e| located(dest, e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let (out, dest) = self.parts()?;
        out.flush().map_err(|e| located(dest, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(dest: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let dest = dest.as_ref();
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    f.commit()
}

/// A set of files staged in a fresh directory beside `dest` and moved in on
/// [`commit`](Self::commit), so that readers never see new files of the set beside old ones.
///
/// When `dest` does not exist, or holds nothing but files the set replaces, the staging
/// directory is swapped in whole (two renames: a crash between them leaves `dest` absent and the
/// old directory intact at a hidden sibling `.{name}.{pid}.{n}.old`, never a mixed set). When
/// `dest` also holds other files (a working directory, a data folder), those are never moved:
/// the staged files are renamed over their counterparts one by one, each rename atomic, so only
/// a crash in the microseconds between two renames could leave a mixed set. Dropped without a
/// commit, the staging directory is removed.
#[derive(Debug)]
pub struct AtomicDir {
    dest: PathBuf,
    staging: PathBuf,
    done: bool,
}

impl AtomicDir {
    /// Creates the staging directory for `dest` (`dest`'s parent must exist; `dest` itself may
    /// or may not).
    ///
    /// # Errors
    /// [`Error::Io`] naming the staging directory.
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref();
        // A symbolic link or `.` names the directory it points to.
        let dest = std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf());
        remove_stale_siblings(&dest);
        let staging = sibling(&dest, "new");
        std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
        Ok(Self {
            dest,
            staging,
            done: false,
        })
    }

    /// Where to write the files of the set.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Moves the staged set into `dest`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file or directory that could not be moved.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Error::io(p, e)
        };
        if !self.dest.exists() {
            return std::fs::rename(&self.staging, &self.dest).map_err(io(&self.dest));
        }
        let names = |dir: &Path| -> Result<Vec<std::ffi::OsString>> {
            std::fs::read_dir(dir)
                .map_err(io(dir))?
                .map(|e| e.map(|e| e.file_name()).map_err(io(dir)))
                .collect()
        };
        let staged = names(&self.staging)?;
        let foreign = names(&self.dest)?.into_iter().any(|n| !staged.contains(&n));
        if foreign {
            for n in &staged {
                std::fs::rename(self.staging.join(n), self.dest.join(n))
                    .map_err(io(&self.dest.join(n)))?;
            }
            return std::fs::remove_dir(&self.staging).map_err(io(&self.staging));
        }
        let old = sibling(&self.dest, "old");
        std::fs::rename(&self.dest, &old).map_err(io(&self.dest))?;
        std::fs::rename(&self.staging, &self.dest).map_err(io(&self.dest))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Whether two paths name the same file: equal paths, or existing files that are one file
/// through links or relative parts. Two outputs of one command must not be the same file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// Refuses an output that names one of the inputs (the same file through any path), before
/// anything is written.
///
/// # Errors
/// [`Error::OutputIsInput`].
pub fn check_output<'a>(output: &Path, inputs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let Ok(out) = std::fs::canonicalize(output) else {
        return Ok(()); // an output that does not exist yet is no input
    };
    for input in inputs {
        if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
            return Err(Error::OutputIsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_killed_writers_are_removed_and_live_ones_kept() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // pid 99999999 is above any kernel's pid limit: never a live process.
        let me = std::process::id();
        for f in [
            ".out.txt.99999999.0.tmp".to_string(),
            format!(".out.txt.{me}.7.tmp"),
            ".other.txt.99999999.0.tmp".into(),
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        for sub in [".set.99999999.1.new", ".set.99999999.2.old"] {
            std::fs::create_dir(d.join(sub)).unwrap();
            std::fs::write(d.join(sub).join("train.parquet"), "x").unwrap();
        }
        let f = AtomicFile::create(d.join("out.txt")).unwrap();
        drop(f);
        // The set's destination is absent: its `.old` may be the only copy, and stays.
        AtomicDir::create(d.join("set")).unwrap();
        assert_eq!(
            entries(d),
            [
                ".other.txt.99999999.0.tmp".to_string(),
                format!(".out.txt.{me}.7.tmp"),
                ".set.99999999.2.old".into()
            ]
        );
        std::fs::create_dir(d.join("set")).unwrap();
        let a = AtomicDir::create(d.join("set")).unwrap();
        drop(a);
        assert_eq!(
            entries(d),
            [
                ".other.txt.99999999.0.tmp".to_string(),
                format!(".out.txt.{me}.7.tmp"),
                "set".into()
            ]
        );
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn dropped_file_leaves_the_old_content_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    #[test]
    fn commit_failure_names_the_destination_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // The destination is a non-empty directory: the rename fails.
        let p = dir.path().join("d");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), "x").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        match f.commit() {
            Err(Error::Io { path, .. }) => assert_eq!(path, p),
            other => panic!("{other:?}"),
        }
        assert_eq!(entries(dir.path()), ["d"]);
    }

    /// A temporary root holding the directory `split` with `files` (name, content).
    fn split_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("split");
        std::fs::create_dir(&d).unwrap();
        for (n, c) in files {
            std::fs::write(d.join(n), c).unwrap();
        }
        (root, d)
    }

    #[test]
    fn other_files_stay_where_they_are_and_the_set_is_replaced() {
        let (root, d) = split_dir(&[("train", "old"), ("test", "old"), ("notes", "mine")]);
        let set = AtomicDir::create(&d).unwrap();
        std::fs::write(set.path().join("train"), "new").unwrap();
        std::fs::write(set.path().join("test"), "new").unwrap();
        // Before the commit the old set is whole.
        assert_eq!(std::fs::read_to_string(d.join("train")).unwrap(), "old");
        set.commit().unwrap();
        assert_eq!(entries(&d), ["notes", "test", "train"]);
        assert_eq!(std::fs::read_to_string(d.join("test")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(d.join("notes")).unwrap(), "mine");
        assert_eq!(entries(root.path()), ["split"]);
    }

    #[test]
    fn a_directory_of_only_the_set_is_swapped_whole() {
        let (root, d) = split_dir(&[("train", "old")]);
        let set = AtomicDir::create(&d).unwrap();
        std::fs::write(set.path().join("train"), "new").unwrap();
        std::fs::write(set.path().join("test"), "new").unwrap();
        set.commit().unwrap();
        assert_eq!(entries(&d), ["test", "train"]);
        assert_eq!(std::fs::read_to_string(d.join("train")).unwrap(), "new");
        assert_eq!(entries(root.path()), ["split"]);
    }

    #[test]
    fn dropped_dir_leaves_the_old_set() {
        let (root, d) = split_dir(&[("train", "old")]);
        {
            let set = AtomicDir::create(&d).unwrap();
            std::fs::write(set.path().join("train"), "new").unwrap();
        }
        assert_eq!(std::fs::read_to_string(d.join("train")).unwrap(), "old");
        assert_eq!(entries(root.path()), ["split"]);
    }

    #[test]
    fn output_equal_to_an_input_is_refused_through_any_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        std::fs::write(&p, "x").unwrap();
        let other = dir.path().join(".").join("in.csv");
        assert!(matches!(
            check_output(&other, [p.as_path()]),
            Err(Error::OutputIsInput { .. })
        ));
        assert!(check_output(&dir.path().join("out.csv"), [p.as_path()]).is_ok());
    }
}
