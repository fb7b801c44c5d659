//! Ingestion throughput: worker-years per second from a long CSV and from Parquet, and the
//! canonical Parquet reader, on a seeded synthetic NLSY79-like panel.

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group};
use labor_data::ingest::{Format, IngestBuilder};
use labor_data::{Preset, SynthBuilder, io};

const MAPPING: &str = r#"
dataset = "nlsy79"
[columns]
worker_id = "worker_id"
year = "year"
occupation = "state_code"
education = "education"
gender = "gender"
ethnicity = "ethnicity"
region = "region"
birth_year = "birth_year"
weight = "weight"
[occupation]
scheme = "occ1990dd"
"#;

fn ingest(c: &mut Criterion) {
    let panel = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(5_000)
        .with_seed(1)
        .build()
        .unwrap()
        .generate()
        .panel;
    let n = panel.n_worker_years() as u64;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("panel.parquet");
    io::write_parquet(&panel, &pq).unwrap();
    // The same rows as a long CSV.
    let csv = dir.path().join("panel.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(
        f,
        "worker_id,dataset,gender,ethnicity,region,birth_year,weight,year,state_code,education"
    )
    .unwrap();
    let tax = panel.taxonomy();
    for w in panel.workers() {
        for r in &w.records {
            writeln!(
                f,
                "{},{},{},{},{},{},{},{},{},{}",
                w.id,
                w.dataset,
                w.gender,
                w.ethnicity,
                w.region,
                w.birth_year.unwrap_or_default(),
                w.weight.unwrap_or_default(),
                r.year,
                tax.code(r.state),
                r.education
            )
            .unwrap();
        }
    }
    drop(f);
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(&mapping, MAPPING).unwrap();

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("long_csv", |b| {
        b.iter(|| {
            IngestBuilder::new(Format::Long, &csv, &mapping)
                .build()
                .unwrap()
                .run()
                .unwrap()
        })
    });
    g.bench_function("long_parquet", |b| {
        b.iter(|| {
            IngestBuilder::new(Format::Long, &pq, &mapping)
                .build()
                .unwrap()
                .run()
                .unwrap()
        })
    });
    g.bench_function("panel_parquet", |b| {
        b.iter(|| io::read_parquet(&pq).unwrap())
    });
    g.finish();
}

criterion_group!(benches, ingest);
