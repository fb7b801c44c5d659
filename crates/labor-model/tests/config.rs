use labor_model::{Error, LlamaConfig, RopeScaling, rope_inv_freq};

use crate::{fixtures, shared_reference};

#[test]
fn presets_are_valid_and_have_the_published_sizes() {
    let cases = [
        (
            LlamaConfig::llama2_7b(),
            4096,
            32,
            32,
            32,
            11008,
            32000,
            false,
        ),
        (
            LlamaConfig::llama2_13b(),
            5120,
            40,
            40,
            40,
            13824,
            32000,
            false,
        ),
        (
            LlamaConfig::llama3_2_1b(),
            2048,
            16,
            32,
            8,
            8192,
            128_256,
            true,
        ),
        (
            LlamaConfig::llama3_2_3b(),
            3072,
            28,
            24,
            8,
            8192,
            128_256,
            true,
        ),
        (
            LlamaConfig::llama3_1_8b(),
            4096,
            32,
            32,
            8,
            14336,
            128_256,
            false,
        ),
        (
            LlamaConfig::smollm2_135m(),
            576,
            30,
            9,
            3,
            1536,
            49152,
            true,
        ),
        (
            LlamaConfig::smollm2_360m(),
            960,
            32,
            15,
            5,
            2560,
            49152,
            true,
        ),
        (
            LlamaConfig::smollm2_1_7b(),
            2048,
            24,
            32,
            32,
            8192,
            49152,
            true,
        ),
    ];
    for (c, d, l, h, kv, ff, v, tied) in cases {
        c.validate().unwrap();
        assert_eq!(
            (
                c.d_model,
                c.n_layers,
                c.n_heads,
                c.n_kv_heads,
                c.d_ff,
                c.vocab_size,
                c.tie_embeddings
            ),
            (d, l, h, kv, ff, v, tied)
        );
    }
    assert_eq!(LlamaConfig::smollm2_135m().head_dim(), 64);
    assert_eq!(LlamaConfig::llama3_2_3b().head_dim(), 128);
}

#[test]
fn hf_config_json() {
    let c =
        LlamaConfig::from_hf_config_file(fixtures().join("models/tiny-llama/config.json")).unwrap();
    assert_eq!(
        c,
        LlamaConfig::new(64, 2, 4, 2, 160, 300)
            .with_max_seq_len(512)
            .with_rope_theta(500_000.0)
            .with_rope_scaling(Some(RopeScaling::new(32.0, 1.0, 4.0, 8192)))
            .with_norm_eps(1e-5)
            .with_tie_embeddings(true)
    );
    let dir = std::env::temp_dir().join(format!("labor-model-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("config.json");
    std::fs::write(&bad, r#"{"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "rope_scaling": {"type": "linear", "factor": 2.0}}"#).unwrap();
    let err = LlamaConfig::from_hf_config_file(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported model configuration: rope_scaling: rope type `linear` is not supported (only llama3)"
    );
    std::fs::write(&bad, r#"{"hidden_size": 64}"#).unwrap();
    assert!(matches!(
        LlamaConfig::from_hf_config_file(&bad),
        Err(Error::ConfigJson { .. })
    ));
    std::fs::write(&bad, r#"{"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3, "vocab_size": 10}"#).unwrap();
    assert_eq!(
        LlamaConfig::from_hf_config_file(&bad)
            .unwrap_err()
            .to_string(),
        "unsupported model configuration: n_heads: 3 does not divide d_model 64"
    );
    // A non-positive epsilon used to reach burn's RMS norm, which panics on it (found by
    // `labor-fuzz`, target hf-config).
    std::fs::write(&bad, r#"{"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "rms_norm_eps": -1}"#).unwrap();
    assert_eq!(
        LlamaConfig::from_hf_config_file(&bad)
            .unwrap_err()
            .to_string(),
        "unsupported model configuration: norm_eps: -1 is not a positive finite epsilon"
    );
    std::fs::write(&bad, r#"{"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "rope_theta": 0}"#).unwrap();
    assert!(matches!(
        LlamaConfig::from_hf_config_file(&bad),
        Err(Error::UnsupportedConfig {
            field: "rope_theta",
            ..
        })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// The SmolLM2-135M config.json that transformers wrote equals our preset.
#[test]
fn smollm2_config_matches_preset() {
    let Some(dir) = shared_reference() else {
        eprintln!("shared/reference not present: cross-check not run");
        return;
    };
    let c = LlamaConfig::from_hf_config_file(dir.join("smollm2/config.json")).unwrap();
    let p = LlamaConfig::smollm2_135m();
    assert_eq!(
        (
            c.d_model,
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.d_ff,
            c.vocab_size
        ),
        (
            p.d_model,
            p.n_layers,
            p.n_heads,
            p.n_kv_heads,
            p.d_ff,
            p.vocab_size
        )
    );
    assert_eq!(
        (c.rope_theta, c.tie_embeddings, c.max_seq_len),
        (p.rope_theta, p.tie_embeddings, p.max_seq_len)
    );
    // transformers stores the epsilon as the nearest f32 of 1e-5.
    assert!((c.norm_eps - p.norm_eps).abs() < 1e-12);
    assert_eq!(c.rope_scaling, None);
}

/// Llama-3 scaling keeps high frequencies, divides low ones by the factor, and interpolates in
/// between (values as Hugging Face's `_compute_llama3_parameters` gives them).
#[test]
fn llama3_rope_scaling() {
    let plain = rope_inv_freq(64, 500_000.0, None);
    let s = RopeScaling::new(32.0, 1.0, 4.0, 8192);
    let scaled = rope_inv_freq(64, 500_000.0, Some(&s));
    assert_eq!(plain[0], 1.0);
    assert_eq!(scaled[0], 1.0);
    let wavelen = |f: f64| 2.0 * std::f64::consts::PI / f;
    for (p, q) in plain.iter().zip(&scaled) {
        if wavelen(*p) < 8192.0 / 4.0 {
            assert_eq!(p, q);
        } else if wavelen(*p) > 8192.0 {
            assert!((q * 32.0 - p).abs() < 1e-15);
        } else {
            assert!(q < p && *q > p / 32.0);
        }
    }
    // θ^(-2i/d) for i = 1, d = 64, θ = 500000.
    assert!((plain[1] - 500_000f64.powf(-2.0 / 64.0)).abs() < 1e-15);
}
