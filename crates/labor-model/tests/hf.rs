//! Hugging Face checkpoints: a save/load round trip, dtypes, errors, and the real SmolLM2.

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, Tolerance};
use labor_model::{Error, LlamaConfig, RopeScaling, load_hf, save_hf};
use proptest::prelude::*;
use safetensors::Dtype;

use crate::shared_reference;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("labor-hf-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tokens(device: &Device) -> Tensor<2, Int> {
    Tensor::<1, Int>::from_ints([3, 1, 4, 1, 5, 9, 2, 6], device).reshape([1, 8])
}

#[test]
fn save_then_load_gives_the_same_model() {
    let device = Device::default();
    for tied in [true, false] {
        let config = LlamaConfig::new(32, 2, 4, 2, 48, 60)
            .with_max_seq_len(64)
            .with_tie_embeddings(tied)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Some(RopeScaling::new(8.0, 1.0, 4.0, 8192)));
        let model = config.init(&device);
        let dir = tmp(&format!("rt-{tied}"));
        save_hf(&model, &config, &dir).unwrap();
        let (c2, m2) = load_hf(&dir, &device).unwrap();
        assert_eq!(c2, config);
        model
            .forward(tokens(&device))
            .into_data()
            .assert_approx_eq::<f32>(
                &m2.forward(tokens(&device)).into_data(),
                Tolerance::absolute(1e-6),
            );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Rewrites every tensor of a saved checkpoint in `dtype` (f16 or bf16).
fn convert(dir: &std::path::Path, dtype: Dtype) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let f: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let b: Vec<u8> = match dtype {
            Dtype::F16 => f
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
            Dtype::BF16 => f
                .iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                .collect(),
            _ => unreachable!(),
        };
        out.push((name, view.shape().to_vec(), b));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = out
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

#[test]
fn half_precision_checkpoints_load_as_f32() {
    let device = Device::default();
    let config = LlamaConfig::new(32, 1, 4, 4, 48, 60)
        .with_max_seq_len(64)
        .with_tie_embeddings(true);
    let model = config.init(&device);
    let reference = model.forward(tokens(&device));
    for dtype in [Dtype::F16, Dtype::BF16] {
        let dir = tmp(&format!("{dtype:?}"));
        save_hf(&model, &config, &dir).unwrap();
        convert(&dir, dtype);
        let (_, m) = load_hf(&dir, &device).unwrap();
        let tol = if dtype == Dtype::F16 { 2e-2 } else { 1e-1 };
        reference.to_data().assert_approx_eq::<f32>(
            &m.forward(tokens(&device)).into_data(),
            Tolerance::absolute(tol),
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn broken_checkpoints_give_typed_errors() {
    let device = Device::default();
    let config = LlamaConfig::new(32, 1, 4, 4, 48, 60)
        .with_max_seq_len(64)
        .with_tie_embeddings(true);
    let dir = tmp("broken");
    save_hf(&config.init(&device), &config, &dir).unwrap();
    // A config whose vocabulary does not fit the tensors.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"vocab_size\": 60", "\"vocab_size\": 61"),
    )
    .unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: tensor `model.embed_tokens.weight` has shape [60, 32], the model needs [61, 32]",
            dir.display()
        )
    );
    std::fs::write(dir.join("config.json"), &cfg).unwrap();
    // A truncated file.
    let st = dir.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        load_hf(&dir, &device),
        Err(Error::Safetensors { .. })
    ));
    std::fs::remove_file(&st).unwrap();
    assert!(matches!(load_hf(&dir, &device), Err(Error::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// `config.json` sizes that the tensors contradict are errors found before the model is
/// allocated: an edited `num_hidden_layers` of 10^9 (terabytes of weights) fails at once with
/// both counts, an `intermediate_size` of 2^40 as a shape error.
#[test]
fn config_sizes_the_tensors_contradict_are_refused_before_allocating() {
    let device = Device::default();
    let config = LlamaConfig::new(32, 2, 4, 4, 48, 60)
        .with_max_seq_len(64)
        .with_tie_embeddings(true);
    let dir = tmp("contradicted");
    save_hf(&config.init(&device), &config, &dir).unwrap();
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    for (declared, found) in [(1_000_000_000u64, 2u64), (1, 2), (3, 2)] {
        std::fs::write(
            dir.join("config.json"),
            cfg.replace(
                "\"num_hidden_layers\": 2",
                &format!("\"num_hidden_layers\": {declared}"),
            ),
        )
        .unwrap();
        assert_eq!(
            load_hf(&dir, &device).unwrap_err().to_string(),
            format!(
                "{}: transformer layers: the configuration declares {declared}, the file holds {found}",
                dir.display()
            )
        );
    }
    std::fs::write(
        dir.join("config.json"),
        cfg.replace(
            "\"intermediate_size\": 48",
            "\"intermediate_size\": 1099511627776",
        ),
    )
    .unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert!(
        matches!(&err, Error::TensorShape { tensor, found, .. }
            if tensor == "model.layers.0.mlp.gate_proj.weight" && found == &[48, 32]),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Splits a saved `model.safetensors` into two shards (layers before `split` and the rest in
/// the first, in name order) with their `model.safetensors.index.json`; returns the shard
/// names and the name → shard map.
fn shard(dir: &std::path::Path, split: usize) -> (Vec<String>, serde_json::Value) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let files = vec![
        "model-00001-of-00002.safetensors".to_string(),
        "model-00002-of-00002.safetensors".to_string(),
    ];
    let (first, second): (Vec<_>, Vec<_>) = tensors.into_iter().partition(|(n, _)| {
        n.strip_prefix("model.layers.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < split)
    });
    let mut map = serde_json::Map::new();
    for (file, part) in files.iter().zip([first, second]) {
        for (n, _) in &part {
            map.insert(n.clone(), serde_json::Value::String(file.clone()));
        }
        safetensors::serialize_to_file(part, None, &dir.join(file)).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    let map = serde_json::Value::Object(map);
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({ "metadata": {}, "weight_map": map }).to_string(),
    )
    .unwrap();
    (files, map)
}

/// A sharded checkpoint (two memory-mapped shards and their index) loads into the same model;
/// an index that points a tensor at the wrong shard, a missing shard, a truncated shard and an
/// integer tensor give typed errors naming the file and the tensor.
#[test]
fn sharded_checkpoints_load_and_fail_with_typed_errors() {
    let device = Device::default();
    let config = LlamaConfig::new(32, 3, 4, 2, 48, 60)
        .with_max_seq_len(64)
        .with_tie_embeddings(false);
    let model = config.init(&device);
    let dir = tmp("sharded");
    save_hf(&model, &config, &dir).unwrap();
    let (files, map) = shard(&dir, 1);
    assert!(map.as_object().unwrap().values().any(|f| f == &files[0]));
    assert!(map.as_object().unwrap().values().any(|f| f == &files[1]));
    let (_, loaded) = load_hf(&dir, &device).unwrap();
    model
        .forward(tokens(&device))
        .into_data()
        .assert_approx_eq::<f32>(
            &loaded.forward(tokens(&device)).into_data(),
            Tolerance::absolute(1e-6),
        );
    let index = dir.join("model.safetensors.index.json");
    let good_index = std::fs::read_to_string(&index).unwrap();

    // The index sends a tensor of the second shard to the first.
    let moved = "model.layers.2.mlp.up_proj.weight";
    assert_eq!(map[moved], files[1]);
    let mut wrong = map.clone();
    wrong[moved] = serde_json::Value::String(files[0].clone());
    std::fs::write(
        &index,
        serde_json::json!({ "weight_map": wrong }).to_string(),
    )
    .unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert!(
        matches!(&err, Error::Safetensors { path, tensor: Some(t), .. }
            if path == &dir.join(&files[0]) && t == moved),
        "{err}"
    );
    std::fs::write(&index, &good_index).unwrap();

    // A truncated second shard: its header no longer matches its length.
    let second = dir.join(&files[1]);
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() - 4]).unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert!(
        matches!(&err, Error::Safetensors { path, .. } if path == &second),
        "{err}"
    );

    // A missing shard.
    std::fs::remove_file(&second).unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &second),
        "{err}"
    );

    // An integer tensor where a float one belongs.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = st.tensors();
    let ints: Vec<u8> = vec![0; 48 * 32 * 4];
    let i = tensors.iter().position(|(n, _)| n == moved).unwrap();
    tensors[i].1 = safetensors::tensor::TensorView::new(Dtype::I32, vec![48, 32], &ints).unwrap();
    safetensors::serialize_to_file(tensors, None, &second).unwrap();
    let err = load_hf(&dir, &device).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: tensor `{moved}`: dtype I32 is not supported (f32, f16, bf16 are)",
            second.display()
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A tiny saved checkpoint: its `config.json` text and `model.safetensors` bytes.
fn tiny_checkpoint() -> &'static (String, Vec<u8>) {
    static CHECKPOINT: std::sync::OnceLock<(String, Vec<u8>)> = std::sync::OnceLock::new();
    CHECKPOINT.get_or_init(|| {
        let device = Device::default();
        let config = LlamaConfig::new(16, 1, 2, 1, 24, 20)
            .with_max_seq_len(32)
            .with_tie_embeddings(true);
        let dir = tmp("tiny-source");
        save_hf(&config.init(&device), &config, &dir).unwrap();
        let out = (
            std::fs::read_to_string(dir.join("config.json")).unwrap(),
            std::fs::read(dir.join("model.safetensors")).unwrap(),
        );
        std::fs::remove_dir_all(&dir).ok();
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any prefix of a memory-mapped safetensors file, and any corrupted byte of its header,
    /// gives a model or a typed error naming the file: never a panic or an out-of-bounds read.
    #[test]
    fn safetensors_loader_never_panics(cut in 0usize..1 << 16, flip in 0usize..1 << 16, byte in any::<u8>()) {
        let (config, bytes) = tiny_checkpoint();
        let dir = tmp(&format!("fuzz-{:?}", std::thread::current().id()));
        std::fs::write(dir.join("config.json"), config).unwrap();
        let st = dir.join("model.safetensors");
        let device = Device::default();
        // A truncated file: the header no longer matches the length.
        let cut = cut % bytes.len();
        std::fs::write(&st, &bytes[..cut]).unwrap();
        let truncated = load_hf(&dir, &device);
        prop_assert!(
            matches!(&truncated, Err(Error::Safetensors { path, .. }) if path == &st),
            "{:?}", truncated.err()
        );
        // One corrupted byte of the length prefix or the JSON header.
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut bad = bytes.clone();
        bad[flip % header_end] = byte;
        std::fs::write(&st, &bad).unwrap();
        match load_hf(&dir, &device) {
            Ok(_) => {}
            Err(Error::Safetensors { path, .. }) => prop_assert_eq!(path, st),
            Err(Error::TensorShape { .. } | Error::MissingTensor { .. }) => {}
            // A corrupted tensor name can count another layer than config.json declares.
            Err(Error::Inconsistent { path, .. }) => prop_assert_eq!(path, dir.clone()),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// The SmolLM2 checkpoint written by `scripts/make-smollm2-hf` (two float32 shards and their
/// index) reproduces the transformers golden log-probabilities.
#[test]
fn smollm2_sharded_safetensors_matches_transformers() {
    let dir = std::env::var_os("LABOR_SMOLLM2_HF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/labor/smollm2-hf")
        });
    let (true, Some(reference)) = (
        dir.join("model.safetensors.index.json").is_file(),
        shared_reference(),
    ) else {
        eprintln!(
            "SmolLM2 HF checkpoint or shared/reference not present: run scripts/make-smollm2-hf"
        );
        return;
    };
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("smollm2/golden.json")).unwrap(),
    )
    .unwrap();
    let device = Device::default();
    let (config, model) = load_hf(&dir, &device).unwrap();
    assert_eq!(
        (config.n_layers, config.n_kv_heads, config.tie_embeddings),
        (30, 3, true)
    );
    for prompt in golden["prompts"].as_array().unwrap().iter().take(3) {
        let ids: Vec<i32> = prompt["ids_without_bos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as i32)
            .collect();
        let t = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([1, ids.len()]);
        let lp: Vec<f32> = model
            .next_token_log_probs(t)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want = prompt["scores"]["without_bos"]["next_token_logprobs"]
            .as_array()
            .unwrap();
        for (a, b) in lp.iter().zip(want) {
            assert!(
                (f64::from(*a) - b.as_f64().unwrap()).abs() < 2e-3,
                "{}: {a} vs {b}",
                prompt["name"]
            );
        }
    }
}
