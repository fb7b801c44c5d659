//! The GGUF reader: a hand-built file, corruption, and the real SmolLM2 file when present.

use std::path::{Path, PathBuf};

use labor_model::{Error, GgmlType, GgufFile, GgufValue, unpermute_qk_rows};
use proptest::prelude::*;

use crate::shared_reference;

/// The SmolLM2-135M GGUF fetched by `scripts/fetch-smollm2`, when present.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let p = std::env::var_os("LABOR_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/labor/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    p.is_file().then_some(p)
}

/// The SmolLM2 GGUF and the transformers goldens of `shared/reference/smollm2/golden.json`, or
/// `None` (with a message) when either is absent.
pub fn smollm2_golden() -> Option<(PathBuf, serde_json::Value)> {
    let (Some(path), Some(reference)) = (smollm2_gguf(), shared_reference()) else {
        eprintln!("SmolLM2 GGUF or shared/reference not present: run scripts/fetch-smollm2");
        return None;
    };
    // Present but unreadable is a failure, not a skip.
    let text = std::fs::read_to_string(reference.join("smollm2/golden.json")).unwrap();
    Some((path, serde_json::from_str(&text).unwrap()))
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A GGUF v3 file with two metadata entries and two tensors: an F32 `[2, 3]` and a Q8_0 `[32]`.
fn tiny_gguf() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(2u64.to_le_bytes()); // tensors
    b.extend(2u64.to_le_bytes()); // metadata
    string(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    string(&mut b, "llama");
    string(&mut b, "tokenizer.ggml.scores");
    b.extend(9u32.to_le_bytes());
    b.extend(6u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(0.5f32.to_le_bytes());
    b.extend((-1.5f32).to_le_bytes());
    // Tensor infos: dims innermost first.
    string(&mut b, "a");
    b.extend(2u32.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    string(&mut b, "q");
    b.extend(1u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    for i in 0..6 {
        b.extend((i as f32).to_le_bytes());
    }
    b.extend([0u8; 8]); // pad the F32 tensor's 24 bytes to offset 32
    b.extend(half::f16::from_f32(0.25).to_le_bytes());
    b.extend((0..32).map(|i: i32| (i - 16) as i8 as u8));
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn reads_a_hand_built_file() {
    let dir = tempfile_dir();
    let p = write(&dir, "tiny.gguf", &tiny_gguf());
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(
        f.get("general.architecture"),
        Some(&GgufValue::String("llama".into()))
    );
    assert_eq!(
        f.get("tokenizer.ggml.scores")
            .and_then(GgufValue::as_array)
            .map(<[_]>::len),
        Some(2)
    );
    let (dims, v) = f.read_f32("a").unwrap();
    assert_eq!(dims, vec![2, 3]);
    assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let (dims, q) = f.read_f32("q").unwrap();
    assert_eq!(dims, vec![32]);
    assert_eq!(f.tensor_info("q").unwrap().ggml_type, GgmlType::Q8_0);
    assert_eq!(q[0], -16.0 * 0.25);
    assert_eq!(q[31], 15.0 * 0.25);
    assert!(matches!(
        f.read_f32("nope"),
        Err(Error::MissingTensor { .. })
    ));
}

#[test]
fn truncated_and_corrupted_files_give_located_errors() {
    let dir = tempfile_dir();
    let full = tiny_gguf();
    let p = write(&dir, "cut.gguf", &full[..full.len() - 10]);
    let err = GgufFile::open(&p).unwrap_err();
    let data_start = full.len() - 66;
    assert_eq!(
        err.to_string(),
        format!(
            "{}: byte {}, tensor `q`: data at offset 32 runs past the end of the file ({} bytes)",
            p.display(),
            data_start + 32,
            full.len() - 10
        )
    );
    let mut bad = full.clone();
    bad[0] = b'X';
    let p = write(&dir, "magic.gguf", &bad);
    assert_eq!(
        GgufFile::open(&p).unwrap_err().to_string(),
        format!("{}: byte 0: not a GGUF file (bad magic)", p.display())
    );
    let mut v1 = full.clone();
    v1[4] = 1;
    let p = write(&dir, "v1.gguf", &v1);
    assert!(
        GgufFile::open(&p)
            .unwrap_err()
            .to_string()
            .ends_with("GGUF version 1 is not supported (2 and 3 are)")
    );
    // An unknown tensor type is named with its tensor.
    let mut unk = full.clone();
    // The tensor type follows the name (u64 length 1, `q`), n_dims (u32) and the dimension (u64).
    let pos = find(&unk, &[1, 0, 0, 0, 0, 0, 0, 0, b'q']) + 9 + 4 + 8;
    unk[pos..pos + 4].copy_from_slice(&99u32.to_le_bytes());
    let p = write(&dir, "type.gguf", &unk);
    assert_eq!(
        GgufFile::open(&p).unwrap_err().to_string(),
        format!(
            "{}: tensor `q` has ggml type 99, which is not supported",
            p.display()
        )
    );
}

/// A header that claims more bytes than the file holds (parsed with `from_reader` from the
/// full bytes, read from a shorter file on disk): the mapped file's length is checked before
/// a tensor is sliced, so the read gives [`Error::Gguf`], never an out-of-bounds read.
#[test]
fn tensor_past_the_end_of_the_mapped_file_is_an_error() {
    let dir = tempfile_dir();
    let full = tiny_gguf();
    let p = write(&dir, "short.gguf", &full[..full.len() - 10]);
    let f = GgufFile::from_reader(&full[..], full.len() as u64, &p).unwrap();
    // The F32 tensor `a` lies inside the short file; `q` ends past it.
    assert_eq!(
        f.read_f32("a").unwrap().1,
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    let err = f.read_f32("q").unwrap_err();
    assert!(
        matches!(&err, Error::Gguf { path, tensor: Some(t), .. } if path == &p && t == "q"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(&format!(
            "data at offset 32 runs past the end of the file ({} bytes mapped)",
            full.len() - 10
        )),
        "{err}"
    );
    // A clone shares the map of an opened file and reads the same values.
    let p = write(&dir, "tiny.gguf", &full);
    let f = GgufFile::open(&p).unwrap();
    let g = f.clone();
    drop(f);
    assert_eq!(g.read_f32("q").unwrap().1[0], -16.0 * 0.25);
}

/// A tensor whose data offset is not a multiple of the file's alignment is named (llama.cpp
/// aligns every tensor; a misaligned one is a corrupt table, not data to read).
#[test]
fn a_misaligned_tensor_is_an_error() {
    let dir = tempfile_dir();
    let mut bad = tiny_gguf();
    // `q`'s data offset (32) is the last field of its info: after the name, n_dims, the
    // dimension and the type.
    let pos = find(&bad, &[1, 0, 0, 0, 0, 0, 0, 0, b'q']) + 9 + 4 + 8 + 4;
    bad[pos..pos + 8].copy_from_slice(&28u64.to_le_bytes());
    let p = write(&dir, "misaligned.gguf", &bad);
    let err = GgufFile::open(&p).unwrap_err().to_string();
    assert!(
        err.ends_with("tensor `q`: data offset 28 is not a multiple of the file's alignment 32"),
        "{err}"
    );
}

/// A block count the tensors contradict is an error naming both counts, found before the
/// model is allocated: a count of 2^30 layers (which would need terabytes) fails as fast as
/// one of 1, and a file with a layer more than its metadata declares is not silently cut.
#[test]
fn a_block_count_the_tensors_contradict_is_refused_before_allocating() {
    use burn::tensor::Device;
    use labor_model::{LlamaConfig, load_gguf};

    let device = Device::default();
    let config = LlamaConfig::new(16, 2, 2, 2, 24, 20).with_tie_embeddings(true);
    let model = config.init(&device);
    let dir = tempfile_dir();
    for (declared, found) in [(1usize << 30, 2u64), (1, 2), (3, 2)] {
        let claimed = LlamaConfig {
            n_layers: declared,
            ..config.clone()
        };
        let p = write(
            &dir,
            "layers.gguf",
            &llama_cpp_gguf(&model, &claimed, vec![]),
        );
        let err = load_gguf(&p, &device).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: transformer layers: the configuration declares {declared}, the file holds {found}",
                p.display()
            )
        );
    }
    // A width the tensors contradict is a shape error, also before allocating.
    let wide = LlamaConfig {
        d_ff: 1 << 31,
        ..config.clone()
    };
    let p = write(&dir, "wide.gguf", &llama_cpp_gguf(&model, &wide, vec![]));
    let err = load_gguf(&p, &device).unwrap_err();
    assert!(
        matches!(&err, Error::TensorShape { tensor, found, .. }
            if tensor == "blk.0.ffn_gate.weight" && found == &[24, 16]),
        "{err}"
    );
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "labor-gguf-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any prefix of a valid file, and any single corrupted byte, is handled without a panic.
    #[test]
    fn header_parser_never_panics(cut in 0usize..300, flip in 0usize..300, byte in any::<u8>()) {
        let full = tiny_gguf();
        let cut = cut.min(full.len());
        let _ = GgufFile::from_reader(&full[..cut], cut as u64, Path::new("<mem>"));
        let mut bad = full.clone();
        let i = flip % bad.len();
        bad[i] = byte;
        if let Ok(f) = GgufFile::from_reader(&bad[..], bad.len() as u64, Path::new("<mem>")) {
            // Whatever parsed has tensor ranges inside the file.
            for t in &f.tensors {
                prop_assert!(t.n_elements() <= bad.len() * 8);
            }
        }
    }
}

#[test]
fn unpermute_inverts_llama_cpp_permutation() {
    // llama.cpp: w.reshape(n_head, 2, hd/2, d_in).swapaxes(1, 2).reshape(rows, d_in)
    let (heads, hd, d_in) = (3, 4, 2);
    let hf: Vec<f32> = (0..heads * hd * d_in).map(|x| x as f32).collect();
    let mut gguf = vec![0.0; hf.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..hd / 2 {
                let src = h * hd + j * (hd / 2) + i;
                let dst = h * hd + i * 2 + j;
                gguf[dst * d_in..(dst + 1) * d_in]
                    .copy_from_slice(&hf[src * d_in..(src + 1) * d_in]);
            }
        }
    }
    assert_ne!(gguf, hf);
    assert_eq!(unpermute_qk_rows(&gguf, heads, d_in), hf);
}

/// Dequantised tensors of the real SmolLM2 file match the sums and first values that gguf-py
/// and transformers produced (`shared/reference/smollm2/weights_checksums.json`).
#[test]
fn smollm2_weights_match_reference_checksums() {
    let (Some(path), Some(reference)) = (smollm2_gguf(), shared_reference()) else {
        eprintln!("SmolLM2 GGUF or shared/reference not present: run scripts/fetch-smollm2");
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.tensors.len(), 272);
    let sums: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("smollm2/weights_checksums.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for t in sums["tensors"].as_array().unwrap() {
        let name = t["gguf_name"].as_str().unwrap();
        // One tensor of each kind: Q8_0 embeddings, Q4_1 projections (permuted and not), F32 norms.
        if !matches!(
            name,
            "token_embd.weight"
                | "blk.0.attn_q.weight"
                | "blk.0.attn_v.weight"
                | "blk.3.ffn_down.weight"
                | "blk.0.attn_norm.weight"
                | "output_norm.weight"
        ) {
            continue;
        }
        let (dims, mut v) = f.read_f32(name).unwrap();
        let shape: Vec<usize> = t["hf_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(dims, shape, "{name}");
        if name.contains("attn_q") {
            v = unpermute_qk_rows(&v, 9, 576);
        }
        let sum: f64 = v.iter().map(|x| f64::from(*x)).sum();
        let want = t["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() < 1e-6 * want.abs().max(1.0) + 1e-3,
            "{name}: {sum} vs {want}"
        );
        let first8: Vec<f64> = t["first8_hf_layout"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (a, b) in v.iter().zip(&first8) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{name}: {a} vs {b}");
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

/// Every dequantiser against gguf-py, llama.cpp's reference Python implementation
/// (`fixtures/gguf/make_dequant_golden.py` wrote the vectors; Q8_K, which gguf-py cannot
/// dequantise, from numpy). The values agree bit for bit: both sides compute in f32 with the
/// same operations in the same order.
#[test]
fn dequantisation_matches_gguf_py() {
    let text = std::fs::read_to_string(crate::fixtures().join("gguf/dequant_golden.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut seen = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let ty = match case["type"].as_str().unwrap() {
            "Q8_0" => GgmlType::Q8_0,
            "Q5_0" => GgmlType::Q5_0,
            "Q5_1" => GgmlType::Q5_1,
            "Q4_0" => GgmlType::Q4_0,
            "Q4_1" => GgmlType::Q4_1,
            "Q2_K" => GgmlType::Q2K,
            "Q3_K" => GgmlType::Q3K,
            "Q4_K" => GgmlType::Q4K,
            "Q5_K" => GgmlType::Q5K,
            "Q6_K" => GgmlType::Q6K,
            "Q8_K" => GgmlType::Q8K,
            "F16" => GgmlType::F16,
            "BF16" => GgmlType::Bf16,
            other => panic!("unexpected type {other}"),
        };
        let raw: Vec<u8> = case["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let want: Vec<f64> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = ty.dequantize(&raw).unwrap();
        assert_eq!(got.len(), want.len(), "{ty:?}");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                a.to_bits(),
                (*b as f32).to_bits(),
                "{ty:?}[{i}]: {a} vs {b}"
            );
        }
        // Distinct values: the random bytes exercise the whole layout, not a constant.
        let mut distinct = got.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= got.len().min(16) / 2, "{ty:?}");
        assert_eq!(GgmlType::from_id(ty.id()), ty);
        assert!(ty.dequantize(&raw[..raw.len() - 1]).is_err());
        seen.push(ty);
    }
    assert_eq!(seen.len(), 13);
    // IQ2_XXS (16) has no dequantiser.
    assert!(matches!(
        GgmlType::from_id(16).dequantize(&[0; 66]),
        Err(Error::UnsupportedTensorType { ggml_type: 16, .. })
    ));
}

/// llama.cpp's row permutation of a query/key weight `[heads * hd, d_in]` (what its converter
/// applies to Hugging Face weights).
fn permute_like_llama_cpp(hf: &[f32], heads: usize, d_in: usize) -> Vec<f32> {
    let hd = hf.len() / d_in / heads;
    let mut out = vec![0.0; hf.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..hd / 2 {
                let src = h * hd + j * (hd / 2) + i;
                let dst = h * hd + i * 2 + j;
                out[dst * d_in..(dst + 1) * d_in]
                    .copy_from_slice(&hf[src * d_in..(src + 1) * d_in]);
            }
        }
    }
    out
}

/// [`labor_model::gguf::write_gguf`] over owned `(name, shape, values)` tensors.
fn write_gguf(meta: &[(&str, GgufValue)], tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let tensors: Vec<labor_model::gguf::GgufTensor<'_>> = tensors
        .iter()
        .map(|(name, shape, data)| labor_model::gguf::GgufTensor { name, shape, data })
        .collect();
    labor_model::gguf::write_gguf(meta, &tensors).expect("a well-formed GGUF")
}

/// `model` as llama.cpp's converter writes Llama weights (query/key rows permuted, `[out, in]`
/// matrices), with the metadata of `config`.
fn llama_cpp_gguf(
    model: &labor_model::Llama,
    config: &labor_model::LlamaConfig,
    extra: Vec<(String, Vec<usize>, Vec<f32>)>,
) -> Vec<u8> {
    use burn::tensor::Tensor;

    let v = |t: Tensor<2>| -> Vec<f32> { t.into_data().try_to_vec::<f32>().unwrap() };
    let g = |t: Tensor<1>| -> Vec<f32> { t.into_data().try_to_vec::<f32>().unwrap() };
    // burn stores a Linear weight as [in, out]; GGUF as [out, in].
    let out_in = |w: Tensor<2>| {
        let [i, o] = w.dims();
        (vec![o, i], v(w.transpose()))
    };
    let d = config.d_model;
    let mut tensors = vec![
        (
            "token_embd.weight".to_string(),
            vec![config.vocab_size, d],
            v(model.embed.weight.val()),
        ),
        (
            "output_norm.weight".into(),
            vec![d],
            g(model.norm.gamma.val()),
        ),
    ];
    if let Some(head) = &model.lm_head {
        let (dims, data) = out_in(head.weight.val());
        tensors.push(("output.weight".into(), dims, data));
    }
    for (i, blk) in model.layers.iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        let (qd, q) = out_in(blk.attn.wq.weight.val());
        let (kd, k) = out_in(blk.attn.wk.weight.val());
        tensors.push((n("attn_norm"), vec![d], g(blk.attn_norm.gamma.val())));
        tensors.push((n("ffn_norm"), vec![d], g(blk.ffn_norm.gamma.val())));
        tensors.push((
            n("attn_q"),
            qd,
            permute_like_llama_cpp(&q, config.n_heads, d),
        ));
        tensors.push((
            n("attn_k"),
            kd,
            permute_like_llama_cpp(&k, config.n_kv_heads, d),
        ));
        for (name, w) in [
            ("attn_v", blk.attn.wv.weight.val()),
            ("attn_output", blk.attn.wo.weight.val()),
            ("ffn_gate", blk.ffn.gate.weight.val()),
            ("ffn_up", blk.ffn.up.weight.val()),
            ("ffn_down", blk.ffn.down.weight.val()),
        ] {
            let (dims, data) = out_in(w);
            tensors.push((n(name), dims, data));
        }
    }
    tensors.extend(extra);
    let meta = [
        ("general.architecture", GgufValue::String("llama".into())),
        (
            "llama.attention.head_count",
            GgufValue::U32(config.n_heads as u32),
        ),
        (
            "llama.attention.head_count_kv",
            GgufValue::U32(config.n_kv_heads as u32),
        ),
        ("llama.embedding_length", GgufValue::U32(d as u32)),
        ("llama.block_count", GgufValue::U32(config.n_layers as u32)),
        (
            "llama.feed_forward_length",
            GgufValue::U32(config.d_ff as u32),
        ),
        (
            "llama.context_length",
            GgufValue::U32(config.max_seq_len as u32),
        ),
        (
            "llama.rope.freq_base",
            GgufValue::F32(config.rope_theta as f32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F32(config.norm_eps as f32),
        ),
    ];
    write_gguf(&meta, &tensors)
}

/// A random-weight model written as GGUF the way llama.cpp's converter writes Llama weights
/// (query/key rows permuted, `[out, in]` matrices) loads back into the same model.
#[test]
fn random_model_round_trips_through_gguf() {
    use burn::tensor::{Device, Int, Tensor, Tolerance};
    use labor_model::{LlamaConfig, load_gguf};

    let device = Device::default();
    let config = LlamaConfig::new(32, 2, 4, 2, 48, 40)
        .with_max_seq_len(64)
        .with_rope_theta(10_000.0)
        .with_norm_eps(1e-5)
        .with_tie_embeddings(true);
    let model = config.init(&device);
    let dir = tempfile_dir();
    let path = write(
        &dir,
        "random.gguf",
        &llama_cpp_gguf(&model, &config, vec![]),
    );
    let (loaded_config, loaded) = load_gguf(&path, &device).unwrap();
    assert_eq!(loaded_config.n_kv_heads, 2);
    assert_eq!(loaded_config.vocab_size, 40);
    let tokens = Tensor::<2, Int>::from_ints([[1, 5, 7, 9, 39, 0, 3]], &device);
    loaded
        .forward(tokens.clone())
        .into_data()
        .assert_approx_eq::<f32>(
            &model.forward(tokens).into_data(),
            Tolerance::absolute(1e-5),
        );
}

/// A Llama-3 model in GGUF carries its frequency scaling as a `rope_freqs` tensor of divisors
/// (computed here with llama.cpp's converter formula); it loads into the same model as the
/// `rope_scaling` parameters of a `config.json`.
#[test]
fn llama3_rope_freqs_give_the_scaled_model() {
    use burn::tensor::{Device, Int, Tensor, Tolerance};
    use labor_model::{LlamaConfig, RopeScaling, load_gguf};

    let device = Device::default();
    // A short original context, so that the scaling changes frequencies the test positions
    // reach: wavelengths below 16 are kept, above 64 divided by 8, smoothed in between.
    let scaling = RopeScaling::new(8.0, 1.0, 4.0, 64);
    let config = LlamaConfig::new(32, 2, 2, 1, 48, 40)
        .with_max_seq_len(256)
        .with_rope_theta(10_000.0)
        .with_rope_scaling(Some(scaling.clone()))
        .with_tie_embeddings(false);
    let model = config.init(&device);
    let hd = config.head_dim();
    let factors: Vec<f32> = (0..hd / 2)
        .map(|i| {
            let freq = 10_000f64.powf(-((2 * i) as f64) / hd as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let (low, high) = (
                64.0 / scaling.low_freq_factor,
                64.0 / scaling.high_freq_factor,
            );
            let factor = if wavelen < high {
                1.0
            } else if wavelen > low {
                scaling.factor
            } else {
                let smooth = (64.0 / wavelen - scaling.low_freq_factor)
                    / (scaling.high_freq_factor - scaling.low_freq_factor);
                1.0 / ((1.0 - smooth) / scaling.factor + smooth)
            };
            factor as f32
        })
        .collect();
    assert!(factors.contains(&1.0) && factors.contains(&8.0));
    let rope = vec![("rope_freqs.weight".to_string(), vec![hd / 2], factors)];
    let dir = tempfile_dir();
    let path = write(&dir, "llama3.gguf", &llama_cpp_gguf(&model, &config, rope));
    let (loaded_config, loaded) = load_gguf(&path, &device).unwrap();
    assert_eq!(
        loaded_config.rope_freq_factors.as_ref().map(Vec::len),
        Some(hd / 2)
    );
    let ids: Vec<i32> = (0..120).map(|i| (i * 7 + 3) % 40).collect();
    let tokens = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([1, 120]);
    let want = model.forward(tokens.clone());
    loaded
        .forward(tokens.clone())
        .into_data()
        .assert_approx_eq::<f32>(&want.clone().into_data(), Tolerance::absolute(1e-4));
    // The factors matter at these positions: the same file without them differs.
    let path = write(&dir, "plain.gguf", &llama_cpp_gguf(&model, &config, vec![]));
    let (_, unscaled) = load_gguf(&path, &device).unwrap();
    let diff: f32 = (unscaled.forward(tokens) - want).abs().max().into_scalar();
    assert!(diff > 1e-3, "{diff}");
    // A configuration with divisors cannot be written as config.json.
    assert!(matches!(
        labor_model::save_hf(&loaded, &loaded_config, dir.join("hf")),
        Err(labor_model::Error::UnsupportedConfig {
            field: "rope_freq_factors",
            ..
        })
    ));
}
