//! Times CAREER training steps (forward, backward, Adam) and forward passes on random careers
//! at the shapes of `shared/anchors/torch_career.py` (batch 64 × 32 years, 335 states), for a
//! side-by-side with PyTorch (`benches/career-vs-torch.sh`):
//!
//! `cargo run --release -p labor-model --example career_step -- [paper|small] [runs]`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use labor_data::{Education, Ethnicity, Gender, Region, SeededRng, StateId, Worker, YearRecord};
use labor_model::{CareerConfig, HostBatch, SeqModel, SeqVocab, masked_nll, two_stage_log_probs};

const STATES: usize = 335;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).map_or("paper", String::as_str);
    let runs: usize = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let (b, t): (usize, i32) = (64, 32);
    let vocab = SeqVocab::new(STATES, 1979, 2020);
    let config = match size {
        "small" => CareerConfig::small(vocab.clone()),
        _ => CareerConfig::paper(vocab.clone()),
    };
    let mut rng = SeededRng::new(0);
    let workers: Vec<Worker> = (0..b)
        .map(|i| {
            let mut w = Worker::new(format!("w{i}"), "bench");
            w.gender = Gender::ALL[rng.below(2) as usize];
            w.ethnicity = Ethnicity::ALL[rng.below(3) as usize];
            w.region = Region::ALL[rng.below(4) as usize];
            for k in 0..t {
                w.records.push(YearRecord::new(
                    1980 + k,
                    StateId(rng.below(STATES as u64) as u16),
                    Education::ALL[rng.below(5) as usize],
                ));
            }
            w
        })
        .collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    let hb = HostBatch::from_workers(&refs, &vocab, 512)?;
    let device = Device::default().autodiff();
    device.seed(0);
    let mut model = config.init(&device);
    let mut optim = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
        .init();
    let mut times = Vec::new();
    for i in 0..=runs {
        let start = Instant::now();
        let sb = hb.to_device(&device);
        let lp = two_stage_log_probs(model.logits(&sb), sb.prev.clone(), STATES);
        let loss = masked_nll(lp, &sb);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        let _ = loss.into_data();
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let train = (b * t as usize) as f64 / times[times.len() / 2];
    let plain = device.clone().inner();
    let fwd_model = model.valid();
    let mut ftimes = Vec::new();
    for i in 0..=runs {
        let start = Instant::now();
        let sb = hb.to_device(&plain);
        let lp = two_stage_log_probs(fwd_model.logits(&sb), sb.prev.clone(), STATES);
        let _ = lp.into_data();
        if i > 0 {
            ftimes.push(start.elapsed().as_secs_f64());
        }
    }
    ftimes.sort_by(f64::total_cmp);
    let fwd = (b * t as usize) as f64 / ftimes[ftimes.len() / 2];
    println!(
        "{{\"size\": \"{size}\", \"batch\": {b}, \"seq\": {t}, \"params\": {}, \"train_tokens_per_s\": {train:.0}, \"forward_tokens_per_s\": {fwd:.0}}}",
        fwd_model.num_params()
    );
    Ok(())
}
