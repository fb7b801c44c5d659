//! The matrix product of `labor-kernels` against the `gemm` crate that burn-flex runs, at the
//! shapes the models use: SmolLM2-135M's projections (d_model 576, feed-forward 1536) over a
//! 512-token batch, its output head over the rows the scorer reads, one decoding row, and
//! CAREER's (paper size, d_model 192, feed-forward 768; 64 × 32 worker-years). Ours runs with
//! the weight packed once (as the models keep it) and packed on the fly; `gemm` as burn-flex
//! calls it (row-major operands, rayon). `docs/llm-speed.md` has the results and what they
//! decided.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use labor_kernels::matmul::{PackedMatrix, matmul, matmul_packed};

/// `[m, n, k]` and a name.
const SHAPES: [(&str, [usize; 3]); 7] = [
    ("smollm2 q/o 512x576x576", [512, 576, 576]),
    ("smollm2 k/v 512x192x576", [512, 192, 576]),
    ("smollm2 gate/up 512x1536x576", [512, 1536, 576]),
    ("smollm2 down 512x576x1536", [512, 576, 1536]),
    ("smollm2 head 64x49152x576", [64, 49152, 576]),
    ("smollm2 decode 1x1536x576", [1, 1536, 576]),
    ("career fc1 2048x768x192", [2048, 768, 192]),
];

/// Values in [-0.5, 0.5) from a fixed linear congruential sequence.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// `c = a · b` by the `gemm` crate, as burn-flex calls it for row-major operands.
fn crate_gemm(a: &[f32], b: &[f32], c: &mut [f32], [m, n, k]: [usize; 3]) {
    // SAFETY: the slices hold m × k, k × n and m × n values with the strides given.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

fn products(c: &mut Criterion) {
    if !labor_kernels::enabled() {
        eprintln!("SKIPPED gemm: labor-kernels' product needs AVX2/FMA");
        return;
    }
    for (name, [m, n, k]) in SHAPES {
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        // The two agree before they race.
        let mut theirs = vec![0.0f32; m * n];
        assert!(matmul(&a, &b, &mut out, [m, n, k]));
        crate_gemm(&a, &b, &mut theirs, [m, n, k]);
        let d = out
            .iter()
            .zip(&theirs)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-3, "{name}: the products differ by {d}");
        let packed = PackedMatrix::new(&b, k, n).expect("AVX2/FMA");
        let mut g = c.benchmark_group(format!("gemm {name}"));
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.sample_size(20);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("labor-kernels packed", |bench| {
            bench.iter(|| matmul_packed(black_box(&a), &packed, &mut out, m))
        });
        g.bench_function("labor-kernels", |bench| {
            bench.iter(|| matmul(black_box(&a), &b, &mut out, [m, n, k]))
        });
        g.bench_function("gemm crate", |bench| {
            bench.iter(|| crate_gemm(black_box(&a), &b, &mut out, [m, n, k]))
        });
        g.finish();
    }
}

criterion::criterion_group!(benches, products);
