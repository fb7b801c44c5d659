//! The same models on a GPU give the CPU's numbers: the Llama forward pass (with and without the
//! key-value cache), document scoring, the trie distribution, gradients (plain, LoRA, CAREER),
//! the CAREER transformer, and a fine-tuning run.
//!
//! Built with `--features wgpu` or `--features cuda`; `LABOR_TEST_GPU=wgpu|cuda` picks the
//! device when both are built in (wgpu by default). Without a GPU the wgpu variant runs on Mesa's
//! software Vulkan driver (lavapipe, Debian's `mesa-vulkan-drivers`), which is how CI runs it.

use std::ops::ControlFlow;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, Tolerance};
use labor_data::{Education, Gender, StateId, Worker, YearRecord};
use labor_model::{
    CareerConfig, FinetuneBuilder, HostBatch, KvCache, Llama, LlamaConfig, LoraOptions, Scorer,
    SeqModel, SeqPredictor, SeqVocab, TextTokenizer, apply_lora, two_stage_nll,
};

use crate::fixtures;

/// Which GPU backend the tests run on.
fn backend() -> &'static str {
    match std::env::var("LABOR_TEST_GPU").as_deref() {
        Ok("cuda") => "cuda",
        Ok("wgpu") => "wgpu",
        Ok(other) => panic!("LABOR_TEST_GPU={other}: expected wgpu or cuda"),
        Err(_) if cfg!(feature = "wgpu") => "wgpu",
        Err(_) => "cuda",
    }
}

fn gpu() -> Device {
    let device = match backend() {
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => panic!("the {other} backend is not built in (`--features {other}`)"),
    };
    // Print what the tests run on, so that a CI log shows whether a real adapter was found.
    eprintln!("GPU under test: {device:?}");
    device
}

/// A float32 tolerance, widened on CUDA: burn's CUDA matrix products take float32 inputs on the
/// tensor cores in TF32 (a 10-bit mantissa) on GPUs of compute capability 8.0 and up, which
/// moves results by about 2^-11 relative per product (docs/gpu.md). A wrong kernel still misses
/// by orders of magnitude more.
fn tol(f32_tolerance: f32) -> f32 {
    if backend() == "cuda" {
        f32_tolerance * 50.0
    } else {
        f32_tolerance
    }
}

fn cpu() -> Device {
    Device::flex()
}

fn tiny_model(device: &Device, seed: u64) -> Llama {
    device.seed(seed);
    LlamaConfig::new(48, 2, 4, 2, 96, 600)
        .with_max_seq_len(1024)
        .with_tie_embeddings(false)
        .init(device)
}

fn ids(device: &Device, rows: usize, cols: usize) -> Tensor<2, Int> {
    let v: Vec<i32> = (0..rows * cols)
        .map(|i| ((i * 37 + 11) % 600) as i32)
        .collect();
    Tensor::<1, Int>::from_ints(v.as_slice(), device).reshape([rows, cols])
}

fn close(a: Tensor<3>, b: Tensor<3>, tolerance: f32) {
    let diff: f32 = (a.clone() - b.clone()).abs().max().into_scalar();
    eprintln!("largest difference {diff:e} (tolerance {tolerance:e})");
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(tolerance));
}

#[test]
fn llama_forward_and_cache_match_the_cpu() {
    let (cpu, gpu) = (cpu(), gpu());
    let on_cpu = tiny_model(&cpu, 5);
    let on_gpu = on_cpu.clone().to_device(&gpu);
    let want = on_cpu.forward(ids(&cpu, 2, 40));
    let got = on_gpu.forward(ids(&gpu, 2, 40));
    assert_eq!(got.dims(), [2, 40, 600]);
    close(got.clone().to_device(&cpu), want, tol(1e-4));
    // Decoding in two chunks with the cache gives the full pass.
    let mut cache = KvCache::new();
    let t = ids(&gpu, 2, 40);
    let a = on_gpu.forward_with_cache(t.clone().narrow(1, 0, 25), &mut cache);
    let b = on_gpu.forward_with_cache(t.narrow(1, 25, 15), &mut cache);
    close(
        Tensor::cat(vec![a, b], 1).to_device(&cpu),
        got.to_device(&cpu),
        tol(1e-4),
    );
}

#[test]
fn scoring_and_the_trie_distribution_match_the_cpu() {
    let (cpu, gpu) = (cpu(), gpu());
    let tok = TextTokenizer::from_file(fixtures().join("models/tiny-bpe/tokenizer.json")).unwrap();
    let on_cpu = tiny_model(&cpu, 9);
    let on_gpu = on_cpu.clone().to_device(&gpu);
    let (_, docs) = crate::score::documents(3);
    let want = Scorer::new(&on_cpu, &tok, cpu.clone())
        .with_batch_tokens(600)
        .score_documents(&docs)
        .unwrap();
    let gpu_scorer = Scorer::new(&on_gpu, &tok, gpu.clone()).with_batch_tokens(600);
    let got = gpu_scorer.score_documents(&docs).unwrap();
    let mut n = 0;
    let mut largest = 0.0f64;
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!((g - w).abs() < f64::from(tol(1e-3)), "gpu {g} vs cpu {w}");
        largest = largest.max((g - w).abs());
        n += 1;
    }
    eprintln!("scores: largest difference {largest:e}");
    assert!(n > 10, "{n} targets compared");

    let doc = &docs[0];
    let target = &doc.targets[1];
    let titles: Vec<String> = ["Cooks\n", "Cashiers\n", "Registered nurses\n", "Cook\n"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let want = Scorer::new(&on_cpu, &tok, cpu)
        .distribution(doc.prompt(target), &titles)
        .unwrap();
    let got = gpu_scorer
        .distribution(doc.prompt(target), &titles)
        .unwrap();
    assert!(
        (got.valid_mass() - want.valid_mass()).abs() < f64::from(tol(1e-3)) * want.valid_mass(),
        "mass {} vs {}",
        got.valid_mass(),
        want.valid_mass()
    );
    for (g, w) in got.renormalized().iter().zip(want.renormalized()) {
        assert!(
            (g - w).abs() < f64::from(tol(1e-4)),
            "renormalised {g} vs {w}"
        );
    }
}

#[test]
fn gradients_match_the_cpu() {
    let (cpu, gpu) = (cpu().autodiff(), gpu().autodiff());
    let on_cpu = tiny_model(&cpu, 13);
    // `fork` makes the copy's parameters leaves of the GPU's graph (`to_device` would keep
    // them as results of a device transfer, and the gradient would land on the CPU's).
    let on_gpu = on_cpu.clone().fork(&gpu);
    let grad = |model: &Llama, device: &Device| {
        let loss = model.next_token_log_probs(ids(device, 2, 30)).mean().neg();
        let grads = loss.backward();
        let g = model.layers[1].ffn.down.weight.grad(&grads).unwrap();
        g.to_device(&Device::flex())
    };
    let want = grad(&on_cpu, &cpu);
    let got = grad(&on_gpu, &gpu);
    let scale: f32 = want.clone().abs().max().into_scalar();
    assert!(scale > 0.0, "the gradient is not zero");
    let diff: f32 = (got.clone() - want.clone()).abs().max().into_scalar();
    eprintln!(
        "gradient: largest difference {:e} of its largest entry",
        diff / scale
    );
    got.into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(tol(1e-4) * scale));
}

/// The largest difference between two gradients relative to the largest entry of `want`; fails
/// above `tolerance` (relative) or when `want` is zero.
fn gradients_close(name: &str, got: Tensor<2>, want: Tensor<2>, tolerance: f32) {
    let got = got.to_device(&cpu());
    let scale: f32 = want.clone().abs().max().into_scalar();
    assert!(scale > 0.0, "{name}: the gradient is zero");
    let diff: f32 = (got - want).abs().max().into_scalar();
    eprintln!(
        "{name}: largest difference {:e} of its largest entry",
        diff / scale
    );
    assert!(
        diff <= tolerance * scale,
        "{name}: {diff:e} > {tolerance:e} × {scale:e}"
    );
}

/// LoRA adapters (the frozen product and the low-rank path side by side) get the CPU's
/// gradients, and the frozen weights get none on either device.
#[test]
fn lora_gradients_match_the_cpu() {
    use burn::optim::{GradientsParams, SgdConfig};
    let (cpu, gpu) = (cpu().autodiff(), gpu().autodiff());
    let mut options = LoraOptions::with_rank(4);
    options.dropout = 0.0;
    let loss = |model: &Llama, device: &Device| {
        model.next_token_log_probs(ids(device, 2, 30)).mean().neg()
    };
    // B starts at zero, so A's gradient does too: one plain SGD step on the CPU first makes both
    // adapter matrices matter.
    let model = apply_lora(tiny_model(&cpu, 17), &options).unwrap();
    let grads = GradientsParams::from_grads(loss(&model, &cpu).backward(), &model);
    let on_cpu = SgdConfig::new().init().step(0.5, model, grads);
    let on_gpu = on_cpu.clone().fork(&gpu);
    let (want, got) = (
        loss(&on_cpu, &cpu).backward(),
        loss(&on_gpu, &gpu).backward(),
    );
    for (i, (c, g)) in [
        (&on_cpu.layers[0].attn.wq, &on_gpu.layers[0].attn.wq),
        (&on_cpu.layers[1].attn.wv, &on_gpu.layers[1].attn.wv),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(c.weight.val().grad(&want).is_none(), "frozen weight, cpu");
        assert!(g.weight.val().grad(&got).is_none(), "frozen weight, gpu");
        let (ca, ga) = (c.weight.adapter().unwrap(), g.weight.adapter().unwrap());
        gradients_close(
            &format!("lora a {i}"),
            ga.a.val().grad(&got).unwrap(),
            ca.a.val().grad(&want).unwrap(),
            tol(1e-4),
        );
        gradients_close(
            &format!("lora b {i}"),
            ga.b.val().grad(&got).unwrap(),
            ca.b.val().grad(&want).unwrap(),
            tol(1e-4),
        );
    }
}

/// A tiny CAREER without dropout: its two-stage loss gets the CPU's gradients on the GPU.
#[test]
fn career_gradients_match_the_cpu() {
    let (cpu, gpu) = (cpu().autodiff(), gpu().autodiff());
    cpu.seed(23);
    let vocab = SeqVocab::new(6, 2000, 2010);
    let config = CareerConfig::new(vocab.clone())
        .with_n_layers(2)
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_dropout(0.0)
        .with_attention_dropout(0.0)
        .with_max_seq_len(16);
    let on_cpu = config.init(&cpu);
    let on_gpu = on_cpu.clone().fork(&gpu);
    let mut workers = Vec::new();
    for (k, len) in [5usize, 3, 7].into_iter().enumerate() {
        let mut w = Worker::new(format!("w{k}"), "test");
        w.gender = Gender::Female;
        for y in 0..len {
            let state = ((y * 3 + k) % 6) as u16;
            w.records.push(YearRecord::new(
                2000 + y as i32,
                StateId(state),
                Education::College,
            ));
        }
        workers.push(w);
    }
    let refs: Vec<&Worker> = workers.iter().collect();
    let host = HostBatch::from_workers(&refs, &vocab, config.max_seq_len).unwrap();
    let loss = |model: &labor_model::Career, device: &Device| {
        let batch = host.to_device(device);
        // On the CPU the loss is one node of the crate's kernels (with LayerNorm and the
        // clamp); on the GPU it is burn's composition of the two-stage output.
        two_stage_nll(model.logits(&batch), &batch).backward()
    };
    let (want, got) = (loss(&on_cpu, &cpu), loss(&on_gpu, &gpu));
    let pairs = [
        ("job embedding", &on_cpu.job.weight, &on_gpu.job.weight),
        (
            "layer 0 q",
            &on_cpu.layers[0].q.weight,
            &on_gpu.layers[0].q.weight,
        ),
        (
            "layer 1 v",
            &on_cpu.layers[1].v.weight,
            &on_gpu.layers[1].v.weight,
        ),
        (
            "layer 1 fc1",
            &on_cpu.layers[1].fc1.weight,
            &on_gpu.layers[1].fc1.weight,
        ),
        ("head", &on_cpu.head.weight, &on_gpu.head.weight),
    ];
    for (name, c, g) in pairs {
        gradients_close(
            name,
            g.val().grad(&got).unwrap(),
            c.val().grad(&want).unwrap(),
            tol(1e-4),
        );
    }
}

#[test]
fn career_matches_the_cpu() {
    let (cpu, gpu) = (cpu(), gpu());
    cpu.seed(21);
    let config = CareerConfig::new(SeqVocab::new(6, 2000, 2010))
        .with_n_layers(2)
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_max_seq_len(16);
    let model = config.init(&cpu);
    let on_cpu = SeqPredictor::new(model.clone(), "career", config.max_seq_len);
    let on_gpu = SeqPredictor::new(model.to_device(&gpu), "career", config.max_seq_len);
    let mut w = Worker::new("w", "test");
    w.gender = Gender::Male;
    for (y, s) in [(2000, 1), (2001, 1), (2002, 4), (2004, 2), (2005, 5)] {
        w.records
            .push(YearRecord::new(y, StateId(s), Education::HighSchool));
    }
    let want = on_cpu.log_prob_table(&w).unwrap();
    let got = on_gpu.log_prob_table(&w).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, v) in got.iter().zip(&want) {
        assert!((g - v).abs() < tol(1e-4), "gpu {g} vs cpu {v}");
    }
}

/// A short full fine-tuning run (no dropout, so no random numbers after the initial weights)
/// follows the same loss curve on both devices.
#[test]
fn finetuning_follows_the_cpu_loss_curve() {
    let (train, valid, tok, config) = crate::finetune::setup(10);
    // Both runs start from these weights (`fork` copies them as trainable leaves).
    let initial = config.init(&Device::flex().autodiff());
    let run = |device: Device, tag: &str| {
        let model = initial.clone().fork(&device);
        let mut o = crate::finetune::options();
        o.epochs = 1;
        o.eval_every = None;
        FinetuneBuilder::new(
            model,
            config.clone(),
            tok.clone(),
            crate::finetune::tmp(tag),
        )
        .with_train(train.clone())
        .with_valid(valid.clone())
        .with_options(o)
        .build()
        .unwrap()
        .run(|_| ControlFlow::Continue(()))
        .unwrap()
    };
    let want = run(Device::flex().autodiff(), "gpu-ref-cpu");
    let got = run(gpu().autodiff(), "gpu-gpu");
    assert!(want.curve.len() >= 2, "{} steps", want.curve.len());
    assert_eq!(got.curve.len(), want.curve.len());
    for (g, w) in got.curve.iter().zip(&want.curve) {
        assert_eq!(g.tokens, w.tokens);
        assert!(
            (g.train_loss - w.train_loss).abs() < f64::from(tol(1e-3)),
            "step {}: gpu {} vs cpu {}",
            w.step,
            g.train_loss,
            w.train_loss
        );
    }
    let (g, w) = (got.best_valid_loss.unwrap(), want.best_valid_loss.unwrap());
    eprintln!("validation loss: gpu {g} vs cpu {w}");
    assert!(
        (g - w).abs() < f64::from(tol(1e-3)),
        "validation loss gpu {g} vs cpu {w}"
    );
}
