//! Criterion benchmarks of the labor workspace, one module per area.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod bootstrap;
mod career;
mod data_ingest;
mod gemm;
mod template_render;

criterion::criterion_main!(
    data_ingest::benches,
    template_render::benches,
    bootstrap::benches,
    career::benches,
    gemm::benches
);
