//! The scorer against naive computations on a random model with a real (tiny) BPE tokenizer:
//! batched document scoring equals one prompt per target, and the trie distribution equals
//! scoring every title on its own.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};
use labor_data::{Preset, SynthBuilder, Taxonomy};
use labor_model::{Llama, LlamaConfig, Scorer, TextTokenizer};
use labor_template::{Document, Rendered, TemplateBuilder, TemplateKind};

use crate::fixtures;

fn tiny_bpe() -> TextTokenizer {
    TextTokenizer::from_file(fixtures().join("models/tiny-bpe/tokenizer.json")).unwrap()
}

fn model(device: &Device) -> Llama {
    LlamaConfig::new(48, 2, 4, 2, 96, 600)
        .with_max_seq_len(1024)
        .with_tie_embeddings(true)
        .init(device)
}

/// `log P(text[start..] | text[..start])` with one forward pass over `text` alone.
fn naive(model: &Llama, tok: &TextTokenizer, prompt: &str, continuation: &str) -> f64 {
    let device = Device::default();
    let p = tok.encode(prompt).unwrap().ids;
    let full = tok.encode(&format!("{prompt}{continuation}")).unwrap().ids;
    assert_eq!(&full[..p.len()], p.as_slice(), "prompt tokens are a prefix");
    let ids: Vec<i32> = full.iter().map(|i| *i as i32).collect();
    let t = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([1, ids.len()]);
    let lp: Vec<f32> = model
        .next_token_log_probs(t)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    (p.len()..full.len()).map(|j| f64::from(lp[j - 1])).sum()
}

pub(crate) fn documents(n: usize) -> (Arc<Taxonomy>, Vec<Document>) {
    let panel = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(n)
        .with_seed(3)
        .build()
        .unwrap()
        .generate()
        .panel;
    let tax = Arc::clone(panel.taxonomy());
    let template = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let docs = panel
        .workers()
        .iter()
        .map(|w| match template.render(w).unwrap() {
            Rendered::Shared(d) => d,
            Rendered::PerTarget(_) => unreachable!(),
        })
        .collect();
    (tax, docs)
}

#[test]
fn batched_scoring_equals_one_prompt_per_target() {
    let device = Device::default();
    let model = model(&device);
    let tok = tiny_bpe();
    let (_, docs) = documents(5);
    // A small budget forces several batches with padding of unequal documents.
    let scorer = Scorer::new(&model, &tok, device).with_batch_tokens(700);
    let got = scorer.score_documents(&docs).unwrap();
    let mut n = 0;
    for (doc, scores) in docs.iter().zip(&got) {
        assert_eq!(scores.len(), doc.targets.len());
        for (t, s) in doc.targets.iter().zip(scores) {
            let want = naive(&model, &tok, doc.prompt(t), doc.continuation(t));
            assert!(
                (s - want).abs() < 1e-4,
                "{} {}: {s} vs {want}",
                doc.worker_id,
                t.year
            );
            assert!(*s < 0.0);
            n += 1;
        }
    }
    assert!(n > 20, "{n} targets checked");
    // One document at a time gives the same numbers.
    let one = scorer.score_document(&docs[2]).unwrap();
    for (a, b) in one.iter().zip(&got[2]) {
        assert!((a - b).abs() < 1e-4);
    }
}

#[test]
fn token_log_probs_start_without_context_and_match_the_model() {
    let device = Device::default();
    let model = model(&device);
    let tok = tiny_bpe();
    let scorer = Scorer::new(&model, &tok, device);
    let text = "1990 (college): Cashiers\n1991 (college): Cooks\n";
    let (ids, lps) = scorer.token_log_probs(text).unwrap();
    assert_eq!(ids.len(), lps.len());
    assert_eq!(lps[0], None);
    let total: f64 = lps.iter().flatten().sum();
    let first = tok.decode(&ids[..1]).unwrap();
    let want = naive(&model, &tok, &first, &text[first.len()..]);
    assert!((total - want).abs() < 1e-4, "{total} vs {want}");
}

#[test]
fn trie_distribution_equals_per_title_scoring() {
    let device = Device::default();
    let model = model(&device);
    let tok = tiny_bpe();
    let (tax, docs) = documents(2);
    let template = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let conts: Vec<String> = tax
        .outcomes()
        .map(|(id, _)| template.continuation(id).unwrap())
        .collect();
    let scorer = Scorer::new(&model, &tok, device);
    // Three targets (a trie pass each, with the naive checks, is slow at opt-level 1).
    let mut doc = docs[0].clone();
    doc.targets.truncate(3);
    let doc = &doc;
    let dists = scorer.document_distributions(doc, &conts).unwrap();
    assert_eq!(dists.len(), doc.targets.len());
    let scores = scorer.score_document(doc).unwrap();
    for (k, (t, d)) in doc.targets.iter().zip(&dists).enumerate() {
        assert_eq!(d.log_probs.len(), tax.len());
        // The observed title's entry equals its score in the document.
        let obs = d.log_probs[usize::from(t.state_id.0)];
        assert!((obs - scores[k]).abs() < 1e-4, "{obs} vs {}", scores[k]);
        // Every title agrees with scoring it after its own prompt (a sample of them, to
        // keep the test fast).
        for id in (0..tax.len()).step_by(37) {
            let want = naive(&model, &tok, doc.prompt(t), &conts[id]);
            assert!((d.log_probs[id] - want).abs() < 1e-4, "title {id}");
        }
        // The mass on valid titles is a probability; renormalised, it sums to one.
        let mass = d.valid_mass();
        assert!(mass > 0.0 && mass <= 1.0 + 1e-9, "{mass}");
        let total: f64 = d.renormalized().iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
        let top = d.top_k(5);
        assert_eq!(top.len(), 5);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(d.entropy() >= 0.0 && d.entropy() <= (tax.len() as f64).ln() + 1e-9);
    }
    // The prompt-only entry point gives the same distribution.
    let t = &doc.targets[1];
    let alone = scorer.distribution(doc.prompt(t), &conts).unwrap();
    for (a, b) in alone.log_probs.iter().zip(&dists[1].log_probs) {
        assert!((a - b).abs() < 1e-4);
    }
}

#[test]
fn a_model_that_computes_nan_is_an_error_naming_the_text_and_token() {
    let device = Device::default();
    let mut model = model(&device);
    // A corrupted checkpoint: every embedding weight NaN (tied to the head, so logits too).
    let w = model.embed.weight.val();
    model.embed.weight = burn::module::Param::from_tensor(w.mul_scalar(f32::NAN));
    let tok = tiny_bpe();
    let scorer = Scorer::new(&model, &tok, device);
    match scorer.token_log_probs("Cashiers and then Secretaries") {
        Err(labor_model::Error::NonFiniteLogProb { text, token, value }) => {
            assert_eq!((text.as_str(), token), ("the text", 1));
            assert!(value.is_nan());
        }
        other => panic!("{other:?}"),
    }
    let (_, docs) = documents(3);
    match scorer.score_documents(&docs) {
        Err(labor_model::Error::NonFiniteLogProb { text, .. }) => assert!(
            docs.iter()
                .any(|d| text == format!("worker `{}`", d.worker_id)),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
}

/// Constrained decoding by hand: one forward pass over prompt and continuation, the full
/// next-token log-softmax at every continuation token, renormalised over the tokens that
/// continue some title with the same prefix.
fn naive_constrained(
    model: &Llama,
    tok: &TextTokenizer,
    prompt: &str,
    continuation: &str,
    titles: &[Vec<u32>],
) -> f64 {
    let device = Device::default();
    let p = tok.encode(prompt).unwrap().ids.len();
    let full = tok.encode(&format!("{prompt}{continuation}")).unwrap().ids;
    let ids: Vec<i32> = full.iter().map(|i| *i as i32).collect();
    let t = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([1, ids.len()]);
    let logits = model.forward(t);
    let vocab = logits.dims()[2];
    let lsm: Vec<f32> = burn::tensor::activation::log_softmax(logits, 2)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let mut total = 0.0;
    for j in p..full.len() {
        let prefix = &full[p..j];
        let mut allowed: Vec<u32> = titles
            .iter()
            .filter(|c| c.len() > prefix.len() && c.starts_with(prefix))
            .map(|c| c[prefix.len()])
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        assert!(allowed.contains(&full[j]));
        let row = &lsm[(j - 1) * vocab..j * vocab];
        let z: f64 = allowed
            .iter()
            .map(|a| f64::from(row[*a as usize]).exp())
            .sum();
        total += f64::from(row[full[j] as usize]) - z.ln();
    }
    total
}

#[test]
fn constrained_scoring_renormalises_each_token_over_the_titles_that_continue() {
    let device = Device::default();
    let model = model(&device);
    let tok = tiny_bpe();
    let (tax, docs) = documents(4);
    let template = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let conts: Vec<String> = tax
        .outcomes()
        .map(|(id, _)| template.continuation(id).unwrap())
        .collect();
    let titles: Vec<Vec<u32>> = conts
        .iter()
        .map(|c| tok.encode_continuation(c).unwrap())
        .collect();
    let free = Scorer::new(&model, &tok, device.clone());
    let scorer = Scorer::new(&model, &tok, device)
        .with_batch_tokens(700)
        .with_constrained_titles(&conts)
        .unwrap();
    assert!(scorer.is_constrained() && !free.is_constrained());
    let got = scorer.score_documents(&docs).unwrap();
    let loose = free.score_documents(&docs).unwrap();
    for (doc, (scores, loose)) in docs.iter().zip(got.iter().zip(&loose)) {
        for (t, (s, l)) in doc.targets.iter().zip(scores.iter().zip(loose)).take(4) {
            let want = naive_constrained(&model, &tok, doc.prompt(t), doc.continuation(t), &titles);
            assert!((s - want).abs() < 1e-4, "{s} vs {want}");
            // Renormalising never lowers a title's probability.
            assert!(*s >= l - 1e-5 && *s <= 1e-9, "{s} vs free {l}");
        }
    }
    // What constraining added, token by token, is the free model's mass off the titles.
    let detailed = scorer.score_titles(&docs).unwrap();
    for (d, l) in detailed.iter().zip(&loose) {
        for (t, l) in d.iter().zip(l) {
            assert!(t.step_log_mass.iter().all(|m| *m <= 1e-6));
            let free: f64 = t.log_prob + t.step_log_mass.iter().sum::<f64>();
            assert!((free - l).abs() < 1e-4, "{free} vs {l}");
        }
    }
    assert!(
        free.score_titles(&docs).unwrap()[0][0]
            .step_log_mass
            .is_empty()
    );
    // Its distribution over the titles sums to one, and the observed title's entry is the
    // constrained score.
    let mut doc = docs[0].clone();
    doc.targets.truncate(2);
    let dists = scorer.document_distributions(&doc, &conts).unwrap();
    for (k, d) in dists.iter().enumerate() {
        assert!((d.valid_mass() - 1.0).abs() < 1e-5, "{}", d.valid_mass());
        let obs = d.log_probs[usize::from(doc.targets[k].state_id.0)];
        assert!((obs - got[0][k]).abs() < 1e-4, "{obs} vs {}", got[0][k]);
    }
}

#[test]
fn constrained_scoring_refuses_targets_and_title_sets_it_cannot_decode() {
    let device = Device::default();
    let model = model(&device);
    let tok = tiny_bpe();
    let (_, docs) = documents(1);
    // The first target's title is missing from the set.
    let first = docs[0].continuation(&docs[0].targets[0]).to_string();
    let others = vec![" Someone else\n".to_string(), " Nobody\n".to_string()];
    let scorer = Scorer::new(&model, &tok, device.clone())
        .with_constrained_titles(&others)
        .unwrap();
    match scorer.score_documents(&docs) {
        Err(labor_model::Error::NotATitle {
            worker_id,
            offset,
            titles,
        }) => {
            assert_eq!(worker_id, docs[0].worker_id);
            assert_eq!(offset, docs[0].targets[0].continuation_start);
            assert_eq!(titles, 2);
        }
        other => panic!("{other:?}"),
    }
    // A title that is a prefix of another (no terminator), and no titles at all.
    for bad in [
        vec![first.trim_end().to_string(), first.clone()],
        vec![String::new(), first.clone()],
        vec![],
    ] {
        let err = Scorer::new(&model, &tok, device.clone())
            .with_constrained_titles(&bad)
            .unwrap_err();
        assert!(
            matches!(err, labor_model::Error::InvalidOption { .. }),
            "{err}"
        );
    }
}

/// Prediction and scoring sharded over two devices (two CPU devices here; GPUs the same way)
/// give exactly the one-device predictions: workers are predicted alone, and texts are sharded
/// in whole scoring chunks, so every forward pass sees the batches one device would.
#[test]
fn sharded_prediction_and_scoring_equal_one_device() {
    use labor_model::{
        ShardedScoring, load_predictor, predict_panel, predict_panel_sharded, save_hf, score_texts,
        score_texts_sharded,
    };
    let device = Device::default();
    let config = LlamaConfig::new(48, 2, 4, 2, 96, 600)
        .with_max_seq_len(1024)
        .with_tie_embeddings(true);
    let dir = std::env::temp_dir().join(format!("labor-sharded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    save_hf(&config.init(&device), &config, &dir).unwrap();
    tiny_bpe().save(dir.join("tokenizer.json")).unwrap();
    let panel = SynthBuilder::new(Preset::Nlsy79)
        .with_workers(70)
        .with_seed(4)
        .build()
        .unwrap()
        .generate()
        .panel;
    let tax = Arc::clone(panel.taxonomy());
    let two = [Device::flex(), Device::flex()];
    let rows = |p: &labor_data::Predictions| -> Vec<(String, i32, u64)> {
        p.rows()
            .iter()
            .map(|r| (r.worker_id.clone(), r.year, r.log_prob.to_bits()))
            .collect()
    };

    let loaded = load_predictor(&dir, &tax, &device).unwrap();
    let one = predict_panel(
        loaded.predictor(&tax, true).unwrap().as_ref(),
        &panel,
        false,
        |_| {},
    )
    .unwrap();
    let sharded = predict_panel_sharded(&dir, &panel, &two, true, false, &|_| {}).unwrap();
    assert_eq!(one.len(), panel.n_worker_years());
    assert_eq!(rows(&sharded), rows(&one));

    let template = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Resume)
        .build()
        .unwrap();
    let docs = template.render_panel(&panel).unwrap();
    let titles = template.continuations(&tax).unwrap();
    let (_, model, tok) = labor_model::load_llm(&dir, &device).unwrap();
    let scorer = Scorer::new(&model, &tok, device.clone())
        .with_batch_tokens(512)
        .with_constrained_titles(&titles)
        .unwrap();
    let one = score_texts(&scorer, &docs, "m", &tax, None, |_, _| {}).unwrap();
    let how = ShardedScoring {
        batch_tokens: 512,
        constrained_to: titles,
        distribution_over: None,
    };
    let sharded = score_texts_sharded(&dir, &docs, "m", &tax, &two, &how, &|_, _| {}).unwrap();
    assert_eq!(rows(&sharded.predictions), rows(&one.predictions));
    assert_eq!(sharded.tokens, one.tokens);
    let (a, b) = (one.free.unwrap(), sharded.free.unwrap());
    assert_eq!(
        (a.first_token.1, a.later_tokens.1),
        (b.first_token.1, b.later_tokens.1)
    );
    assert!((a.log_likelihood - b.log_likelihood).abs() < 1e-9 * a.log_likelihood.abs());
    // No text gives no prediction, and no device is an error, not an empty result.
    let none = score_texts_sharded(&dir, &[], "m", &tax, &two, &how, &|_, _| {}).unwrap();
    assert!(none.predictions.is_empty());
    assert!(predict_panel_sharded(&dir, &panel, &[], false, false, &|_| {}).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
