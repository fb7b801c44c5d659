//! CAREER and the baselines: the two-stage output, covariate alignment, a forward pass computed
//! by hand, the empirical counts, training, saving and resuming.

use std::sync::Arc;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor};
use labor_data::{
    Education, Ethnicity, Gender, Panel, Preset, Region, SplitterBuilder, StateId, SynthBuilder,
    Taxonomy, Worker, YearRecord,
};
use labor_model::{
    Career, CareerConfig, EarlyStopping, Empirical, ModelKind, Predictor, SeqModel, SeqVocab,
    TrainBuilder, TrainOptions, load_model, predict_panel, two_stage_log_probs,
};
use proptest::prelude::*;

fn worker(id: &str, recs: &[(i32, u16, Education)]) -> Worker {
    let mut w = Worker::new(id, "test");
    w.gender = Gender::Female;
    w.ethnicity = Ethnicity::Black;
    w.region = Region::South;
    for &(y, s, e) in recs {
        w.records.push(YearRecord::new(y, StateId(s), e));
    }
    w
}

fn tiny_config(n_states: usize) -> CareerConfig {
    CareerConfig::new(SeqVocab::new(n_states, 2000, 2003))
        .with_n_layers(1)
        .with_d_model(4)
        .with_n_heads(2)
        .with_d_ff(8)
        .with_max_seq_len(16)
}

fn vec2(p: &Param<Tensor<2>>) -> Vec<Vec<f64>> {
    let t = p.val();
    let [r, c] = t.dims();
    let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
    (0..r)
        .map(|i| (0..c).map(|j| f64::from(v[i * c + j])).collect())
        .collect()
}

fn vec1(p: &Param<Tensor<1>>) -> Vec<f64> {
    let v: Vec<f32> = p.val().into_data().try_to_vec().unwrap();
    v.into_iter().map(f64::from).collect()
}

/// `x W + b` with burn's `[d_in, d_out]` layout.
fn linear(l: &Linear, x: &[f64]) -> Vec<f64> {
    let w = vec2(&l.weight);
    let b = l.bias.as_ref().map(vec1);
    (0..w[0].len())
        .map(|j| {
            let s: f64 = x.iter().zip(&w).map(|(xi, row)| xi * row[j]).sum();
            s + b.as_ref().map_or(0.0, |b| b[j])
        })
        .collect()
}

fn layer_norm(l: &LayerNorm, x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let g = vec1(&l.gamma);
    let b = l.beta.as_ref().map(vec1).unwrap();
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) / (var + 1e-5).sqrt() * g[i] + b[i])
        .collect()
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
fn erf(x: f64) -> f64 {
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    s * y
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The CAREER forward pass and two-stage log-probabilities in plain f64, from the weights.
fn reference_log_probs(m: &Career, w: &Worker, vocab: &SeqVocab, n_heads: usize) -> Vec<Vec<f64>> {
    let job = vec2(&m.job.weight);
    let d = job[0].len();
    let year = vec2(&m.year.weight);
    let edu = vec2(&m.education.weight);
    let stat = add(
        &add(
            &vec2(&m.ethnicity.weight)[w.ethnicity.index()],
            &vec2(&m.gender.weight)[w.gender.index()],
        ),
        &vec2(&m.region.weight)[w.region.index()],
    );
    let n = vocab.n_states;
    let prev: Vec<usize> = (0..w.records.len())
        .map(|t| {
            if t == 0 {
                n
            } else {
                w.records[t - 1].state.index()
            }
        })
        .collect();
    // Embeddings, with fairseq's sinusoidal positions from 2.
    let half = d / 2;
    let mut xs: Vec<Vec<f64>> = w
        .records
        .iter()
        .enumerate()
        .map(|(t, r)| {
            let pos = (t + 2) as f64;
            let pe: Vec<f64> = (0..d)
                .map(|i| {
                    let k = i % half;
                    let a = pos * (-(k as f64) * (10000f64).ln() / (half - 1) as f64).exp();
                    if i < half { a.sin() } else { a.cos() }
                })
                .collect();
            let e: Vec<f64> = job[prev[t]].iter().map(|v| v * (d as f64).sqrt()).collect();
            let e = add(&e, &pe);
            let e = add(&e, &year[vocab.year_index(r.year)]);
            let e = add(&e, &edu[r.education.index()]);
            add(&e, &stat)
        })
        .collect();
    let hd = d / n_heads;
    for layer in &m.layers {
        let ys: Vec<Vec<f64>> = xs.iter().map(|x| layer_norm(&layer.attn_norm, x)).collect();
        let q: Vec<Vec<f64>> = ys
            .iter()
            .map(|y| {
                linear(&layer.q, y)
                    .iter()
                    .map(|v| v / (hd as f64).sqrt())
                    .collect()
            })
            .collect();
        let k: Vec<Vec<f64>> = ys.iter().map(|y| linear(&layer.k, y)).collect();
        let v: Vec<Vec<f64>> = ys.iter().map(|y| linear(&layer.v, y)).collect();
        let mut new = Vec::new();
        for t in 0..xs.len() {
            let mut a = vec![0.0; d];
            for h in 0..n_heads {
                let r = h * hd..(h + 1) * hd;
                let scores: Vec<f64> = (0..=t)
                    .map(|s| (r.clone()).map(|i| q[t][i] * k[s][i]).sum())
                    .collect();
                let mx = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                for (s, sc) in scores.iter().enumerate() {
                    for i in r.clone() {
                        a[i] += (sc - mx).exp() / z * v[s][i];
                    }
                }
            }
            let x = add(&xs[t], &linear(&layer.out, &a));
            let y = layer_norm(&layer.ffn_norm, &x);
            let hmid: Vec<f64> = linear(&layer.fc1, &y)
                .iter()
                .map(|u| 0.5 * u * (1.0 + erf(u / 2f64.sqrt())))
                .collect();
            new.push(add(&x, &linear(&layer.fc2, &hmid)));
        }
        xs = new;
    }
    xs.iter()
        .enumerate()
        .map(|(t, x)| {
            let z: Vec<f64> = linear(&m.head, &layer_norm(&m.norm, x))
                .into_iter()
                .map(|v| v.clamp(-10.0, 10.0))
                .collect();
            let s = z[n];
            let p = prev[t];
            let others: Vec<usize> = (0..n).filter(|&j| j != p).collect();
            let mx = others.iter().map(|&j| z[j]).fold(f64::MIN, f64::max);
            let lse = mx + others.iter().map(|&j| (z[j] - mx).exp()).sum::<f64>().ln();
            let sig = 1.0 / (1.0 + (-s).exp());
            (0..n)
                .map(|j| {
                    if p == n {
                        z[j] - lse
                    } else if j == p {
                        sig.ln()
                    } else {
                        (1.0 - sig).ln() + z[j] - lse
                    }
                })
                .collect()
        })
        .collect()
}

fn tiny_predictor(n_states: usize, seed: u64) -> labor_model::SeqPredictor<Career> {
    let device = Device::default();
    device.seed(seed);
    let c = tiny_config(n_states);
    labor_model::SeqPredictor::new(c.init(&device), "career", c.max_seq_len)
}

#[test]
fn career_forward_matches_hand_computation() {
    let n = 5;
    let p = tiny_predictor(n, 7);
    // Includes an out-of-range year (unknown row), a gap and a repeated state.
    let w = worker(
        "w",
        &[
            (2000, 3, Education::HighSchool),
            (2001, 3, Education::HighSchool),
            (2003, 1, Education::College),
            (2010, 4, Education::Unknown),
        ],
    );
    let got = p.log_prob_table(&w).unwrap();
    let want = reference_log_probs(p.model(), &w, p.model().vocab(), 2);
    for (t, row) in want.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let g = f64::from(got[t * n + j]);
            assert!((g - v).abs() < 1e-4, "t={t} j={j}: burn {g} vs hand {v}");
        }
    }
}

#[test]
fn two_stage_gives_sigma_to_the_previous_state_and_sums_to_one() {
    let device = Device::default();
    // 4 states; positions with prev = begin (4), 0, 2, 3; stay logits -1.5, 0.3, 2.0, 10.
    let z: Vec<f32> = vec![
        0.5, -1.0, 2.0, 0.0, -1.5, //
        1.0, 1.0, -3.0, 0.7, 0.3, //
        -2.0, 0.1, 0.2, 3.0, 2.0, //
        4.0, 0.0, 0.0, -4.0, 10.0,
    ];
    let logits = Tensor::<1>::from_floats(z.as_slice(), &device).reshape([1, 4, 5]);
    let prev = Tensor::<1, Int>::from_ints([4, 0, 2, 3], &device).reshape([1, 4]);
    let lp: Vec<f32> = two_stage_log_probs(logits, prev, 4)
        .into_data()
        .try_to_vec()
        .unwrap();
    let sig = |s: f64| 1.0 / (1.0 + (-s).exp());
    // Position 0: plain softmax over the states.
    let e: Vec<f64> = [0.5f64, -1.0, 2.0, 0.0].iter().map(|v| v.exp()).collect();
    let tot: f64 = e.iter().sum();
    for j in 0..4 {
        assert!((f64::from(lp[j]).exp() - e[j] / tot).abs() < 1e-6);
    }
    for (t, (p, s)) in [(1usize, (0usize, 0.3)), (2, (2, 2.0)), (3, (3, 10.0))] {
        let row = &lp[t * 4..(t + 1) * 4];
        assert!((f64::from(row[p]).exp() - sig(s)).abs() < 1e-6);
        let sum: f64 = row.iter().map(|l| f64::from(*l).exp()).sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
    // Position 1, state 3: (1 − σ(0.3)) · e^0.7 / (e^1 + e^-3 + e^0.7).
    let want = (1.0 - sig(0.3)) * 0.7f64.exp() / (1f64.exp() + (-3f64).exp() + 0.7f64.exp());
    assert!((f64::from(lp[4 + 3]).exp() - want).abs() < 1e-6);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn two_stage_distributions_sum_to_one(
        z in proptest::collection::vec(-10.0f32..10.0, 12),
        prev in proptest::collection::vec(0i64..4, 2),
    ) {
        let device = Device::default();
        let logits = Tensor::<1>::from_floats(z.as_slice(), &device).reshape([1, 3, 4]);
        let p = [3, prev[0] % 3, prev[1] % 3];
        let prev_t = Tensor::<1, Int>::from_ints(p, &device).reshape([1, 3]);
        let lp: Vec<f32> = two_stage_log_probs(logits, prev_t, 3).into_data().try_to_vec().unwrap();
        for t in 0..3 {
            let sum: f64 = lp[t * 3..t * 3 + 3].iter().map(|l| f64::from(*l).exp()).sum();
            prop_assert!((sum - 1.0).abs() < 1e-5);
            if t > 0 {
                let s = f64::from(z[t * 4 + 3]);
                let sig = 1.0 / (1.0 + (-s).exp());
                prop_assert!((f64::from(lp[t * 3 + p[t] as usize]).exp() - sig).abs() < 1e-5);
            }
        }
    }
}

fn distributions(p: &dyn Predictor, w: &Worker) -> Vec<Vec<f32>> {
    p.predict_worker(w, true)
        .unwrap()
        .into_iter()
        .map(|s| s.probs.unwrap())
        .collect()
}

#[test]
fn covariates_of_record_k_change_predictions_from_k_on() {
    let p = tiny_predictor(6, 3);
    let base = worker(
        "w",
        &[
            (2000, 1, Education::HighSchool),
            (2001, 2, Education::HighSchool),
            (2002, 2, Education::HighSchool),
            (2003, 5, Education::HighSchool),
        ],
    );
    let d0 = distributions(&p, &base);
    for row in &d0 {
        assert!((row.iter().map(|v| f64::from(*v)).sum::<f64>() - 1.0).abs() < 1e-5);
    }
    let changed = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-6);
    // The year of record 2 is an input of positions 2 and 3 only (through attention).
    let mut w = base.clone();
    w.records[2].year = 2003;
    let d = distributions(&p, &w);
    assert!(!changed(&d[0], &d0[0]) && !changed(&d[1], &d0[1]));
    assert!(changed(&d[2], &d0[2]) && changed(&d[3], &d0[3]));
    // Education likewise.
    let mut w = base.clone();
    w.records[1].education = Education::College;
    let d = distributions(&p, &w);
    assert!(!changed(&d[0], &d0[0]));
    assert!(changed(&d[1], &d0[1]) && changed(&d[2], &d0[2]));
    // The state of record 2 is the input of position 3: positions 0..=2 are unchanged.
    let mut w = base.clone();
    w.records[2].state = StateId(4);
    let d = distributions(&p, &w);
    for k in 0..3 {
        assert!(!changed(&d[k], &d0[k]), "position {k}");
    }
    assert!(changed(&d[3], &d0[3]));
    // A static covariate changes every position.
    let mut w = base;
    w.region = Region::Unknown;
    let d = distributions(&p, &w);
    assert!((0..4).all(|k| changed(&d[k], &d0[k])));
}

#[test]
fn empirical_counts_on_a_hand_made_panel() {
    let tax = Arc::new(Taxonomy::occ1990dd());
    let n = tax.len();
    let a = worker(
        "a",
        &[
            (2000, 1, Education::HighSchool),
            (2001, 1, Education::HighSchool),
            (2002, 2, Education::HighSchool),
        ],
    );
    let b = worker(
        "b",
        &[(2000, 2, Education::College), (2003, 1, Education::College)],
    );
    let panel = Panel::new(tax, vec![a.clone(), b]).unwrap();
    let alpha = 0.5;
    let m = Empirical::fit(&panel, alpha).unwrap();
    let p = m.predict_worker(&a, true).unwrap();
    let na = n as f64 * alpha;
    // First states: 1 once, 2 once.
    assert!((p[0].log_prob - ((1.0 + alpha) / (2.0 + na)).ln()).abs() < 1e-12);
    // From 1: 1 -> 1 once, 1 -> 2 once (the gap in worker b does not matter: 2 -> 1 is from 2).
    assert!((p[1].log_prob - ((1.0 + alpha) / (2.0 + na)).ln()).abs() < 1e-12);
    assert!((p[2].log_prob - ((1.0 + alpha) / (2.0 + na)).ln()).abs() < 1e-12);
    let probs = p[2].probs.as_ref().unwrap();
    assert!((probs[5] as f64 - alpha / (2.0 + na)).abs() < 1e-7);
    let sum: f64 = probs.iter().map(|v| f64::from(*v)).sum();
    assert!((sum - 1.0).abs() < 1e-4);
}

fn synth_split(workers: usize) -> (Panel, Panel, Panel) {
    let out = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(workers)
        .with_seed(5)
        .build()
        .unwrap()
        .generate();
    let s = SplitterBuilder::new().build().unwrap().split(&out.panel);
    (s.train, s.valid, s.test)
}

fn tiny_options(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        max_steps: None,
        max_tokens: 800,
        lr: 5e-3,
        warmup: 5,
        weight_decay: 0.01,
        seed: 3,
        early_stopping: None,
    }
}

fn small_career(train: &Panel) -> CareerConfig {
    let (lo, hi) = labor_model::year_range(train);
    CareerConfig::new(SeqVocab::new(train.taxonomy().len(), lo, hi))
        .with_n_layers(1)
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
}

#[test]
fn training_lowers_validation_loss_and_the_saved_model_predicts_the_same() {
    let (train, valid, _) = synth_split(150);
    let dir = tempfile_dir("train");
    let mut events = Vec::new();
    let (model, summary) = TrainBuilder::new(ModelKind::Career, &train, &valid)
        .with_options(tiny_options(2))
        .with_career_config(small_career(&train))
        .with_out_dir(&dir)
        .build()
        .unwrap()
        .run(|e| events.push(e.clone()))
        .unwrap();
    let valids: Vec<f64> = events.iter().filter_map(|e| e.row.valid_loss).collect();
    assert_eq!(valids.len(), 2);
    // Uniform over ~344 states is ln 344 ≈ 5.84 nats; two epochs of a tiny model do better.
    let uniform = (train.taxonomy().len() as f64).ln();
    assert!(valids[1] < valids[0] && valids[0] < uniform, "{valids:?}");
    assert!((summary.state.best_valid - valids[1]).abs() < 1e-9);
    // The loss curve has one row per update and one per validation.
    let csv = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("step,epoch,tokens,train_loss,valid_loss,learning_rate")
    );
    assert_eq!(lines.count(), summary.state.step + 2);
    // Predictions from the directory equal the returned model's; the mean NLL is the valid loss.
    let loaded = load_model(&dir, &Device::default()).unwrap();
    let a = predict_panel(&model, &valid, false, |_| {}).unwrap();
    let b = predict_panel(&loaded, &valid, false, |_| {}).unwrap();
    let nll: f64 = -a.rows().iter().map(|r| r.log_prob).sum::<f64>() / a.len() as f64;
    assert!((nll - valids[1]).abs() < 1e-3, "{nll} vs {}", valids[1]);
    for (x, y) in a.rows().iter().zip(b.rows()) {
        assert!((x.log_prob - y.log_prob).abs() < 1e-6);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_equals_uninterrupted() {
    let (train, valid, _) = synth_split(80);
    let run = |dir: &std::path::Path, epochs: usize, resume: bool| {
        TrainBuilder::new(ModelKind::Logit, &train, &valid)
            .with_options(tiny_options(epochs))
            .with_out_dir(dir)
            .with_resume(resume)
            .build()
            .unwrap()
            .run(|_| {})
            .unwrap()
    };
    let d1 = tempfile_dir("straight");
    let d2 = tempfile_dir("resumed");
    let (m1, s1) = run(&d1, 3, false);
    run(&d2, 1, false);
    let (m2, s2) = run(&d2, 3, true);
    assert_eq!(s1.state.step, s2.state.step);
    assert!((s1.state.best_valid - s2.state.best_valid).abs() < 1e-6);
    let a = predict_panel(&m1, &valid, false, |_| {}).unwrap();
    let b = predict_panel(&m2, &valid, false, |_| {}).unwrap();
    for (x, y) in a.rows().iter().zip(b.rows()) {
        assert!((x.log_prob - y.log_prob).abs() < 1e-5);
    }
    std::fs::remove_dir_all(&d1).ok();
    std::fs::remove_dir_all(&d2).ok();
}

/// Whether the CPU kernels run here (AVX2 and FMA, not turned off), whose dropout masks come
/// from the training thread's own stream; burn's dropout draws from its process-wide generator,
/// which tests on other threads draw from too.
fn own_dropout_stream() -> bool {
    #[cfg(target_arch = "x86_64")]
    let cpu = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let cpu = false;
    cpu && std::env::var("LABOR_CPU_KERNELS").map_or(true, |v| v != "0")
}

/// A CAREER configuration with the paper's dropout where the masks are the training thread's
/// own ([`own_dropout_stream`]), else without dropout.
fn career_with_dropout(train: &Panel) -> CareerConfig {
    let config = small_career(train);
    if own_dropout_stream() {
        config.with_dropout(0.1).with_attention_dropout(0.1)
    } else {
        eprintln!("!!! without dropout: burn's dropout here draws from a shared generator");
        config.with_dropout(0.0).with_attention_dropout(0.0)
    }
}

/// A CAREER model after one update, saved in a fresh directory named after `tag`: one starting
/// point for runs that must be compared (`with_pretrained`).
fn saved_init(train: &Panel, valid: &Panel, config: CareerConfig, tag: &str) -> std::path::PathBuf {
    let init = tempfile_dir(tag);
    TrainBuilder::new(ModelKind::Career, train, valid)
        .with_options(TrainOptions {
            max_steps: Some(1),
            ..tiny_options(1)
        })
        .with_career_config(config)
        .with_out_dir(&init)
        .build()
        .unwrap()
        .run(|_| {})
        .unwrap();
    init
}

/// CAREER killed in the middle of its second epoch and resumed: the loss curve and the weights
/// are those of the run that was never interrupted, dropout included.
#[test]
fn career_killed_mid_epoch_and_resumed_equals_uninterrupted() {
    let (train, valid, _) = synth_split(120);
    let config = career_with_dropout(&train);
    // One starting point for both runs, saved once: a fresh initialisation draws from burn's
    // process-wide generator, which tests on other threads draw from too.
    let init = saved_init(&train, &valid, config, "career-init");
    let run = |dir: &std::path::Path, resume: bool, kill_at: Option<usize>| {
        let b = TrainBuilder::new(ModelKind::Career, &train, &valid)
            .with_options(tiny_options(3))
            .with_pretrained(&init)
            .with_out_dir(dir)
            .with_resume(resume);
        // A panic from the progress callback unwinds out of training like a kill: whatever
        // was written by then stays on disk.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.build()
                .unwrap()
                .run(|e| {
                    if Some(e.row.step) == kill_at {
                        panic!("killed at step {}", e.row.step);
                    }
                })
                .unwrap()
        }))
    };
    let d1 = tempfile_dir("career-straight");
    let d2 = tempfile_dir("career-killed");
    let (m1, s1) = run(&d1, false, None).unwrap();
    let steps_per_epoch = s1.state.step / 3;
    assert!(steps_per_epoch >= 3, "{s1:?}");
    assert!(run(&d2, false, Some(steps_per_epoch + 2)).is_err());
    let (m2, s2) = run(&d2, true, None).unwrap();
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("loss.csv")).unwrap();
    assert_eq!(csv(&d1), csv(&d2));
    assert_eq!(s1.state, s2.state);
    let a = predict_panel(&m1, &valid, false, |_| {}).unwrap();
    let b = predict_panel(&m2, &valid, false, |_| {}).unwrap();
    for (x, y) in a.rows().iter().zip(b.rows()) {
        assert_eq!(x.log_prob, y.log_prob);
    }
    for d in [d1, d2, init] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn early_stopping_stops_after_the_patience_keeps_the_best_and_stays_stopped_on_resume() {
    // A logit on 60 workers with a large learning rate overfits within a few epochs.
    let (train, valid, _) = synth_split(60);
    let opts = TrainOptions {
        lr: 0.2,
        early_stopping: Some(EarlyStopping {
            epochs: 2,
            updates: 0,
        }),
        ..tiny_options(60)
    };
    let dir = tempfile_dir("early");
    let run = |resume: bool| {
        let mut valids = Vec::new();
        let (m, s) = TrainBuilder::new(ModelKind::Logit, &train, &valid)
            .with_options(opts.clone())
            .with_out_dir(&dir)
            .with_resume(resume)
            .build()
            .unwrap()
            .run(|e| valids.extend(e.row.valid_loss))
            .unwrap();
        (m, s, valids)
    };
    let (model, summary, valids) = run(false);
    let st = &summary.state;
    assert!(
        summary.stopped_early && summary.patience == 2,
        "{summary:?}"
    );
    assert!(st.epoch < 60, "{summary:?}");
    // Stopped exactly `patience` epochs after the best one, which is the minimum seen.
    assert_eq!(st.epoch, st.best_epoch + 2);
    assert_eq!(valids.len(), st.epoch);
    let min = valids.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(st.best_valid, min);
    assert!(valids[st.best_epoch..].iter().all(|v| *v >= min));
    // The model returned is the best one, not the last.
    let p = predict_panel(&model, &valid, false, |_| {}).unwrap();
    let nll = -p.rows().iter().map(|r| r.log_prob).sum::<f64>() / p.len() as f64;
    assert!((nll - min).abs() < 1e-3, "{nll} vs {min}");
    // Resuming a run that stopped trains no further.
    let (_, again, more) = run(true);
    assert!(more.is_empty() && again.stopped_early, "{again:?}");
    assert_eq!(again.state, summary.state);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_patience_scales_with_the_panel() {
    let e = EarlyStopping::default();
    // A handful of updates per epoch: 300 updates' worth of epochs; many: 3 epochs.
    assert_eq!(e.patience(3), 100);
    assert_eq!(e.patience(22), 14);
    assert_eq!(e.patience(100), 3);
    assert_eq!(e.patience(0), 300);
    for kind in [ModelKind::Career, ModelKind::Logit, ModelKind::BagOfJobs] {
        let o = kind.default_options();
        assert_eq!(o.early_stopping, Some(e), "{kind:?}");
        assert_eq!(o.epochs, 200);
    }
    assert_eq!(ModelKind::Empirical.default_options().early_stopping, None);
}

#[test]
fn logit_and_bag_of_jobs_train_and_beat_uniform() {
    let (train, valid, _) = synth_split(120);
    let uniform = (train.taxonomy().len() as f64).ln();
    for kind in [ModelKind::Logit, ModelKind::BagOfJobs] {
        let (m, s) = TrainBuilder::new(kind, &train, &valid)
            .with_options(tiny_options(2))
            .build()
            .unwrap()
            .run(|_| {})
            .unwrap();
        assert!(
            s.state.best_valid < uniform - 1.0,
            "{kind:?}: {}",
            s.state.best_valid
        );
        // A career of one record (no context) gets a distribution too.
        let one = worker("one", &[(2000, 3, Education::College)]);
        let p = m.predict_worker(&one, true).unwrap();
        let sum: f64 = p[0]
            .probs
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| f64::from(*v))
            .sum();
        assert!((sum - 1.0).abs() < 1e-4 && p[0].log_prob.is_finite());
    }
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "labor-career-test-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `model.json` sizes that its weights contradict, or that cannot be a model, are errors found
/// before the model is allocated (an edited `n_layers` of 10^9 used to ask for terabytes; an odd
/// width panicked).
#[test]
fn model_json_sizes_the_weights_contradict_are_refused_before_allocating() {
    use labor_model::{Error, SeqPredictor, TrainedModel, save_model};

    let config = tiny_config(5);
    let model = config.init(&Device::default());
    let dir = tempfile_dir("contradicted");
    save_model(
        &TrainedModel::Career(SeqPredictor::new(model, "career", 16), config.clone()),
        "test",
        None,
        &dir,
    )
    .unwrap();
    assert!(load_model(&dir, &Device::default()).is_ok());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    let edited = |path: &[&str], value: serde_json::Value| {
        let mut m = meta.clone();
        let mut v = &mut m["config"];
        for p in path {
            v = &mut v[*p];
        }
        *v = value;
        std::fs::write(dir.join("model.json"), m.to_string()).unwrap();
        load_model(&dir, &Device::default()).unwrap_err()
    };
    let weights = dir.join("model.bpk");
    let declared = config.clone().with_n_layers(1_000_000_000).num_params();
    assert_eq!(
        edited(&["n_layers"], 1_000_000_000.into()).to_string(),
        format!(
            "{}: parameters: the configuration declares {declared}, the file holds {}",
            weights.display(),
            config.num_params()
        )
    );
    assert!(matches!(
        edited(&["n_layers"], 2.into()),
        Error::Inconsistent {
            what: "parameters",
            ..
        }
    ));
    assert!(matches!(
        edited(&["d_model"], 5.into()),
        Error::UnsupportedConfig {
            field: "n_heads",
            ..
        }
    ));
    assert!(matches!(
        edited(&["d_model"], 6.into()),
        Error::Inconsistent { .. }
    ));
    assert!(matches!(
        edited(&["vocab", "n_states"], u64::MAX.into()),
        Error::UnsupportedConfig {
            field: "n_states",
            ..
        }
    ));
    assert!(matches!(
        edited(&["vocab", "year_max"], i32::MAX.into()),
        Error::UnsupportedConfig {
            field: "year_min",
            ..
        }
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// Two CAREER trainings with dropout at once, on two threads of one process, each give the
/// loss curve of the same training alone: dropout masks come from each training thread's own
/// stream, not from a generator the threads share.
#[test]
fn concurrent_trainings_with_dropout_equal_each_alone() {
    let (train, valid, _) = synth_split(80);
    let config = career_with_dropout(&train);
    let init = saved_init(&train, &valid, config, "career-concurrent-init");
    let run = |dir: &std::path::Path, seed: u64| {
        TrainBuilder::new(ModelKind::Career, &train, &valid)
            .with_options(TrainOptions {
                seed,
                ..tiny_options(2)
            })
            .with_pretrained(&init)
            .with_out_dir(dir)
            .build()
            .unwrap()
            .run(|_| {})
            .unwrap();
        std::fs::read_to_string(dir.join("loss.csv")).unwrap()
    };
    let dirs: Vec<_> = (0..4)
        .map(|i| tempfile_dir(&format!("career-concurrent-{i}")))
        .collect();
    let alone = [run(&dirs[0], 1), run(&dirs[1], 2)];
    let together = std::thread::scope(|s| {
        let a = s.spawn(|| run(&dirs[2], 1));
        let b = s.spawn(|| run(&dirs[3], 2));
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(alone, together);
    assert_ne!(alone[0], alone[1], "the seeds give other masks and batches");
    for d in dirs.into_iter().chain([init]) {
        std::fs::remove_dir_all(d).ok();
    }
}
