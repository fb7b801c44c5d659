//! Shared set-up of the workspace's benchmarks: the criterion benches in `benches/` and the
//! side-by-side programs (`career_step`) that the scripts run next to PyTorch.

use burn::optim::AdamWConfig;
use labor_data::{Education, Ethnicity, Gender, Region, SeededRng, StateId, Worker, YearRecord};
use labor_model::{HostBatch, SeqVocab};

/// Outcomes of the CAREER benchmarks (the shape of `shared/anchors/torch_career.py`).
pub const CAREER_STATES: usize = 335;

/// The vocabulary of the CAREER benchmarks: [`CAREER_STATES`] states, years 1979-2020.
pub fn career_vocab() -> SeqVocab {
    SeqVocab::new(CAREER_STATES, 1979, 2020)
}

/// `b` seeded random careers of `t` years from 1980 (states, education and demographics
/// uniform), as one host batch.
///
/// # Errors
/// As [`HostBatch::from_workers`].
pub fn random_careers(b: usize, t: usize, vocab: &SeqVocab) -> labor_model::Result<HostBatch> {
    let mut rng = SeededRng::new(0);
    let workers: Vec<Worker> = (0..b)
        .map(|i| {
            let mut w = Worker::new(format!("w{i}"), "bench");
            w.gender = Gender::ALL[rng.below(2) as usize];
            w.ethnicity = Ethnicity::ALL[rng.below(3) as usize];
            w.region = Region::ALL[rng.below(4) as usize];
            for year in (1980..).take(t) {
                w.records.push(YearRecord::new(
                    year,
                    StateId(rng.below(CAREER_STATES as u64) as u16),
                    Education::ALL[rng.below(5) as usize],
                ));
            }
            w
        })
        .collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    HostBatch::from_workers(&refs, vocab, 512)
}

/// The optimizer of the CAREER code: Adam(0.9, 0.98), weight decay 0.01.
pub fn career_adamw() -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
}
