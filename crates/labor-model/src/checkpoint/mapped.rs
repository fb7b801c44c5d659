//! Read-only memory maps of checkpoint files (GGUF and safetensors).
//!
//! A checkpoint is mapped once per load and its tensors are converted to f32 straight from the
//! mapped bytes, so a multi-gigabyte file costs no heap copy. Each tensor's byte range is
//! checked against the length of the map before it is sliced, so a short or corrupted file gives
//! a typed error, never an out-of-bounds read.
//!
//! # The file must not change while it is loaded
//!
//! Mapping a file is `unsafe` in Rust because the operating system does not stop another
//! process from writing to or truncating the file while it is mapped: a write would change bytes
//! the loader reads through a `&[u8]`, and a truncation would make reads past the new end
//! raise `SIGBUS` (the process is killed). The loaders require, as llama.cpp and the
//! safetensors/Hugging Face loaders do, that checkpoint files are not modified or truncated
//! while a model is being loaded from them (replace a checkpoint by writing a new file and
//! renaming it over the old one, which leaves an open mapping intact).

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Maps `path` read-only.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or mapped.
pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the map is read-only (PROT_READ, MAP_SHARED) and this crate never writes through
    // it. The remaining hazard is another process modifying or truncating the file while it is
    // mapped (see the module docs): the loaders document that checkpoint files must not change
    // during a load. Every slice taken from the map is bounds-checked against `Mmap::len`, the
    // file's length when it was mapped, so a file that is merely short or corrupt gives an
    // error, not an out-of-bounds read.
    unsafe { Mmap::map(&file) }.map_err(io)
}

/// Tells the kernel that the bytes `start..start + len` of `map` are no longer needed, so that
/// the pages of a converted tensor leave the process's resident set (a later read of them
/// faults them back in from the file). Best effort: errors are ignored. Without it the touched
/// pages of a mapped checkpoint stay resident beside the f32 model: loading SmolLM2-135M then
/// peaked at 1,057 MiB instead of 571 MiB (docs/checkpoints.md).
pub(crate) fn release(map: &Mmap, start: usize, len: usize) {
    if start.checked_add(len).is_none_or(|end| end > map.len()) || len == 0 {
        return;
    }
    #[cfg(unix)]
    {
        // SAFETY: `map` is a read-only shared file mapping. For such a mapping MADV_DONTNEED
        // only drops the page-table entries: a later access faults the same bytes back in from
        // the file (the page cache), so any slice of the map, even one still borrowed, keeps
        // its contents. The range was checked to lie inside the map above (memmap2 rounds the
        // start down to a page boundary, still inside the map).
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len) };
    }
}
