//! Behavioural tests for the `tokenizer` crate. They train on a small generated corpus so the
//! whole file runs in well under a few seconds.

use std::path::Path;
use std::sync::OnceLock;

use tokenizer::{Special, Tokenizer, TokenizerError, TrainConfig, MIN_VOCAB_SIZE};

const VOCAB: usize = 400;

/// A few hundred English-like sentences (plus some chat markup) built from loops.
fn corpus() -> Vec<String> {
    let subjects = ["the cat", "a dog", "my friend", "the teacher", "our neighbour", "this model"];
    let verbs = ["sees", "likes", "follows", "remembers", "answers", "writes about"];
    let objects = ["the garden", "a small house", "the old river", "every question", "the city", "its shadow"];
    let tails = [".", " today.", " again!", " in the morning.", ", and then it rains.", "?"];
    let mut out = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for (j, v) in verbs.iter().enumerate() {
            for (k, o) in objects.iter().enumerate() {
                let t = tails[(i + j + k) % tails.len()];
                out.push(format!("{s} {v} {o}{t} It was {} years ago.\n", 10 * i + j + k));
            }
        }
    }
    for i in 0..40 {
        out.push(format!("<|user|>what is {i} plus {i}?<|end|><|assistant|><|think|>add them<|/think|><|answer|>{}<|/answer|><|end|>", 2 * i));
    }
    out
}

fn cfg(vocab_size: usize) -> TrainConfig {
    TrainConfig { vocab_size, ..TrainConfig::default() }
}

fn trained() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::train(corpus(), &cfg(VOCAB)).expect("training succeeds"))
}

fn samples() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "hello world",
        "The cat sees the garden today.",
        "Ilona Varsk, né à Zürich — 1972 ✓",
        "日本語のテキスト 🦀🚀 emoji 👩‍👩‍👧",
        "  leading spaces",
        "trailing spaces   ",
        "\n\nnewlines\n\n",
        "\ttabs\tand\r\nCRLF\r\n",
        "    \n   \n",
        " ",
        "\u{0}\u{1}\u{7f} control chars",
        "Ġ Ċ literal byte-level symbols",
        "<|user|>hi<|end|>",
        "<|user partial <| |> <|USER|> <||>",
        "<|eos|><|bos|><|pad|>",
        "it's 'll 've 're don't",
        "x = [1, 2, 3]; // code {}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Pseudo-random strings over a mix of ASCII, Latin-1, CJK and astral-plane characters.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let pool: Vec<char> = " \n\tae<|>!é€中😀\u{0}\u{300}zZ09".chars().collect();
    for len in [1usize, 7, 31, 200] {
        let mut s = String::new();
        for _ in 0..len {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            s.push(pool[(state >> 33) as usize % pool.len()]);
        }
        v.push(s);
    }
    v
}

#[test]
fn special_ids_are_exactly_0_to_14() {
    let tok = trained();
    assert_eq!(Special::ALL.len(), 15);
    let expected = [
        "<|pad|>",
        "<|bos|>",
        "<|eos|>",
        "<|system|>",
        "<|user|>",
        "<|assistant|>",
        "<|end|>",
        "<|think|>",
        "<|/think|>",
        "<|tool_call|>",
        "<|/tool_call|>",
        "<|tool_result|>",
        "<|/tool_result|>",
        "<|answer|>",
        "<|/answer|>",
    ];
    for (i, s) in Special::ALL.iter().enumerate() {
        assert_eq!(s.text(), expected[i]);
        assert_eq!(s.id(), i as u32);
        assert_eq!(tok.token_to_id(s.text()), Some(i as u32), "{s}");
        assert_eq!(tok.id_to_token(i as u32).as_deref(), Some(s.text()));
        assert_eq!(tok.encode(s.text()), vec![s.id()], "{s} encodes to one id");
        assert_eq!(tok.decode(&[s.id()]), s.text());
    }
    assert_eq!(Special::Eos.id(), 2);
    assert_eq!(Special::AnswerEnd.id(), 14);
}

#[test]
fn special_text_inside_other_text_is_one_id() {
    let tok = trained();
    let ids = tok.encode("<|user|>hi<|end|>");
    assert!(ids.len() >= 3, "{ids:?}");
    assert_eq!(ids.first(), Some(&4));
    assert_eq!(ids.last(), Some(&6));
    assert!(ids[1..ids.len() - 1].iter().all(|&id| id >= Special::COUNT as u32), "{ids:?}");
    assert_eq!(tok.decode(&ids), "<|user|>hi<|end|>");

    let ids = tok.encode("word<|think|>more words<|/think|>x");
    assert_eq!(ids.iter().filter(|&&id| id == Special::Think.id()).count(), 1);
    assert_eq!(ids.iter().filter(|&&id| id == Special::ThinkEnd.id()).count(), 1);
    assert_eq!(tok.encode("<|eos|><|bos|>"), vec![2, 1]);
    // Not specials: no special id may appear.
    for s in ["<|USER|>", "<|user", "user|>", "< |user|>"] {
        assert!(tok.encode(s).iter().all(|&id| id >= Special::COUNT as u32), "{s}");
    }
}

#[test]
fn special_text_is_not_learned_as_merges() {
    // The corpus is full of chat markup; because specials are cut out before counting pairs,
    // no learned token contains the markup's characters.
    let tok = trained();
    for id in Special::COUNT as u32..tok.vocab_size() as u32 {
        let t = tok.id_to_token(id).expect("dense ids");
        assert!(!(t.contains('|') && t.chars().count() > 1), "learned {t:?}");
    }
}

#[test]
fn roundtrip_ascii_unicode_whitespace() {
    let tok = trained();
    for s in samples() {
        let ids = tok.encode(&s);
        assert_eq!(tok.decode(&ids), s, "ids {ids:?}");
        assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| tok.token_bytes(id).expect("known id")).collect();
        assert_eq!(bytes, s.as_bytes(), "token_bytes of {s:?}");
    }
}

#[test]
fn encode_adds_no_bos_eos() {
    let tok = trained();
    let ids = tok.encode("hello");
    assert!(!ids.contains(&Special::Bos.id()) && !ids.contains(&Special::Eos.id()));
    assert!(tok.encode("").is_empty());
}

#[test]
fn encode_batch_matches_encode() {
    let tok = trained();
    let s = samples();
    let batch = tok.encode_batch(&s);
    for (text, ids) in s.iter().zip(&batch) {
        assert_eq!(&tok.encode(text), ids);
    }
}

#[test]
fn decode_skips_unknown_ids() {
    let tok = trained();
    let mut ids = tok.encode("abc");
    ids.push(u32::MAX);
    ids.push(tok.vocab_size() as u32);
    assert_eq!(tok.decode(&ids), "abc");
    assert_eq!(tok.id_to_token(u32::MAX), None);
    assert_eq!(tok.token_bytes(u32::MAX), None);
}

#[test]
fn trained_vocab_has_requested_size_and_compresses() {
    let tok = trained();
    assert_eq!(tok.vocab_size(), VOCAB);
    for id in 0..VOCAB as u32 {
        assert!(tok.id_to_token(id).is_some(), "id {id} missing: ids must be dense");
    }
    let text: String = corpus().concat();
    let n_tokens = tok.encode(&text).len();
    let ratio = n_tokens as f64 / text.len() as f64;
    assert!(ratio < 0.6, "tokens/byte = {ratio:.3}");
}

#[test]
fn smallest_valid_vocab_works() {
    let tok = Tokenizer::train(corpus(), &cfg(MIN_VOCAB_SIZE + 1)).expect("train");
    assert_eq!(tok.vocab_size(), MIN_VOCAB_SIZE + 1);
    assert_eq!(tok.decode(&tok.encode("Zürich ✓")), "Zürich ✓");
}

#[test]
fn tiny_corpus_still_encodes_everything() {
    // Far too little text to reach the target: the vocab stays small but complete.
    let tok = Tokenizer::train(["ab ab"], &cfg(512)).expect("train");
    assert!(tok.vocab_size() >= MIN_VOCAB_SIZE && tok.vocab_size() < 512);
    let s = "Ilona Varsk, né à Zürich — 1972 ✓\n";
    assert_eq!(tok.decode(&tok.encode(s)), s);
    let empty: [&str; 0] = [];
    let tok = Tokenizer::train(empty, &cfg(512)).expect("train on nothing");
    assert_eq!(tok.vocab_size(), MIN_VOCAB_SIZE);
}

#[test]
fn training_is_deterministic() {
    let a = Tokenizer::train(corpus(), &cfg(VOCAB)).expect("train");
    let b = Tokenizer::train(corpus().into_iter().rev().collect::<Vec<_>>(), &cfg(VOCAB)).expect("train");
    let ja = a.to_json_string().expect("json");
    assert_eq!(ja, b.to_json_string().expect("json"), "same texts (any order) => same JSON");
    assert_eq!(ja, trained().to_json_string().expect("json"));
}

#[test]
fn bad_vocab_size_is_rejected() {
    for v in [0, 100, 256, MIN_VOCAB_SIZE] {
        let err = Tokenizer::train(corpus(), &cfg(v)).expect_err("must reject");
        match &err {
            TokenizerError::InvalidConfig { field, .. } => assert_eq!(*field, "vocab_size"),
            other => panic!("wrong variant: {other:?}"),
        }
        assert!(err.to_string().contains("vocab_size"), "{err}");
    }
}

#[test]
fn train_config_serde() {
    let c: TrainConfig = serde_json::from_str("{}").expect("defaults");
    assert_eq!(c, TrainConfig::default());
    assert_eq!(c.vocab_size, 512);
    assert_eq!(c.min_frequency, 2);
    let c: TrainConfig = serde_json::from_str(r#"{"vocab_size": 300}"#).expect("partial");
    assert_eq!(c, TrainConfig { vocab_size: 300, min_frequency: 2 });
    assert!(serde_json::from_str::<TrainConfig>(r#"{"vocab": 300}"#).is_err());
}

#[test]
fn save_then_load_is_identical() {
    let tok = trained();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokenizer.json");
    tok.save(&path).expect("save");
    // Overwriting an existing file works too.
    tok.save(&path).expect("save again");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(entries.len(), 1, "no temp files left behind");

    let loaded = Tokenizer::load(&path).expect("load");
    assert_eq!(loaded.to_json_string().expect("json"), tok.to_json_string().expect("json"));
    assert_eq!(loaded.vocab_size(), tok.vocab_size());
    for s in samples() {
        assert_eq!(loaded.encode(&s), tok.encode(&s), "{s:?}");
    }
    // The saved file is standard tokenizer.json that plain `tokenizers` reads, with equal ids.
    let plain = tokenizers::Tokenizer::from_file(&path).expect("tokenizers reads it");
    let text = "The cat sees the garden. <|eos|>";
    assert_eq!(plain.encode(text, false).expect("encode").get_ids(), tok.encode(text).as_slice());

    // In-memory form too.
    let json = tok.to_json_string().expect("json");
    let again = Tokenizer::from_json_bytes(json.as_bytes()).expect("from bytes");
    assert_eq!(again.to_json_string().expect("json"), json);
}

#[test]
fn save_into_missing_dir_fails_with_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no").join("such").join("tokenizer.json");
    let err = trained().save(&path).expect_err("must fail");
    assert!(matches!(err, TokenizerError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

fn assert_names_path(err: &TokenizerError, path: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "message lacks path: {msg}");
}

#[test]
fn load_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.json");
    let err = Tokenizer::load(&path).expect_err("missing");
    assert!(matches!(err, TokenizerError::NotFound { .. }), "{err:?}");
    assert_names_path(&err, &path);
}

#[test]
fn load_truncated_or_garbage_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = trained().to_json_string().expect("json");
    let cases: [(&str, &[u8], &str); 4] = [
        ("truncated.json", &json.as_bytes()[..json.len() / 2], "truncated"),
        ("empty.json", b"", "empty"),
        ("garbage.json", b"this is not json", "invalid JSON"),
        ("other.json", br#"{"hello": [1, 2]}"#, "not in tokenizer.json format"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let err = Tokenizer::load(&path).expect_err(name);
        assert!(matches!(err, TokenizerError::Parse { .. }), "{name}: {err:?}");
        assert_names_path(&err, &path);
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
}

/// A plain `tokenizers` byte-level BPE whose special tokens are not ours.
fn foreign_tokenizer(specials: &[&str]) -> tokenizers::Tokenizer {
    use tokenizers::decoders::byte_level::ByteLevel;
    use tokenizers::models::bpe::{BpeTrainer, BPE};
    use tokenizers::models::TrainerWrapper;
    use tokenizers::AddedToken;
    let mut t = tokenizers::Tokenizer::new(BPE::default());
    t.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    t.with_decoder(Some(ByteLevel::new(false, true, true)));
    let trainer = BpeTrainer::builder()
        .vocab_size(350)
        .show_progress(false)
        .special_tokens(specials.iter().map(|s| AddedToken::from(*s, true)).collect())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    t.train(&mut TrainerWrapper::from(trainer), corpus().into_iter()).expect("train foreign");
    t
}

#[test]
fn load_tokenizer_without_our_specials() {
    let dir = tempfile::tempdir().expect("tempdir");

    let path = dir.path().join("gpt2ish.json");
    foreign_tokenizer(&["<|endoftext|>"]).save(&path, true).expect("save");
    let err = Tokenizer::load(&path).expect_err("wrong tokenizer");
    assert!(matches!(err, TokenizerError::WrongTokenizer { .. }), "{err:?}");
    assert_names_path(&err, &path);
    assert!(err.to_string().contains("not an ascent tokenizer"), "{err}");
    assert!(err.to_string().contains("<|pad|> should have id 0"), "{err}");

    // Ours, shifted by one: every special at the wrong id.
    let mut shifted = vec!["<|endoftext|>"];
    shifted.extend(Special::ALL.iter().map(|s| s.text()));
    let path = dir.path().join("shifted.json");
    foreign_tokenizer(&shifted).save(&path, true).expect("save");
    let err = Tokenizer::load(&path).expect_err("wrong ids");
    assert!(matches!(err, TokenizerError::WrongTokenizer { .. }), "{err:?}");
    assert_names_path(&err, &path);
    assert!(err.to_string().contains("<|pad|> should have id 0 but has id 1"), "{err}");

    // Ours with <|eos|> edited out of the file.
    let mut v: serde_json::Value = serde_json::from_str(&trained().to_json_string().expect("json")).expect("parse");
    v["added_tokens"].as_array_mut().expect("array").retain(|t| t["content"] != "<|eos|>");
    v["model"]["vocab"].as_object_mut().expect("object").remove("<|eos|>");
    let path = dir.path().join("no_eos.json");
    std::fs::write(&path, serde_json::to_vec(&v).expect("ser")).expect("write");
    let err = Tokenizer::load(&path).expect_err("no eos");
    assert!(matches!(err, TokenizerError::WrongTokenizer { .. }), "{err:?}");
    assert_names_path(&err, &path);
    assert!(err.to_string().contains("<|eos|> should have id 2"), "{err}");
}

#[test]
fn load_rejects_pipeline_changes() {
    let base: serde_json::Value = serde_json::from_str(&trained().to_json_string().expect("json")).expect("parse");
    let dir = tempfile::tempdir().expect("tempdir");
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 3] = [
        ("prefix.json", |v| v["pre_tokenizer"]["add_prefix_space"] = true.into(), "prefix space"),
        ("norm.json", |v| v["normalizer"] = serde_json::json!({"type": "Lowercase"}), "normalizer"),
        (
            "trunc.json",
            |v| {
                v["truncation"] = serde_json::json!({"direction": "Right", "max_length": 4,
                    "strategy": "LongestFirst", "stride": 0})
            },
            "truncation",
        ),
    ];
    for (name, edit, needle) in edits {
        let mut v = base.clone();
        edit(&mut v);
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&v).expect("ser")).expect("write");
        let err = Tokenizer::load(&path).expect_err(name);
        assert!(matches!(err, TokenizerError::WrongTokenizer { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert_names_path(&err, &path);
    }
}
