//! Every fuzz target over its corpus, its saved regressions and a few hundred mutated inputs
//! (`LABOR_FUZZ_CASES` per target, default 200; `scripts/fuzz` runs many more): no reader may
//! panic or make an allocation its input cannot justify.

use labor_fuzz::{GuardedAlloc, TARGETS, fuzz};

#[global_allocator]
static ALLOC: GuardedAlloc = GuardedAlloc;

#[test]
fn no_reader_panics_on_its_corpus_or_mutated_inputs() {
    let cases = std::env::var("LABOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let scratch = std::env::temp_dir().join(format!("labor-fuzz-test-{}", std::process::id()));
    let mut failures = Vec::new();
    for t in TARGETS {
        let r = fuzz(t, 0, cases, None, &scratch).unwrap();
        // Every corpus file is a valid input its reader accepts.
        assert!(r.accepted > 0, "{}: no input accepted", t.name);
        for c in r.crashes {
            failures.push(format!("{}: {}: {}", t.name, c.origin, c.message));
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
