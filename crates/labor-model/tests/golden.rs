//! The real SmolLM2-135M, loaded from its GGUF, against log-probabilities computed by Hugging
//! Face transformers (float32) on the same dequantised weights.

use burn::tensor::{Device, Int, Tensor};
use labor_model::{LlamaConfig, load_gguf};

use crate::gguf::smollm2_golden;

fn ids_tensor(ids: &[i64], device: &Device) -> Tensor<2, Int> {
    let v: Vec<i32> = ids.iter().map(|x| *x as i32).collect();
    Tensor::<1, Int>::from_ints(v.as_slice(), device).reshape([1, ids.len()])
}

fn as_ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn smollm2_matches_transformers_log_probs() {
    let Some((path, golden)) = smollm2_golden() else {
        return;
    };
    let device = Device::default();
    let (config, model) = load_gguf(&path, &device).unwrap();
    let preset = LlamaConfig::smollm2_135m();
    assert_eq!(
        (
            config.d_model,
            config.n_layers,
            config.n_heads,
            config.n_kv_heads,
            config.d_ff,
            config.vocab_size,
            config.tie_embeddings,
            config.rope_theta
        ),
        (
            preset.d_model,
            preset.n_layers,
            preset.n_heads,
            preset.n_kv_heads,
            preset.d_ff,
            preset.vocab_size,
            preset.tie_embeddings,
            preset.rope_theta
        )
    );
    let mut max_diff = 0f64;
    for prompt in golden["prompts"].as_array().unwrap() {
        for (ids_key, score_key) in [
            ("ids_without_bos", "without_bos"),
            ("ids_with_bos", "with_bos"),
        ] {
            let ids = as_ids(&prompt[ids_key]);
            let lp: Vec<f32> = model
                .next_token_log_probs(ids_tensor(&ids, &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let want: Vec<f64> = prompt["scores"][score_key]["next_token_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(lp.len(), want.len());
            for (a, b) in lp.iter().zip(&want) {
                max_diff = max_diff.max((f64::from(*a) - b).abs());
            }
            let sum: f64 = lp.iter().map(|x| f64::from(*x)).sum();
            let want_sum = prompt["scores"][score_key]["sum_logprob"].as_f64().unwrap();
            // Float32 sums over hundreds of tokens drift by about 1e-4 per token.
            let tol = 0.01 + 2e-4 * want.len() as f64;
            assert!(
                (sum - want_sum).abs() < tol,
                "{}: {sum} vs {want_sum}",
                prompt["name"]
            );
        }
    }
    eprintln!("SmolLM2 golden: largest per-token log-prob difference {max_diff:.2e}");
    assert!(max_diff < 2e-3, "largest per-token difference {max_diff}");

    // Candidate job titles: log P(title | prefix) by the chain rule.
    for case in golden["candidate_scoring"].as_array().unwrap() {
        let prefix = as_ids(&case["prefix_ids_without_bos"]);
        for r in case["results"].as_array().unwrap() {
            let cand = as_ids(&r["candidate_ids"]);
            let all: Vec<i64> = prefix.iter().chain(&cand).copied().collect();
            let lp: Vec<f32> = model
                .next_token_log_probs(ids_tensor(&all, &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let score: f64 = lp[prefix.len() - 1..].iter().map(|x| f64::from(*x)).sum();
            let want = r["sum_logprob"].as_f64().unwrap();
            assert!(
                (score - want).abs() < 5e-3,
                "{}: {score} vs {want}",
                r["candidate"]
            );
        }
    }
}
