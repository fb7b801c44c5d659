use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, Tolerance};
use labor_model::{KvCache, LlamaConfig};

fn tiny(kv_heads: usize, tied: bool) -> LlamaConfig {
    LlamaConfig::new(32, 2, 4, kv_heads, 48, 50)
        .with_max_seq_len(64)
        .with_tie_embeddings(tied)
}

fn tokens(rows: &[[i32; 6]], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i32> = rows.iter().flatten().copied().collect();
    Tensor::<1, Int>::from_ints(flat.as_slice(), device).reshape([rows.len(), 6])
}

#[test]
fn logits_have_the_documented_shape_and_log_probs_normalise() {
    let device = Device::default();
    let model = tiny(2, true).init(&device);
    let t = tokens(&[[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], &device);
    let logits = model.forward(t.clone());
    assert_eq!(logits.dims(), [2, 6, 50]);
    let lp = model.next_token_log_probs(t);
    assert_eq!(lp.dims(), [2, 5]);
    let v: Vec<f32> = lp.into_data().try_to_vec::<f32>().unwrap();
    assert!(v.iter().all(|x| x.is_finite() && *x <= 0.0));
    let probs = burn::tensor::activation::softmax(logits, 2).sum_dim(2);
    probs.into_data().assert_approx_eq::<f32>(
        &Tensor::<3>::ones([2, 6, 1], &device).into_data(),
        Tolerance::absolute(1e-5),
    );
}

/// Changing a later token never changes the logits of earlier positions.
#[test]
fn attention_is_causal() {
    let device = Device::default();
    let model = tiny(2, false).init(&device);
    let a = model
        .forward(tokens(&[[1, 2, 3, 4, 5, 6]], &device))
        .narrow(1, 0, 3);
    let b = model
        .forward(tokens(&[[1, 2, 3, 40, 41, 42]], &device))
        .narrow(1, 0, 3);
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-6));
}

/// Decoding with the key-value cache, a chunk at a time, gives the logits of one full pass.
#[test]
fn kv_cache_matches_full_forward() {
    let device = Device::default();
    for kv in [1, 2, 4] {
        let model = tiny(kv, kv == 2).init(&device);
        let t = tokens(&[[3, 1, 4, 1, 5, 9]], &device);
        let full = model.forward(t.clone());
        let mut cache = KvCache::new();
        let first = model.forward_with_cache(t.clone().narrow(1, 0, 4), &mut cache);
        let second = model.forward_with_cache(t.clone().narrow(1, 4, 1), &mut cache);
        let third = model.forward_with_cache(t.narrow(1, 5, 1), &mut cache);
        assert_eq!(cache.len(), 6);
        let stepped = Tensor::cat(vec![first, second, third], 1);
        full.into_data()
            .assert_approx_eq::<f32>(&stepped.into_data(), Tolerance::absolute(1e-4));
    }
}

/// Grouped-query attention equals multi-head attention with each key/value head repeated for
/// its group of query heads.
#[test]
fn gqa_equals_mha_with_repeated_kv_heads() {
    let device = Device::default();
    let gqa = tiny(2, true).init(&device);
    let mut mha = tiny(4, true).init(&device);
    // Copy every weight, repeating the key/value projections' output rows per group.
    let hd = 8;
    let repeat_rows = |w: Tensor<2>| {
        // burn's Linear weight is [d_in, d_out]: heads are along the output (column) axis.
        let [d_in, _] = w.dims();
        w.reshape([d_in, 2, 1, hd])
            .expand([d_in, 2, 2, hd])
            .reshape([d_in, 4 * hd])
    };
    mha.embed = gqa.embed.clone();
    mha.norm = gqa.norm.clone();
    for (m, g) in mha.layers.iter_mut().zip(&gqa.layers) {
        m.attn_norm = g.attn_norm.clone();
        m.ffn_norm = g.ffn_norm.clone();
        m.ffn = g.ffn.clone();
        m.attn.wq = g.attn.wq.clone();
        m.attn.wo = g.attn.wo.clone();
        m.attn.wk.weight = Param::from_tensor(repeat_rows(g.attn.wk.weight.val()));
        m.attn.wv.weight = Param::from_tensor(repeat_rows(g.attn.wv.weight.val()));
    }
    let t = tokens(&[[5, 4, 3, 2, 1, 0]], &device);
    gqa.forward(t.clone())
        .into_data()
        .assert_approx_eq::<f32>(&mha.forward(t).into_data(), Tolerance::absolute(1e-5));
}

/// With tied embeddings the head is the transposed embedding matrix.
#[test]
fn tied_head_uses_the_embeddings() {
    let device = Device::default();
    let model = tiny(2, true).init(&device);
    assert!(model.lm_head.is_none());
    let untied = tiny(2, false).init(&device);
    assert!(untied.lm_head.is_some());
}
