//! The readers fuzzed, one mutated file each; the other files a reader needs are the
//! unmutated fixtures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use labor_data::ingest::{Format, IngestBuilder, OnError};
use labor_data::{Predictions, Taxonomy, io};
use labor_model::{TextTokenizer, load_hf, load_llm, load_model};

/// One reader under fuzzing.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name, also the corpus folder under `fixtures/fuzz/`.
    pub name: &'static str,
    /// Whether the input is text (adds the text-format tokens to the mutations).
    pub text: bool,
    /// Writes the input where the reader expects it (under the scratch folder) and reads it;
    /// `true` if the reader accepted it. Must not panic.
    pub run: fn(&[u8], &Path) -> bool,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "long-csv",
        text: true,
        run: |b, d| {
            ingest(
                Format::Long,
                put(d, "panel.csv", b),
                fixture("long/mapping.toml"),
            )
        },
    },
    Target {
        name: "long-mapping",
        text: true,
        run: |b, d| {
            ingest(
                Format::Long,
                fixture("long/panel.csv"),
                put(d, "mapping.toml", b),
            )
        },
    },
    Target {
        name: "nlsy79-csv",
        text: true,
        run: |b, d| {
            let m = fixture("nlsy79/variables.toml");
            ingest(Format::Nlsy79, put(d, "extract.csv", b), m)
        },
    },
    Target {
        name: "nlsy79-variables",
        text: true,
        run: |b, d| {
            let csv = fixture("nlsy79/extract.csv");
            ingest(Format::Nlsy79, csv, put(d, "variables.toml", b))
        },
    },
    Target {
        name: "psid-fixed-width",
        text: true,
        run: |b, d| {
            let m = fixture("psid/variables.toml");
            ingest(Format::Psid, put(d, "individual.txt", b), m)
        },
    },
    Target {
        name: "taxonomy-csv",
        text: true,
        run: |b, _| Taxonomy::from_csv_reader("fuzz", b).is_ok(),
    },
    Target {
        name: "panel-parquet",
        text: false,
        run: |b, d| io::read_parquet(put(d, "panel.parquet", b)).is_ok(),
    },
    Target {
        name: "panel-jsonl",
        text: true,
        run: |b, d| {
            io::read_jsonl(put(d, "panel.jsonl", b), Arc::new(Taxonomy::occ1990dd())).is_ok()
        },
    },
    Target {
        name: "predictions-parquet",
        text: false,
        run: |b, d| Predictions::read_parquet(put(d, "predictions.parquet", b)).is_ok(),
    },
    Target {
        name: "gguf",
        text: false,
        run: |b, d| load_llm(put(d, "model.gguf", b), &Device::default()).is_ok(),
    },
    Target {
        name: "safetensors",
        text: false,
        run: |b, d| {
            let dir = beside(
                d,
                "hf",
                ("config.json", "hf-config"),
                "model.safetensors",
                b,
            );
            load_hf(dir, &Device::default()).is_ok()
        },
    },
    Target {
        name: "hf-config",
        text: true,
        run: |b, d| {
            let dir = beside(
                d,
                "hf",
                ("model.safetensors", "safetensors"),
                "config.json",
                b,
            );
            load_hf(dir, &Device::default()).is_ok()
        },
    },
    Target {
        name: "tokenizer-json",
        text: true,
        run: |b, d| TextTokenizer::from_file(put(d, "tokenizer.json", b)).is_ok(),
    },
    Target {
        name: "career-model-json",
        text: true,
        run: |b, d| {
            let dir = beside(
                d,
                "career",
                ("model.bpk", "career-weights"),
                "model.json",
                b,
            );
            load_model(dir, &Device::default()).is_ok()
        },
    },
    Target {
        name: "career-weights",
        text: false,
        run: |b, d| {
            let dir = beside(
                d,
                "career",
                ("model.json", "career-model-json"),
                "model.bpk",
                b,
            );
            load_model(dir, &Device::default()).is_ok()
        },
    },
];

/// `fixtures/REL`.
fn fixture(rel: &str) -> PathBuf {
    crate::fixtures_root().join(rel)
}

/// The first corpus file of target `name` (the unmutated companion of another target's input).
fn companion(name: &str) -> Vec<u8> {
    crate::corpus(&crate::corpus_root().join(name))
        .ok()
        .and_then(|files| files.into_iter().next())
        .map(|(_, bytes)| bytes)
        .unwrap_or_default()
}

/// A model directory `d/sub` holding the unmutated file of another target (`(name, target)`)
/// beside the input written as `name`.
fn beside(d: &Path, sub: &str, fixed: (&str, &str), name: &str, bytes: &[u8]) -> PathBuf {
    let dir = d.join(sub);
    put(&dir, fixed.0, &companion(fixed.1));
    put(&dir, name, bytes);
    dir
}

/// Writes `bytes` to `dir/name` (creating `dir`) and returns the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    // A failed write leaves the reader an absent or partial file, itself an input to survive.
    std::fs::create_dir_all(dir).ok();
    std::fs::write(&path, bytes).ok();
    path
}

/// Ingests under both bad-row policies; accepted if dropping rows gives a panel.
fn ingest(format: Format, input: PathBuf, mapping: PathBuf) -> bool {
    let run = |policy| {
        IngestBuilder::new(format, &input, &mapping)
            .with_on_error(policy)
            .build()
            .and_then(|i| i.run())
    };
    let _ = run(OnError::Fail);
    run(OnError::Drop).is_ok()
}
