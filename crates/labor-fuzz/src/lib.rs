#![doc = include_str!("../README.md")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use labor_data::SeededRng;

mod mutate;
mod seeds;
mod targets;

pub use mutate::Mutator;
pub use seeds::write_seeds;
pub use targets::{TARGETS, Target};

/// The case being run (for [`GuardedAlloc`]'s message): target index and case number.
static CURRENT_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static CURRENT_CASE: AtomicU64 = AtomicU64::new(0);

/// A global allocator that refuses single requests above [`GuardedAlloc::LIMIT`], naming the
/// fuzz case that made them. Install it in a fuzzing binary with `#[global_allocator]`.
#[derive(Debug, Default)]
pub struct GuardedAlloc;

impl GuardedAlloc {
    /// The largest single allocation a reader may make on a fuzzed input (1 GiB; every corpus
    /// file is under a megabyte, so no honest reading of one comes near it).
    pub const LIMIT: usize = 1 << 30;
}

/// Writes `n` in decimal into `buf`, returning the digits (no allocation).
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn report_oversized(size: usize) {
    let target = TARGETS
        .get(CURRENT_TARGET.load(Ordering::Relaxed))
        .map_or("-", |t| t.name);
    let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
    let mut err = std::io::stderr().lock();
    for part in [
        b"labor-fuzz: target ".as_slice(),
        target.as_bytes(),
        b", case ",
        digits(CURRENT_CASE.load(Ordering::Relaxed), &mut a),
        b": a single allocation of ",
        digits(size as u64, &mut b),
        b" bytes was refused\n",
    ] {
        let _ = err.write_all(part);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged, except oversized requests,
// which return null as an allocator that is out of memory does.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > Self::LIMIT {
            report_oversized(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > Self::LIMIT {
            report_oversized(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > Self::LIMIT {
            report_oversized(new_size);
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc`; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// `fixtures/` of the workspace.
pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `fixtures/fuzz/` of the workspace: one corpus folder per target.
pub fn corpus_root() -> PathBuf {
    fixtures_root().join("fuzz")
}

/// One input that made a reader panic.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The case number (`None` for a corpus or regression file run as it is).
    pub case: Option<u64>,
    /// Where the input came from (corpus file, or corpus file + mutations).
    pub origin: String,
    /// The panic message.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
}

/// What a run of one target found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Inputs tried (corpus files, regressions and mutated cases).
    pub inputs: u64,
    /// Inputs the reader accepted.
    pub accepted: u64,
    /// Inputs that panicked.
    pub crashes: Vec<Crash>,
    /// The slowest input's time and origin.
    pub slowest: (Duration, String),
}

/// The files of a corpus folder in name order (the `crashes/` subfolder separately).
///
/// # Errors
/// I/O errors reading the folder.
pub fn corpus(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.file_name().is_none_or(|n| n != "README.md") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, std::fs::read(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

/// Runs one input through `target` in the scratch folder `dir`, catching a panic.
fn run_one(target: &Target, input: &[u8], dir: &Path) -> Result<bool, String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input, dir)))
        .map_err(|p| labor_data::panic_message(p.as_ref()))
}

/// Runs `target` over its corpus and its regressions as they are, then over `cases` mutated
/// inputs (case `i` is derived from `seed` and `i` alone), in the scratch folder `scratch`.
/// With `only_case`, runs that one mutated case and nothing else.
///
/// # Errors
/// I/O errors reading the corpus or preparing the scratch folder; a target with no corpus.
pub fn fuzz(
    target: &Target,
    seed: u64,
    cases: u64,
    only_case: Option<u64>,
    scratch: &Path,
) -> std::io::Result<Report> {
    let index = TARGETS
        .iter()
        .position(|t| t.name == target.name)
        .unwrap_or(usize::MAX);
    CURRENT_TARGET.store(index, Ordering::Relaxed);
    let dir = corpus_root().join(target.name);
    let seeds = seed_corpus(target)?;
    let scratch = scratch.join(target.name);
    std::fs::create_dir_all(&scratch)?;
    let mut report = Report::default();
    let record = |case: Option<u64>, origin: String, input: Vec<u8>, report: &mut Report| {
        let start = Instant::now();
        let outcome = run_one(target, &input, &scratch);
        let took = start.elapsed();
        report.inputs += 1;
        if took > report.slowest.0 {
            report.slowest = (took, origin.clone());
        }
        match outcome {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(message) => report.crashes.push(Crash {
                case,
                origin,
                message,
                input,
            }),
        }
    };
    if only_case.is_none() {
        CURRENT_CASE.store(u64::MAX, Ordering::Relaxed);
        for (name, bytes) in &seeds {
            record(None, format!("corpus {name}"), bytes.clone(), &mut report);
        }
        for (name, bytes) in corpus(&dir.join("crashes"))? {
            record(None, format!("regression {name}"), bytes, &mut report);
        }
    }
    let range = match only_case {
        Some(c) => c..c + 1,
        None => 0..cases,
    };
    for case in range {
        CURRENT_CASE.store(case, Ordering::Relaxed);
        let (input, origin) = mutated(target, &seeds, seed, case);
        record(Some(case), origin, input, &mut report);
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(report)
}

/// Case `case` of a run with `seed`: its input and a description of how it was made.
fn mutated(
    target: &Target,
    seeds: &[(String, Vec<u8>)],
    seed: u64,
    case: u64,
) -> (Vec<u8>, String) {
    let mut rng = SeededRng::with_stream(seed, case);
    let (name, base) = &seeds[rng.below(seeds.len() as u64) as usize];
    let other = &seeds[rng.below(seeds.len() as u64) as usize].1;
    let (input, steps) = Mutator::new(rng, target.text).mutate(base, other);
    (
        input,
        format!("case {case}: corpus {name}, {}", steps.join(", ")),
    )
}

/// The input of case `case` of a run of `target` with `seed` (to save it as a regression).
///
/// # Errors
/// I/O errors reading the corpus; a target with no corpus.
pub fn case_input(target: &Target, seed: u64, case: u64) -> std::io::Result<Vec<u8>> {
    Ok(mutated(target, &seed_corpus(target)?, seed, case).0)
}

/// The corpus files of `target` (an error if it has none: nothing to mutate).
fn seed_corpus(target: &Target) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = corpus_root().join(target.name);
    let seeds = corpus(&dir)?;
    if seeds.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no corpus files", dir.display()),
        ));
    }
    Ok(seeds)
}
