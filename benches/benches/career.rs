//! CAREER training step (forward, backward, Adam) on random careers, in worker-years per second;
//! the same shapes as `../shared/anchors/torch_career.py` (b64×32, 335 states).

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use criterion::{Criterion, Throughput};
use labor_benches::{CAREER_STATES as STATES, career_adamw, career_vocab, random_careers};
use labor_model::{CareerConfig, SeqModel, two_stage_log_probs, two_stage_nll};

fn train_step(c: &mut Criterion, name: &str, config: CareerConfig, b: usize, t: usize) {
    let device = Device::default().autodiff();
    device.seed(0);
    let hb = random_careers(b, t, &config.vocab).unwrap();
    let mut model = config.init(&device);
    let mut optim = career_adamw().init();
    let mut g = c.benchmark_group("career");
    g.throughput(Throughput::Elements((b * t) as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let sb = hb.to_device(&device);
                let loss = two_stage_nll(model.logits(&sb), &sb);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-4, model.clone(), grads);
                // Reading the loss syncs the device before the clock stops.
                black_box(loss.into_data());
            }
            start.elapsed()
        })
    });
    let forward = model.valid();
    let plain = device.clone().inner();
    g.bench_function(format!("{name}_forward"), |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let sb = hb.to_device(&plain);
                let lp = two_stage_log_probs(forward.logits(&sb), sb.prev.clone(), STATES);
                black_box(lp.into_data());
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn career(c: &mut Criterion) {
    let vocab = career_vocab();
    train_step(
        c,
        "train_step_paper_b64x32",
        CareerConfig::paper(vocab.clone()),
        64,
        32,
    );
    train_step(
        c,
        "train_step_small_b64x32",
        CareerConfig::small(vocab),
        64,
        32,
    );
}

criterion::criterion_group!(benches, career);
