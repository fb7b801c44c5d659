//! The models on labor-kernels' CPU kernels against the same models on burn's own operations
//! ([`labor_kernels::with_burn_ops`]): forward passes, cached and tree attention, and the
//! gradients of Llama (tied, untied, LoRA) and CAREER.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use labor_data::{Education, Ethnicity, Gender, Region, StateId, Worker, YearRecord};
use labor_kernels::{enabled, relative_difference, with_burn_ops as without};

use crate::llm::lora::{LoraOptions, apply_lora};
use crate::llm::model::KvCache;
use crate::seq::{HostBatch, SeqModel, SeqVocab, two_stage_nll};
use crate::{CareerConfig, Llama, LlamaConfig};

/// The values of a float tensor (the tests of [`grad`] use it too).
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn model(tied: bool, device: &Device) -> Llama {
    // Grouped-query attention (4 query heads on 2 key/value heads), head width 16.
    LlamaConfig::new(64, 2, 4, 2, 96, 211)
        .with_tie_embeddings(tied)
        .init(device)
}

fn ids(b: usize, s: usize, device: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = (0..b * s).map(|i| ((i * 7919 + 13) % 211) as i64).collect();
    Tensor::<1, Int>::from_ints(v.as_slice(), device).reshape([b, s])
}

#[test]
fn kernels_agree_with_burn_on_a_whole_model() {
    if !enabled() {
        eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
        return;
    }
    let device = Device::default();
    for tied in [false, true] {
        let m = model(tied, &device);
        // Causal attention over more than one block of queries, two batch rows.
        let t = ids(2, 150, &device);
        let fast = values(m.next_token_log_probs(t.clone()));
        let slow = values(without(|| m.next_token_log_probs(t)));
        let d = largest_difference(&fast, &slow);
        assert!(d < 1e-4, "log-probs differ by {d} (tied: {tied})");

        // With cached positions: the second call attends to the first's keys.
        let run = |m: &Llama| {
            let mut cache = KvCache::new();
            let _ = m.hidden(ids(1, 70, &device), &mut cache);
            let h = m.hidden(ids(1, 9, &device), &mut cache);
            // Two rows of trees after the cache: node i sees its ancestors i - 2, i - 4, ...
            let visible: Vec<Vec<Vec<bool>>> = (0..2)
                .map(|_| {
                    (0..5)
                        .map(|i| (0..5).map(|j| j <= i && (i - j) % 2 == 0).collect())
                        .collect()
                })
                .collect();
            let positions = vec![vec![79, 80, 80, 81, 81], vec![79, 79, 80, 80, 81]];
            let tree = m.hidden_tree(ids(2, 5, &device), &positions, &visible, &cache);
            (values(h), values(m.head(tree)))
        };
        let (h_fast, tree_fast) = run(&m);
        let (h_slow, tree_slow) = without(|| run(&m));
        let d = largest_difference(&h_fast, &h_slow);
        assert!(
            d < 1e-4,
            "cached hidden states differ by {d} (tied: {tied})"
        );
        let d = largest_difference(&tree_fast, &tree_slow);
        assert!(d < 1e-4, "tree logits differ by {d} (tied: {tied})");
    }
}

/// A weighted next-token loss and the gradients of every parameter named in `params`.
fn loss_and_grads(m: &Llama, device: &Device) -> (f32, Vec<(String, Vec<f32>)>) {
    let (b, s) = (2, 77);
    let ids: Vec<i64> = (0..b * s).map(|i| ((i * 7919 + 13) % 211) as i64).collect();
    let tokens = Tensor::<1, Int>::from_ints(ids.as_slice(), device).reshape([b, s]);
    // Uneven weights (some zero), as a loss mask with padding gives.
    let w: Vec<f32> = (0..b * (s - 1))
        .map(|i| ((i * 31) % 7) as f32 / 3.0)
        .collect();
    let w = Tensor::<1>::from_floats(w.as_slice(), device).reshape([b, s - 1]);
    let loss = (m.next_token_log_probs(tokens) * w).sum().neg();
    let value = values(loss.clone())[0];
    let grads = loss.backward();
    let block = &m.layers[1];
    let mut named: Vec<(&str, Option<Tensor<2>>)> = vec![
        ("embed", m.embed.weight.val().grad(&grads)),
        ("wq", block.attn.wq.weight.val().grad(&grads)),
        ("wk", block.attn.wk.weight.val().grad(&grads)),
        ("wv", block.attn.wv.weight.val().grad(&grads)),
        ("wo", block.attn.wo.weight.val().grad(&grads)),
        ("gate", block.ffn.gate.weight.val().grad(&grads)),
        ("up", block.ffn.up.weight.val().grad(&grads)),
        ("down", block.ffn.down.weight.val().grad(&grads)),
    ];
    if let Some(h) = &m.lm_head {
        named.push(("lm_head", h.weight.val().grad(&grads)));
    }
    for (name, lora) in [("wq", &block.attn.wq), ("wv", &block.attn.wv)] {
        if let Some(a) = lora.weight.adapter() {
            named.push((name, None));
            named.push(("lora a", a.a.val().grad(&grads)));
            named.push(("lora b", a.b.val().grad(&grads)));
        }
    }
    let mut out: Vec<(String, Vec<f32>)> = named
        .into_iter()
        .filter_map(|(n, g)| g.map(|g| (n.to_string(), values(g))))
        .collect();
    for (name, g) in [
        ("attn_norm", block.attn_norm.gamma.val().grad(&grads)),
        ("ffn_norm", block.ffn_norm.gamma.val().grad(&grads)),
        ("norm", m.norm.gamma.val().grad(&grads)),
    ] {
        if let Some(g) = g {
            out.push((name.to_string(), values(g)));
        }
    }
    (value, out)
}

#[test]
fn gradients_agree_with_burn() {
    if !enabled() {
        eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
        return;
    }
    let device = Device::default().autodiff();
    for (tied, lora) in [(false, false), (true, false), (true, true)] {
        // Grouped-query attention (4 query heads on 2 key/value heads), head width 16.
        let mut m = LlamaConfig::new(64, 3, 4, 2, 96, 211)
            .with_tie_embeddings(tied)
            .init(&device);
        if lora {
            m = apply_lora(m, &LoraOptions::with_rank(4)).expect("lora");
        }
        let (fast_loss, fast) = loss_and_grads(&m, &device);
        assert!(
            loss_and_grads(&m, &device) == (fast_loss, fast.clone()),
            "a second run gives the same bits (tied {tied}, lora {lora})"
        );
        let (slow_loss, slow) = without(|| loss_and_grads(&m, &device));
        assert!(
            (fast_loss - slow_loss).abs() <= 1e-5 * slow_loss.abs(),
            "loss {fast_loss} vs {slow_loss} (tied {tied}, lora {lora})"
        );
        let names: Vec<&str> = slow.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            fast.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            names,
            "the same parameters get gradients (tied {tied}, lora {lora})"
        );
        assert!(names.len() >= if lora { 4 } else { 11 }, "{names:?}");
        for ((name, f), (_, s)) in fast.iter().zip(&slow) {
            let d = relative_difference(f, s);
            assert!(
                d < 1e-4,
                "{name}: gradients differ by {d} of their largest (tied {tied}, lora {lora})"
            );
        }
    }
}

/// Careers of uneven lengths (padding) over `n_states` states that often repeat (the stay
/// branch of the two-stage output), from a fixed-seed generator.
fn careers(n_workers: usize, n_states: usize, vocab: &SeqVocab) -> HostBatch {
    let mut rng = labor_data::SeededRng::new(12345);
    let mut below = |n: usize| (rng.next_u64() % n as u64) as usize;
    let workers: Vec<Worker> = (0..n_workers)
        .map(|i| {
            let mut w = Worker::new(format!("w{i}"), "test");
            w.gender = Gender::ALL[below(2)];
            w.ethnicity = Ethnicity::ALL[below(3)];
            w.region = Region::ALL[below(4)];
            let mut state = below(n_states);
            for year in (1990..).take(3 + below(9)) {
                if below(3) > 0 {
                    state = below(n_states);
                }
                w.records.push(YearRecord::new(
                    year,
                    StateId(state as u16),
                    Education::ALL[below(5)],
                ));
            }
            w
        })
        .collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    HostBatch::from_workers(&refs, vocab, 64).expect("a batch")
}

#[test]
fn two_stage_loss_and_its_gradient_agree_with_the_composition() {
    if !enabled() {
        eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
        return;
    }
    let device = Device::default().autodiff();
    let n = 7;
    let vocab = SeqVocab::new(n, 1990, 2010);
    let hb = careers(9, n, &vocab);
    assert!(hb.mask.contains(&0.0), "some padding");
    let stays = (0..hb.target.len())
        .filter(|&k| hb.mask[k] == 1.0 && hb.target[k] == hb.prev[k])
        .count();
    assert!(
        stays >= 3,
        "some targets repeat the previous state ({stays})"
    );
    let b = hb.to_device(&device);
    // Logits over a wide range, some beyond the clamp, on padding too.
    let width = n + 1;
    let xs: Vec<f32> = (0..hb.batch * hb.len * width)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 14.0)
        .collect();
    let run = || {
        let x = Tensor::<1>::from_floats(xs.as_slice(), &device)
            .reshape([hb.batch, hb.len, width])
            .require_grad();
        let loss = two_stage_nll(x.clone(), &b);
        let grads = (loss.clone() * 3.0).backward();
        (values(loss), values(x.grad(&grads).expect("a gradient")))
    };
    let (fast_loss, fast) = run();
    let (slow_loss, slow) = without(run);
    assert!(
        (fast_loss[0] - slow_loss[0]).abs() <= 1e-5 * slow_loss[0].abs(),
        "loss {fast_loss:?} vs {slow_loss:?}"
    );
    let d = relative_difference(&fast, &slow);
    assert!(d < 1e-5, "gradients differ by {d} of their largest");
    // Padding gets no gradient.
    for (k, m) in hb.mask.iter().enumerate() {
        if *m == 0.0 {
            assert!(fast[k * width..(k + 1) * width].iter().all(|g| *g == 0.0));
        }
    }
}

#[test]
fn career_gradients_agree_with_burn() {
    if !enabled() {
        eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
        return;
    }
    let device = Device::default().autodiff();
    device.seed(3);
    let n = 11;
    let vocab = SeqVocab::new(n, 1990, 2010);
    // No dropout: burn's masks and the kernels' differ.
    let model = CareerConfig::small(vocab.clone())
        .with_n_layers(2)
        .with_dropout(0.0)
        .with_attention_dropout(0.0)
        .init(&device);
    let hb = careers(6, n, &vocab);
    let run = || {
        let b = hb.to_device(&device);
        let loss = two_stage_nll(model.logits(&b), &b);
        let grads = loss.backward();
        let l = &model.layers[1];
        let mut out = vec![values(loss)];
        for w in [
            model.job.weight.val().grad(&grads),
            model.year.weight.val().grad(&grads),
            l.q.weight.val().grad(&grads),
            l.fc1.weight.val().grad(&grads),
            model.head.weight.val().grad(&grads),
        ] {
            out.push(values(w.expect("a gradient")));
        }
        for v in [
            l.q.bias.as_ref().map(|b| b.val()),
            l.fc2.bias.as_ref().map(|b| b.val()),
            Some(l.attn_norm.gamma.val()),
            l.ffn_norm.beta.as_ref().map(|b| b.val()),
            Some(model.norm.gamma.val()),
        ] {
            out.push(values(v.and_then(|v| v.grad(&grads)).expect("a gradient")));
        }
        out
    };
    let fast = run();
    assert_eq!(run(), fast, "a second run gives the same bits");
    let slow = without(run);
    for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
        let d = relative_difference(f, s);
        assert!(d < 1e-4, "value {i} differs by {d} of its largest");
    }
    let _ = model.num_params();
}
