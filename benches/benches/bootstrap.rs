//! Cluster bootstrap throughput: 1,000 replicates over a test set shaped like the paper's
//! PSID81 test split (about 6,200 workers, 62,000 targets).

use criterion::{Criterion, Throughput, criterion_group};
use labor_eval::{Bootstrap, ScoreSet};

fn bootstrap(c: &mut Criterion) {
    let (mut a, mut b) = (ScoreSet::new(), ScoreSet::new());
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for w in 0..6_200 {
        let id = format!("w{w}");
        for _ in 0..10 {
            let lp = -4.0 * next();
            a.push(&id, lp, 1.0).unwrap();
            b.push(&id, lp - 0.05 * next(), 1.0).unwrap();
        }
    }
    let boot = Bootstrap::new().with_resamples(1000).with_seed(1);
    let mut g = c.benchmark_group("bootstrap_1000_replicates");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.bench_function("perplexity", |bch| {
        bch.iter(|| boot.perplexity(&a).unwrap())
    });
    g.bench_function("paired_difference", |bch| {
        bch.iter(|| boot.paired_difference(&a, &b).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bootstrap);
