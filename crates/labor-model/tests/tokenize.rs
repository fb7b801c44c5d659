//! Tokenizers against ids from Hugging Face `tokenizers`, and exact title scoring.

use std::sync::Arc;

use burn::tensor::Device;
use labor_data::{Education, Ethnicity, Gender, Region, Taxonomy, Worker, YearRecord};
use labor_model::{Error, GgufFile, Scorer, TextTokenizer, load_gguf};
use labor_template::{Rendered, TemplateBuilder, TemplateKind};

use crate::gguf::{smollm2_gguf, smollm2_golden};
use crate::shared_reference;

pub(crate) fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The tokenizer built from the SmolLM2 GGUF's metadata gives transformers' ids on every golden
/// prompt, including digits and non-ASCII text, and equals the reference tokenizer.json.
#[test]
fn smollm2_tokenizer_from_gguf_metadata() {
    let Some((path, golden)) = smollm2_golden() else {
        return;
    };
    let from_gguf = TextTokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let reference = shared_reference().unwrap();
    let from_json = TextTokenizer::from_file(reference.join("smollm2/tokenizer.json")).unwrap();
    assert_eq!(from_gguf.vocab_size(), 49152);
    assert_eq!(from_gguf.bos(), Some(1));
    for prompt in golden["prompts"].as_array().unwrap() {
        let text = prompt["text"].as_str().unwrap();
        let want = ids(&prompt["ids_without_bos"]);
        let got = from_gguf.encode(text).unwrap();
        assert_eq!(got.ids, want, "{}", prompt["name"]);
        assert_eq!(
            from_json.encode(text).unwrap().ids,
            want,
            "{}",
            prompt["name"]
        );
        assert_eq!(
            from_gguf.clone().with_bos(true).encode(text).unwrap().ids,
            ids(&prompt["ids_with_bos"])
        );
        assert_eq!(from_gguf.decode(&got.ids).unwrap(), text);
        // Offsets advance through the text (a character split across byte-level tokens gives
        // each of them the character's span) and end with it.
        let mut start = 0;
        for (s, e) in &got.offsets {
            assert!(*s >= start && e > s, "{:?}", (s, e));
            start = *s;
        }
        assert_eq!(got.offsets.last().unwrap().1, text.len());
    }
}

/// The Llama-2, Mistral and Llama-3 tokenizer.json files give the ids Python `tokenizers` gave.
#[test]
fn llama_family_tokenizer_json() {
    let Some(reference) = shared_reference() else {
        eprintln!("shared/reference not present: cross-check not run");
        return;
    };
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("llama-tokenizers-golden.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for key in ["llama2", "mistral_from_lenml_llama2_package", "llama3"] {
        let g = &golden[key];
        let tok = TextTokenizer::from_file(reference.join(g["file"].as_str().unwrap())).unwrap();
        for p in g["prompts"].as_array().unwrap() {
            let text = p["text"].as_str().unwrap();
            let want = p
                .get("ids_add_special_tokens_false")
                .or_else(|| p.get("ids_without_special_tokens"))
                .map(ids);
            if let Some(want) = want {
                assert_eq!(tok.encode(text).unwrap().ids, want, "{key} {}", p["name"]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "{checked}");
}

/// Scoring a rendered resume: one forward pass, each title's log-probability equals the
/// transformers golden for the same prefix and candidate.
#[test]
fn scorer_reproduces_candidate_scores() {
    let Some((path, golden)) = smollm2_golden() else {
        return;
    };
    let device = Device::default();
    let (_, model) = load_gguf(&path, &device).unwrap();
    let tok = TextTokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    // The talk's resume with a fourth entry, rendered by labor-template.
    let csv = "code,title\n1,Secretaries and administrative assistants\n2,\"Carpet, floor, and tile installers and finishers\"\n3,Elementary and middle school teachers\n4,Cooks\n";
    let tax = Arc::new(Taxonomy::from_csv_reader("talk", csv.as_bytes()).unwrap());
    let mut w = Worker::new("n79", "nlsy79");
    (w.gender, w.ethnicity, w.region) = (Gender::Male, Ethnicity::White, Region::NorthCentral);
    let g = Education::GraduateDegree;
    w.records = [
        (1988, "1"),
        (1989, "2"),
        (1990, "3"),
        (1991, "3"),
        (1992, "4"),
    ]
    .iter()
    .map(|(y, c)| YearRecord::new(*y, tax.id_of_code(c).unwrap(), g))
    .collect();
    let template = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Resume)
        .build()
        .unwrap();
    let Rendered::Shared(doc) = template.render(&w).unwrap() else {
        panic!("shared")
    };
    let scores = Scorer::new(&model, &tok, device)
        .score_document(&doc)
        .unwrap();
    assert_eq!(scores.len(), 5);
    assert!(scores.iter().all(|s| s.is_finite() && *s < 0.0));
    // Target 3 (1991, teachers) has exactly the golden prefix; the golden candidate has no
    // terminator, so compare the title tokens only: score minus the newline token.
    let case = &golden["candidate_scoring"][0];
    assert!(doc.prompt(&doc.targets[3]) == case["prefix"].as_str().unwrap());
    let r = &case["results"][0];
    assert_eq!(r["candidate"], " Elementary and middle school teachers");
    let enc = tok.encode(&doc.text).unwrap();
    let newline = enc
        .offsets
        .iter()
        .position(|(s, _)| *s == doc.targets[3].continuation_end - 1)
        .unwrap();
    let title_only = {
        let ids: Vec<u32> = enc.ids[..newline].to_vec();
        let prefix_len = enc
            .offsets
            .iter()
            .position(|(s, _)| *s == doc.targets[3].continuation_start)
            .unwrap();
        let t = burn::tensor::Tensor::<1, burn::tensor::Int>::from_ints(
            ids.iter().map(|x| *x as i32).collect::<Vec<_>>().as_slice(),
            &Device::default(),
        )
        .reshape([1, ids.len()]);
        let lp: Vec<f32> = model
            .next_token_log_probs(t)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        lp[prefix_len - 1..]
            .iter()
            .map(|x| f64::from(*x))
            .sum::<f64>()
    };
    let want = r["sum_logprob"].as_f64().unwrap();
    assert!((title_only - want).abs() < 5e-3, "{title_only} vs {want}");
    // The full continuation adds the terminator's log-probability: a smaller number.
    assert!(scores[3] < title_only);

    // A span that cuts a token is refused.
    let mut bad = doc.clone();
    bad.targets[3].continuation_start += 3;
    assert!(matches!(
        Scorer::new(&model, &tok, Device::default()).score_document(&bad),
        Err(Error::TokenBoundary { .. })
    ));
}

/// The distribution over every title of a small taxonomy from one shared prompt: the observed
/// title's entry equals the document score, and the entries are probabilities of disjoint
/// continuations (they sum to at most 1).
#[test]
fn distribution_over_titles_from_a_shared_prompt() {
    let (Some(path), Some(_)) = (smollm2_gguf(), shared_reference()) else {
        eprintln!("SmolLM2 GGUF or shared/reference not present: run scripts/fetch-smollm2");
        return;
    };
    let device = Device::default();
    let (_, model) = load_gguf(&path, &device).unwrap();
    let tok = TextTokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let csv = "code,title\n1,Cooks\n2,Waiters and waitresses\n3,Registered nurses\n4,Cashiers\n";
    let tax = Arc::new(Taxonomy::from_csv_reader("small", csv.as_bytes()).unwrap());
    let mut w = Worker::new("p", "psid");
    w.records = [(1990, "1"), (1991, "1"), (1992, "2")]
        .iter()
        .map(|(y, c)| YearRecord::new(*y, tax.id_of_code(c).unwrap(), Education::College))
        .collect();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let Rendered::Shared(doc) = t.render(&w).unwrap() else {
        panic!("shared")
    };
    let scorer = Scorer::new(&model, &tok, device);
    let doc_scores = scorer.score_document(&doc).unwrap();
    let target = &doc.targets[2];
    let titles: Vec<String> = tax
        .outcomes()
        .map(|(_, o)| format!(" {}\n", o.title))
        .collect();
    let dist = scorer
        .continuation_log_probs(doc.prompt(target), &titles)
        .unwrap();
    assert_eq!(dist.len(), tax.len());
    let observed = target.state_id.index();
    assert!(
        (dist[observed] - doc_scores[2]).abs() < 2e-3,
        "{} vs {}",
        dist[observed],
        doc_scores[2]
    );
    let mass: f64 = dist.iter().map(|l| l.exp()).sum();
    assert!(mass > 0.0 && mass <= 1.0, "{mass}");
}

/// A `tokenizer.json` the `tokenizers` crate panics on (a control character inside a string of
/// its decoder: its deserializer calls `expect`) is an error naming the file and the place
/// (found by `labor-fuzz`, target tokenizer-json).
#[test]
fn a_malformed_tokenizer_json_is_an_error_not_a_panic() {
    let good =
        std::fs::read_to_string(crate::fixtures().join("models/tiny-bpe/tokenizer.json")).unwrap();
    let at = good.find("\"decoder\"").unwrap();
    let name = at + good[at..].find("\"ByteLevel\"").unwrap();
    let mut bad = good.clone();
    bad.insert(name + 2, '\u{1}');
    let dir = std::env::temp_dir().join(format!("labor-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, &bad).unwrap();
    let err = TextTokenizer::from_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Tokenizer { detail } if detail.starts_with(&path.display().to_string())
            && detail.contains("control character")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
