//! Times CAREER training steps (forward, backward, Adam) and forward passes on random careers
//! at the shapes of `shared/anchors/torch_career.py` (batch 64 × 32 years, 335 states), for a
//! side-by-side with PyTorch (`benches/career-vs-torch.sh`):
//!
//! `cargo run --release -p labor-benches --bin career_step -- [paper|small] [runs]`

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use labor_benches::{CAREER_STATES as STATES, career_adamw, career_vocab, random_careers};
use labor_model::{CareerConfig, SeqModel, two_stage_log_probs, two_stage_nll};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).map_or("paper", String::as_str);
    let runs: usize = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let (b, t) = (64, 32);
    let vocab = career_vocab();
    let config = match size {
        "small" => CareerConfig::small(vocab.clone()),
        _ => CareerConfig::paper(vocab.clone()),
    };
    let hb = random_careers(b, t, &vocab)?;
    let device = Device::default().autodiff();
    device.seed(0);
    let mut model = config.init(&device);
    let mut optim = career_adamw().init();
    let mut times = Vec::new();
    for i in 0..=runs {
        let start = Instant::now();
        let sb = hb.to_device(&device);
        let loss = two_stage_nll(model.logits(&sb), &sb);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        let _ = loss.into_data();
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let train = (b * t) as f64 / times[times.len() / 2];
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
    let fwd = (b * t) as f64 / ftimes[ftimes.len() / 2];
    println!(
        "{{\"size\": \"{size}\", \"batch\": {b}, \"seq\": {t}, \"params\": {}, \"train_tokens_per_s\": {train:.0}, \"forward_tokens_per_s\": {fwd:.0}}}",
        fwd_model.num_params()
    );
    Ok(())
}
