//! Dropout masks: the seed of each mask, drawn from a per-thread generator or burn's, and the
//! hash that turns it into the mask.

use burn::tensor::{Tensor, TensorData};

/// Whether `layer` drops anything now (training, a non-zero probability).
pub(crate) fn training(layer: &burn::nn::Dropout) -> bool {
    layer.training.is_enabled() && layer.prob > 0.0
}

thread_local! {
    /// This thread's dropout generator ([`seed_dropout`]); `None`: burn's.
    static DROPOUT_RNG: std::cell::RefCell<Option<rand::rngs::StdRng>> =
        const { std::cell::RefCell::new(None) };
}

/// Draws the dropout masks of the CPU kernels on this thread from a generator of their own,
/// seeded with `seed`, instead of burn's process-wide one (which every thread shares, so two
/// trainings in one process would perturb each other's masks). It is the generator and the
/// draw burn's CPU backend makes after `Device::seed(seed)`, so a training alone in its process
/// gets the masks it got from burn's generator. The trainers call it at the start of every
/// epoch with the epoch's seed. burn's own dropout (GPU backends, CPUs without AVX2) still draws
/// from burn's generator.
pub fn seed_dropout(seed: u64) {
    use rand::SeedableRng;
    DROPOUT_RNG.with_borrow_mut(|r| *r = Some(rand::rngs::StdRng::seed_from_u64(seed)));
}

/// A seed for a dropout mask: two uniform draws in `[0, 2³²)` from this thread's generator
/// ([`seed_dropout`]) when it has one, else from burn's (seeded by `Device::seed`).
pub(crate) fn seed(device: &burn::tensor::Device) -> Option<u64> {
    let range = burn::tensor::Distribution::Uniform(0.0, 4_294_967_296.0);
    let data = match DROPOUT_RNG.with_borrow_mut(|r| {
        r.as_mut()
            .map(|rng| TensorData::random::<f32, _, _>([2], range, rng))
    }) {
        Some(data) => data,
        None => Tensor::<1>::random([2], range, &device.clone().inner()).into_data(),
    };
    let draw = data.convert::<f64>().try_into_vec::<f64>().ok()?;
    Some(((draw[0] as u64) << 32) ^ (draw[1] as u64))
}

/// The finaliser of SplitMix64 (Steele, Lea and Flood 2014) on `z`'s golden-ratio step: the
/// hash behind the dropout masks.
pub(crate) fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
