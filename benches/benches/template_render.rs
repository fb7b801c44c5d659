//! Rendering throughput: the 100,000-worker synthetic NLSY79-like panel as fine-tuning resumes
//! and as prompts, in workers and characters per second.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group};
use labor_data::{Preset, SynthBuilder};
use labor_template::{TemplateBuilder, TemplateKind};

fn render(c: &mut Criterion) {
    let panel = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(100_000)
        .with_seed(1)
        .build()
        .unwrap()
        .generate()
        .panel;
    let mut g = c.benchmark_group("render_100k_workers");
    g.throughput(Throughput::Elements(panel.len() as u64));
    g.sample_size(10);
    for kind in [TemplateKind::Resume, TemplateKind::Prompt] {
        let t = TemplateBuilder::new(Arc::clone(panel.taxonomy()), kind)
            .build()
            .unwrap();
        g.bench_function(t.name(), |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                for w in panel.workers() {
                    for d in t.render(w).unwrap().documents() {
                        bytes += d.text.len();
                    }
                }
                bytes
            })
        });
    }
    g.finish();
}

criterion_group!(benches, render);
