//! `labor-fuzz`: runs the fuzz targets for as long as asked, or writes the seed corpus.
//!
//! ```text
//! labor-fuzz [--cases N] [--seed S] [--case I] [--save] [--verbose] [TARGET ...]
//! labor-fuzz seeds
//! ```
//! Every target runs its corpus, its regressions and `N` mutated cases (default 10,000). A
//! panic is reported with its case; `--save` also writes the input to
//! `fixtures/fuzz/TARGET/crashes/`, where the tests replay it. `--case I` reruns one case (with
//! `--save`, its input is saved whether or not it crashes, to keep a fixed crash as a regression);
//! `--verbose` prints each panic with its backtrace as it happens.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use labor_fuzz::{GuardedAlloc, TARGETS, corpus_root, fixtures_root, fuzz, write_seeds};

#[global_allocator]
static ALLOC: GuardedAlloc = GuardedAlloc;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut cases, mut seed, mut only, mut names) = (10_000u64, 0u64, None, vec![]);
    let (mut save, mut verbose) = (false, false);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| -> Result<u64> {
            args.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag} takes a non-negative integer"))
        };
        match a.as_str() {
            "--cases" => cases = value("--cases")?,
            "--seed" => seed = value("--seed")?,
            "--case" => only = Some(value("--case")?),
            "--save" => save = true,
            "--verbose" => verbose = true,
            "seeds" => {
                for p in write_seeds(&corpus_root(), &fixtures_root())? {
                    println!("{}", p.display());
                }
                return Ok(());
            }
            "-h" | "--help" => {
                println!(
                    "labor-fuzz [--cases N] [--seed S] [--case I] [--save] [--verbose] [TARGET ...] | labor-fuzz seeds"
                );
                println!(
                    "targets: {}",
                    TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(" ")
                );
                return Ok(());
            }
            name if !name.starts_with('-') => names.push(name.to_string()),
            other => bail!("unknown option `{other}` (see --help)"),
        }
    }
    for n in &names {
        if !TARGETS.iter().any(|t| t.name == n) {
            bail!("unknown target `{n}` (see --help)");
        }
    }
    // Panics are counted and reported below, not printed as they happen (unless --verbose,
    // which keeps Rust's hook and its backtraces).
    if !verbose {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let scratch = std::env::temp_dir().join(format!("labor-fuzz-{}", std::process::id()));
    let (mut total, mut crashed) = (0u64, 0usize);
    let start = Instant::now();
    println!("| target | inputs | accepted | crashes | slowest input |");
    println!("|---|---|---|---|---|");
    for t in TARGETS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
    {
        let r = fuzz(t, seed, cases, only, &scratch)?;
        total += r.inputs;
        crashed += r.crashes.len();
        println!(
            "| {} | {} | {} | {} | {:.3} s ({}) |",
            t.name,
            r.inputs,
            r.accepted,
            r.crashes.len(),
            r.slowest.0.as_secs_f64(),
            r.slowest.1
        );
        if let (Some(case), true) = (only, save) {
            // One case asked for and saved: kept as a regression whether or not it still
            // crashes (how a fixed crash is recorded).
            let dir = corpus_root().join(t.name).join("crashes");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("seed{seed}-case{case}"));
            std::fs::write(&path, labor_fuzz::case_input(t, seed, case)?)?;
            eprintln!("saved {}", path.display());
            continue;
        }
        for c in &r.crashes {
            eprintln!("{}: {}: {}", t.name, c.origin, c.message);
            if save {
                let dir = corpus_root().join(t.name).join("crashes");
                std::fs::create_dir_all(&dir)?;
                let name = format!(
                    "seed{seed}-case{}",
                    c.case.map_or("-".into(), |c| c.to_string())
                );
                std::fs::write(dir.join(&name), &c.input)?;
                eprintln!("  saved as {}", dir.join(name).display());
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    println!(
        "\n{total} inputs, {crashed} crashes, seed {seed}, {:.0} s",
        start.elapsed().as_secs_f64()
    );
    if crashed > 0 {
        bail!("{crashed} inputs crashed a reader");
    }
    Ok(())
}
