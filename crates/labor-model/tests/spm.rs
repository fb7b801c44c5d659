//! SentencePiece-style GGUF tokenizers (`tokenizer.ggml.model = "llama"`): a hand-made
//! vocabulary whose tokens are computed by hand, and Llama-2's vocabulary written to a GGUF
//! file against the independent Hugging Face `tokenizer.json` of Llama-2 and the ids of
//! llama-tokenizer-js.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use labor_data::{Education, Ethnicity, Gender, Region, Taxonomy, Worker, YearRecord};
use labor_model::{Encoded, Error, GgufFile, GgufValue, TextTokenizer};
use labor_template::{Rendered, TemplateBuilder, TemplateKind};
use proptest::prelude::*;

use crate::shared_reference;
use crate::tokenize::ids;

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// GGUF value type code and payload (arrays hold one element type).
fn value(out: &mut Vec<u8>, v: &GgufValue, with_type: bool) {
    let (code, bytes): (u32, Vec<u8>) = match v {
        GgufValue::U32(x) => (4, x.to_le_bytes().to_vec()),
        GgufValue::I32(x) => (5, x.to_le_bytes().to_vec()),
        GgufValue::F32(x) => (6, x.to_le_bytes().to_vec()),
        GgufValue::Bool(x) => (7, vec![u8::from(*x)]),
        GgufValue::String(s) => {
            let mut b = Vec::new();
            string(&mut b, s);
            (8, b)
        }
        GgufValue::Array(a) => {
            let mut b = Vec::new();
            let first = a.first().expect("non-empty array");
            let mut probe = Vec::new();
            value(&mut probe, first, true);
            b.extend(&probe[..4]); // the element type
            b.extend((a.len() as u64).to_le_bytes());
            for x in a {
                value(&mut b, x, false);
            }
            (9, b)
        }
        other => panic!("unsupported in this writer: {other:?}"),
    };
    if with_type {
        out.extend(code.to_le_bytes());
    }
    out.extend(bytes);
}

/// A GGUF v3 file with metadata only.
fn gguf_bytes(meta: &[(&str, GgufValue)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend((meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        string(&mut b, k);
        value(&mut b, v, true);
    }
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b
}

fn open_gguf(name: &str, meta: &[(&str, GgufValue)]) -> GgufFile {
    let dir = std::env::temp_dir().join(format!("labor-spm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, gguf_bytes(meta)).unwrap();
    GgufFile::open(&path).unwrap()
}

fn strings(v: &[&str]) -> GgufValue {
    GgufValue::Array(v.iter().map(|s| GgufValue::String((*s).into())).collect())
}

fn f32s(v: &[f32]) -> GgufValue {
    GgufValue::Array(v.iter().map(|x| GgufValue::F32(*x)).collect())
}

fn i32s(v: &[i32]) -> GgufValue {
    GgufValue::Array(v.iter().map(|x| GgufValue::I32(*x)).collect())
}

// ---------------------------------------------------------------------------------------------
// A hand-made vocabulary.

/// Ids: 0 `<unk>`, 1 `<s>`, 2 `</s>`, 3 `<0xC3>`, 4 `<0xA9>` (the bytes of `é`), then the
/// pieces below with their scores. `bc` scores higher than `ab`, which scores higher than `▁a`,
/// `abc` and `▁ab`.
const TINY: [(&str, f32, i32); 15] = [
    ("<unk>", 0.0, 2),
    ("<s>", 0.0, 3),
    ("</s>", 0.0, 3),
    ("<0xC3>", 0.0, 6),
    ("<0xA9>", 0.0, 6),
    ("▁", -10.0, 1),    // 5
    ("a", -11.0, 1),    // 6
    ("b", -12.0, 1),    // 7
    ("c", -13.0, 1),    // 8
    ("bc", -1.0, 1),    // 9
    ("ab", -2.0, 1),    // 10
    ("▁a", -3.0, 1),    // 11
    ("abc", -4.0, 1),   // 12
    ("▁ab", -5.0, 1),   // 13
    ("<0x41>", 0.0, 6), // 14: a byte token whose text is not reachable by merges
];

/// GGUF metadata of a SentencePiece (`llama`) vocabulary with `<unk>`, `<s>`, `</s>` at 0, 1, 2.
fn spm_meta(tokens: &[&str], scores: &[f32], types: &[i32]) -> Vec<(&'static str, GgufValue)> {
    vec![
        ("general.architecture", GgufValue::String("llama".into())),
        ("tokenizer.ggml.model", GgufValue::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.scores", f32s(scores)),
        ("tokenizer.ggml.token_type", i32s(types)),
        ("tokenizer.ggml.bos_token_id", GgufValue::U32(1)),
        ("tokenizer.ggml.eos_token_id", GgufValue::U32(2)),
        ("tokenizer.ggml.unknown_token_id", GgufValue::U32(0)),
    ]
}

fn tiny_meta(extra: Vec<(&'static str, GgufValue)>) -> Vec<(&'static str, GgufValue)> {
    let tokens: Vec<&str> = TINY.iter().map(|t| t.0).collect();
    let scores: Vec<f32> = TINY.iter().map(|t| t.1).collect();
    let types: Vec<i32> = TINY.iter().map(|t| t.2).collect();
    let mut meta = spm_meta(&tokens, &scores, &types);
    meta.extend(extra);
    meta
}

fn tiny(extra: Vec<(&'static str, GgufValue)>, name: &str) -> TextTokenizer {
    TextTokenizer::from_gguf(&open_gguf(name, &tiny_meta(extra))).unwrap()
}

/// The highest-scoring merge first, computed by hand.
///
/// `"abc"` becomes `▁ a b c`. Candidates: `▁a` (-3), `ab` (-2), `bc` (-1): `bc` merges.
/// Then `▁a` (-3) against `abc` (-4): `▁a` merges; `▁abc` is no token, so `[▁a, bc]`. Greedy
/// longest match would give `[▁ab, c]`. Without the space prefix: `bc`, then `abc`.
#[test]
fn tiny_vocabulary_merges_by_score() {
    let tok = tiny(vec![], "tiny.gguf");
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.vocab_size(), 15);
    let e = tok.encode("abc").unwrap();
    // llama: BOS by default.
    assert_eq!(e.ids, vec![1, 11, 9]);
    assert_eq!(e.offsets, vec![(0, 0), (0, 1), (1, 3)]);
    let tok = tok.with_bos(false);
    // `ab c` is `▁ a b ▁ c`: `ab` (-2) merges, then `▁ab` (-5); the second `▁` is the text's
    // space, covering byte 2.
    assert_eq!(
        tok.encode("ab c").unwrap(),
        Encoded {
            ids: vec![13, 5, 8],
            offsets: vec![(0, 2), (2, 3), (3, 4)],
        }
    );
    // A leading space: `▁ ▁ a b c`. The prepended `▁` stays alone and covers no text.
    assert_eq!(
        tok.encode(" abc").unwrap(),
        Encoded {
            ids: vec![5, 11, 9],
            offsets: vec![(0, 0), (0, 2), (2, 4)],
        }
    );
    // Byte fallback: `é` is not a piece, its bytes are; `中`'s bytes are not: unknown.
    assert_eq!(
        tok.encode("é").unwrap(),
        Encoded {
            ids: vec![5, 3, 4],
            offsets: vec![(0, 0), (0, 2), (0, 2)],
        }
    );
    assert_eq!(tok.encode("a中").unwrap().ids, vec![11, 0]);
    // `A` is no piece and `<0x41>` is a byte token, so `A` falls back to it.
    assert_eq!(tok.encode("A").unwrap().ids, vec![5, 14]);
    // Special tokens match whole; the text after one gets its own prefix: `▁ a b` → `▁ ab`
    // (-2) → `▁ab` (-5).
    assert_eq!(tok.encode("<s>ab").unwrap().ids, vec![1, 13]);
    // Decoding: `▁` is a space, bytes fuse, the prepended space goes.
    for text in ["abc", "ab c", " abc", "é", "c  bé a", "A", "  "] {
        let ids = tok.encode(text).unwrap().ids;
        assert_eq!(tok.decode(&ids).unwrap(), text, "{text:?} {ids:?}");
    }
    // A literal `▁` in the text is a space once tokenized (as in SentencePiece).
    assert_eq!(tok.encode("a\u{2581}b").unwrap().ids, vec![11, 5, 7]);
    assert_eq!(tok.decode(&[11, 5, 7]).unwrap(), "a b");
    // A continuation has no space prefix: ` abc` inside a text is `▁a bc`.
    assert_eq!(tok.encode_continuation(" abc").unwrap(), vec![11, 9]);
    assert_eq!(tok.encode_continuation("abc").unwrap(), vec![12]);

    let no_prefix = tiny(
        vec![
            ("tokenizer.ggml.add_space_prefix", GgufValue::Bool(false)),
            ("tokenizer.ggml.add_bos_token", GgufValue::Bool(false)),
        ],
        "tiny-no-prefix.gguf",
    );
    assert_eq!(
        no_prefix.encode("abc").unwrap(),
        Encoded {
            ids: vec![12],
            offsets: vec![(0, 3)],
        }
    );
    assert_eq!(no_prefix.encode(" abc").unwrap().ids, vec![11, 9]);
    assert_eq!(no_prefix.decode(&[11, 9]).unwrap(), " abc");
    assert_eq!(no_prefix.encode_continuation("abc").unwrap(), vec![12]);
}

/// Missing or inconsistent SentencePiece metadata gives typed errors naming the key.
#[test]
fn spm_metadata_errors() {
    let without = |key: &str, name: &str| {
        let meta: Vec<_> = tiny_meta(vec![])
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        TextTokenizer::from_gguf(&open_gguf(name, &meta)).unwrap_err()
    };
    match without("tokenizer.ggml.scores", "no-scores.gguf") {
        Error::MissingMetadata { key, expected, .. } => {
            assert_eq!(key, "tokenizer.ggml.scores");
            assert_eq!(expected, "array of numbers");
        }
        other => panic!("{other:?}"),
    }
    match without("tokenizer.ggml.tokens", "no-tokens.gguf") {
        Error::MissingMetadata { key, .. } => assert_eq!(key, "tokenizer.ggml.tokens"),
        other => panic!("{other:?}"),
    }
    let short = TextTokenizer::from_gguf(&open_gguf(
        "short-scores.gguf",
        &tiny_meta(vec![])
            .into_iter()
            .map(|(k, v)| {
                if k == "tokenizer.ggml.scores" {
                    (k, f32s(&[0.0; 3]))
                } else {
                    (k, v)
                }
            })
            .collect::<Vec<_>>(),
    ))
    .unwrap_err();
    assert!(
        matches!(&short, Error::Tokenizer { detail } if detail.contains("3 scores for 15 tokens")),
        "{short}"
    );
    let mut other = tiny_meta(vec![]);
    other[1].1 = GgufValue::String("bert".into());
    let err = TextTokenizer::from_gguf(&open_gguf("bert.gguf", &other)).unwrap_err();
    assert!(
        matches!(&err, Error::Tokenizer { detail } if detail.contains("`bert`")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Llama-2.

struct Llama2 {
    /// Built from the GGUF written below.
    gguf: TextTokenizer,
    /// Hugging Face `tokenizer.json` of Llama-2 (`shared/reference/llama2-tokenizer`).
    hf: tokenizers::Tokenizer,
    golden: serde_json::Value,
    /// The same file through [`TextTokenizer::from_file`].
    json: TextTokenizer,
    /// Piece → (id, score, mergeable) for [`naive_spm`].
    pieces: HashMap<String, (u32, f32, bool)>,
}

/// llama.cpp's SPM algorithm written out naively: spaces to `▁`, one `▁` prepended (if
/// `prefix`), then
/// merge the adjacent pair whose concatenation is the mergeable piece with the highest score,
/// the leftmost of equals, until none is left; pieces outside the vocabulary become bytes.
fn naive_spm(pieces: &HashMap<String, (u32, f32, bool)>, text: &str, prefix: bool) -> Vec<u32> {
    if text.is_empty() {
        return vec![];
    }
    let normalized = format!(
        "{}{}",
        if prefix { "\u{2581}" } else { "" },
        text.replace(' ', "\u{2581}")
    );
    let mut symbols: Vec<String> = normalized.chars().map(String::from).collect();
    loop {
        let mut best: Option<(usize, f32)> = None;
        for i in 0..symbols.len().saturating_sub(1) {
            let cat = format!("{}{}", symbols[i], symbols[i + 1]);
            if let Some((_, score, true)) = pieces.get(&cat)
                && best.is_none_or(|(_, b)| *score > b)
            {
                best = Some((i, *score));
            }
        }
        let Some((i, _)) = best else { break };
        let right = symbols.remove(i + 1);
        symbols[i].push_str(&right);
    }
    symbols
        .iter()
        .flat_map(|s| match pieces.get(s) {
            Some((id, _, _)) => vec![*id],
            None => s
                .bytes()
                .map(|b| pieces[&format!("<0x{b:02X}>")].0)
                .collect(),
        })
        .collect()
}

/// Llama-2's token types and SentencePiece scores: `<unk>` unknown, `<s>` and `</s>` control,
/// ids 3..=258 the bytes (all score 0); the other pieces are normal with score `-(id - 259)`,
/// except the runs of 2 to 16 `▁`, which SentencePiece scores -1e9.
fn llama2_type_and_score(id: usize, piece: &str) -> (i32, f32) {
    match id {
        0 => (2, 0.0),
        1 | 2 => (3, 0.0),
        3..=258 => (6, 0.0),
        _ if piece.chars().count() > 1 && piece.chars().all(|c| c == '\u{2581}') => (1, -1e9),
        _ => (1, -((id - 259) as f32)),
    }
}

fn llama2_gguf_path(reference: &std::path::Path) -> (PathBuf, HashMap<String, (u32, f32, bool)>) {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("llama2-tokenizer/tokenizer.json")).unwrap(),
    )
    .unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut pieces = vec![String::new(); vocab.len()];
    for (piece, id) in vocab {
        pieces[id.as_u64().unwrap() as usize] = piece.clone();
    }
    assert_eq!(pieces.len(), 32000);
    let (types, scores): (Vec<i32>, Vec<f32>) = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| llama2_type_and_score(i, p))
        .unzip();
    let table = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), (i as u32, scores[i], types[i] == 1)))
        .collect();
    let tokens: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let mut meta = spm_meta(&tokens, &scores, &types);
    meta.extend([
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
        ("tokenizer.ggml.add_eos_token", GgufValue::Bool(false)),
    ]);
    let dir = std::env::temp_dir().join(format!("labor-spm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("llama2-vocab.gguf");
    std::fs::write(&path, gguf_bytes(&meta)).unwrap();
    (path, table)
}

/// Built once per test binary; `None` (with a message) without `shared/reference`.
fn llama2() -> Option<&'static Llama2> {
    let l = llama2_quiet();
    if l.is_none() {
        eprintln!("shared/reference not present: Llama-2 SentencePiece cross-check NOT RUN");
    }
    l
}

/// [`llama2`] without the message (for property tests, which call it for every case).
fn llama2_quiet() -> Option<&'static Llama2> {
    static CELL: OnceLock<Option<Llama2>> = OnceLock::new();
    CELL.get_or_init(|| {
        let reference = shared_reference()?;
        let (path, pieces) = llama2_gguf_path(&reference);
        let gguf = TextTokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        let hf =
            tokenizers::Tokenizer::from_file(reference.join("llama2-tokenizer/tokenizer.json"))
                .unwrap();
        let json =
            TextTokenizer::from_file(reference.join("llama2-tokenizer/tokenizer.json")).unwrap();
        let golden = serde_json::from_str(
            &std::fs::read_to_string(reference.join("llama-tokenizers-golden.json")).unwrap(),
        )
        .unwrap();
        Some(Llama2 {
            gguf,
            hf,
            golden,
            json,
            pieces,
        })
    })
    .as_ref()
}

/// Texts beyond the goldens: resume lines, titles, spacing, digits, non-ASCII.
const TEXTS: &[&str] = &[
    "Hello world",
    "hello",
    " Hello",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "double  space",
    "tab\there",
    "line\nbreak\n\nblank line\n",
    "\n",
    " ",
    "   ",
    "x",
    "1990",
    "1988 to 1989 (graduate degree): Secretaries and administrative assistants\n",
    "2003 (high school): Carpet, floor, and tile installers and finishers\n2004 (high school):",
    "<A Resume from the PSID Dataset>\nThe worker is a female black US worker.\n",
    "Chief executives; General and operations managers; Legislators",
    "Computer and information systems managers 2019-2023",
    "Registered nurses, 3 years; LPNs: 12 months",
    "Précis: café naïve résumé Zürich São Paulo Ødegård Ñandú",
    "東京 北京 서울 Привет мир ελληνικά עברית العربية हिन्दी",
    "emoji 🚀🙂👩\u{200d}💻 and flags 🇫🇷",
    "math ∑ ∫ ≤ ≥ ½ ¾ × ÷ → ∞",
    "digits 0123456789 and 3.14159 and 1,000,000 and -42",
    "The year 1999, then 2000, then 2024.",
    "ALL CAPS TITLE: SOFTWARE DEVELOPERS, APPLICATIONS",
    "mIxEd CaSe and under_scores and hy-phens and slash/es",
    "quotes \"double\" 'single' `back` «guillemets»",
    "\u{2581}literal lower one eighth block\u{2581}\u{2581}",
    "a\u{a0}non-breaking space",
    "           many spaces                      inside        ",
    "ends with newline\n",
    "x                                        y",
    "a \n  \n   b    \n     c",
    "1  2   3    4     5      6       7        8         9",
    "                 ",
    "code:\n    indented four\n        indented eight\n\tand a tab",
    "<s> and </s> and <unk> as text",
];

/// Every text: the GGUF-built tokenizer gives the ids of Llama-2's tokenizer.json (without and
/// with BOS), its offsets except for the prepended `▁`, and decodes back to the text.
fn check_text(l: &Llama2, text: &str) -> Result<(), TestCaseError> {
    let ours = l.gguf.clone().with_bos(false).encode(text).unwrap();
    let want = l.hf.encode(text, false).unwrap();
    prop_assert_eq!(&ours.ids, &want.get_ids().to_vec(), "{:?}", text);
    // llama.cpp's rule (leftmost of equal scores) gives the same ids; special tokens in the
    // text are not part of the naive version.
    if !text.contains("<s>") && !text.contains("<unk>") {
        prop_assert_eq!(&ours.ids, &naive_spm(&l.pieces, text, true), "{:?}", text);
        prop_assert_eq!(
            l.gguf.encode_continuation(text).unwrap(),
            naive_spm(&l.pieces, text, false),
            "{:?}",
            text
        );
    }
    // The tokenizer.json through `from_file`: the same ids, spans and continuations.
    prop_assert_eq!(&l.json.encode(text).unwrap(), &ours);
    prop_assert_eq!(
        l.json.encode_continuation(text).unwrap(),
        l.gguf.encode_continuation(text).unwrap()
    );
    let with_bos = l.gguf.encode(text).unwrap().ids;
    prop_assert_eq!(
        with_bos,
        l.hf.encode(text, true).unwrap().get_ids().to_vec()
    );
    for (i, (ours, hf)) in ours.offsets.iter().zip(want.get_offsets()).enumerate() {
        if ours != hf {
            // Only the prepended `▁` alone: empty, at the start of the next token.
            prop_assert_eq!(ours.0, ours.1, "{:?} token {}", text, i);
            prop_assert_eq!(ours.0, hf.0);
            prop_assert_eq!(ours.0, want.get_offsets()[i + 1].0);
            prop_assert_eq!(want.get_tokens()[i].as_str(), "\u{2581}");
        }
    }
    let decoded = l.gguf.decode(&ours.ids).unwrap();
    prop_assert_eq!(&decoded, &l.hf.decode(&ours.ids, false).unwrap());
    // Round trip, except for special tokens in the text (the text after one gets its own
    // `▁` prefix) and literal `▁`, which decodes as a space.
    if !text.contains("<s>") && !text.contains('\u{2581}') {
        prop_assert_eq!(&decoded, text);
    }
    Ok(())
}

/// The goldens of `llama-tokenizers-golden.json` (Python `tokenizers` and llama-tokenizer-js)
/// and the texts above: the same ids from the GGUF vocabulary and scores as from the ranked
/// merges of the Hugging Face file.
#[test]
fn llama2_gguf_tokenizer_matches_reference() {
    let Some(l) = llama2() else { return };
    assert_eq!(l.gguf.vocab_size(), 32000);
    assert_eq!(l.gguf.bos(), Some(1));
    let mut compared = 0;
    for p in l.golden["llama2"]["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let name = p["name"].as_str().unwrap();
        let without = l.gguf.clone().with_bos(false).encode(text).unwrap().ids;
        assert_eq!(without, ids(&p["ids_add_special_tokens_false"]), "{name}");
        let with = l.gguf.encode(text).unwrap().ids;
        assert_eq!(with, ids(&p["ids_add_special_tokens_true"]), "{name}");
        assert_eq!(with, ids(&p["llama_tokenizer_js_ids"]), "{name}");
        compared += 1;
    }
    assert_eq!(compared, 3);
    // "Hello world" with BOS.
    assert_eq!(
        l.gguf.encode("Hello world").unwrap().ids,
        ids(&l.golden["llama2"]["hello_world_ids_add_special_tokens_true"])
    );
    // The SmolLM2 golden prompts (one is 600 tokens of resume lines).
    let smollm2: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_reference().unwrap().join("smollm2/golden.json")).unwrap(),
    )
    .unwrap();
    let mut texts: Vec<String> = smollm2["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    texts.extend(TEXTS.iter().map(|t| (*t).to_string()));
    for text in &texts {
        check_text(l, text).unwrap();
    }
    eprintln!(
        "Llama-2 GGUF tokenizer == tokenizer.json on {} texts (+{compared} goldens)",
        texts.len()
    );
}

/// The merges derived from the scores are the Hugging Face file's, in the same order.
#[test]
fn llama2_merges_from_scores_equal_the_reference_merges() {
    let Some(l) = llama2() else { return };
    let dir = std::env::temp_dir().join(format!("labor-spm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("llama2-from-gguf.json");
    l.gguf.save(&saved).unwrap();
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared_reference()
                .unwrap()
                .join("llama2-tokenizer/tokenizer.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let merges = |v: &serde_json::Value| -> Vec<String> {
        v["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| match m {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => {
                    format!("{} {}", a[0].as_str().unwrap(), a[1].as_str().unwrap())
                }
                other => panic!("{other}"),
            })
            .collect()
    };
    let (ours, want) = (merges(&ours), merges(&reference));
    assert_eq!(want.len(), 61249);
    assert_eq!(ours.len(), want.len());
    let first_difference = ours.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first_difference, None);
}

/// Title spans in a rendered resume fall on token boundaries, and each title's tokens inside
/// the document are the tokens of the title encoded as a continuation (what the scorer
/// assumes).
#[test]
fn llama2_title_spans_are_token_boundaries() {
    let Some(l) = llama2() else { return };
    let csv = "code,title\n1,Secretaries and administrative assistants\n2,\"Carpet, floor, and tile installers and finishers\"\n3,Elementary and middle school teachers\n4,Cooks\n5,Café owners — Zürich\n";
    let tax = Arc::new(Taxonomy::from_csv_reader("t", csv.as_bytes()).unwrap());
    let mut w = Worker::new("w", "nlsy79");
    (w.gender, w.ethnicity, w.region) = (Gender::Female, Ethnicity::Black, Region::South);
    w.records = [
        (1988, "1"),
        (1989, "2"),
        (1990, "5"),
        (1991, "3"),
        (1992, "4"),
    ]
    .iter()
    .map(|(y, c)| YearRecord::new(*y, tax.id_of_code(c).unwrap(), Education::College))
    .collect();
    for kind in [TemplateKind::Resume, TemplateKind::Prompt] {
        let t = TemplateBuilder::new(Arc::clone(&tax), kind)
            .build()
            .unwrap();
        let Rendered::Shared(doc) = t.render(&w).unwrap() else {
            panic!("shared")
        };
        let enc = l.gguf.encode(&doc.text).unwrap();
        assert_eq!(enc.ids[0], 1);
        assert_eq!(enc.offsets[0], (0, 0));
        // Spans advance through the text without overlapping (the byte tokens of one character
        // share its span) and end with it.
        for w in enc.offsets[1..].windows(2) {
            let ((s0, e0), (s1, e1)) = (w[0], w[1]);
            assert!(s0 <= e0 && s1 <= e1);
            assert!(s1 >= e0 || (s0, e0) == (s1, e1), "{w:?}");
        }
        assert_eq!(enc.offsets.last().unwrap().1, doc.text.len());
        let boundary = |offset: usize| -> usize {
            let j = enc
                .offsets
                .iter()
                .position(|(s, e)| *s >= offset && e > s)
                .unwrap_or(enc.ids.len());
            assert!(enc.offsets[..j].iter().all(|(_, e)| *e <= offset));
            if j < enc.ids.len() {
                assert_eq!(enc.offsets[j].0, offset);
            }
            j
        };
        assert_eq!(doc.targets.len(), 5);
        for target in &doc.targets {
            let (a, b) = (
                boundary(target.continuation_start),
                boundary(target.continuation_end),
            );
            let continuation = doc.continuation(target);
            assert!(continuation.starts_with(' '), "{continuation:?}");
            assert_eq!(
                enc.ids[a..b],
                l.gguf.encode_continuation(continuation).unwrap()[..],
                "{continuation:?}"
            );
            // The first title token is `▁…` and starts at the space.
            assert_eq!(enc.offsets[a].0, target.continuation_start);
        }
    }
}

fn alphabet() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        "a", "e", "o", "t", "s", "r", "n", "C", "T", "k", "h", " ", " ", " ", "   ", "\n", "0",
        "1", "9", ":", "(", ")", ",", "é", "ü", "中", "🙂", "½", "\u{2581}", "<s>",
    ]);
    prop::collection::vec(chars, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random strings of letters, spaces, newlines, digits, punctuation and multi-byte
    /// characters: the GGUF-built tokenizer equals Llama-2's tokenizer.json. Without
    /// `shared/reference` it checks nothing (the other Llama-2 tests say so).
    #[test]
    fn llama2_gguf_equals_tokenizer_json_on_random_text(text in alphabet()) {
        if let Some(l) = llama2_quiet() {
            check_text(l, &text)?;
        }
    }
}
