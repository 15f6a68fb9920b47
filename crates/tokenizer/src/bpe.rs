//! [`Tokenizer`]: training, encoding/decoding, validation and (atomic) persistence.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::{AddedToken, DecoderWrapper, ModelWrapper, PostProcessorWrapper, PreTokenizerWrapper};

use crate::bytes::byte_to_char;
use crate::template::ChatTemplate;
use crate::{Message, Special, TokenizerError, TrainConfig};

/// Origin used in error messages for JSON that did not come from a named file.
const IN_MEMORY: &str = "tokenizer JSON (in memory)";

/// A tokenizer: either an ascent tokenizer (byte-level BPE with the reserved [`Special`] tokens
/// at ids `0..Special::COUNT`) or an imported model's ([`Tokenizer::foreign`]), which brings its
/// own chat template and end-of-sequence ids.
///
/// Every ascent tokenizer has been validated (see the crate docs), so encoding never produces an
/// unknown token and `decode(encode(s)) == s` for every string `s`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// `byte_ids[b]`: id of the single-byte token for byte `b` (ascent tokenizers).
    byte_ids: [u32; 256],
    /// Inverse of the ByteLevel byte → char table.
    char_to_byte: HashMap<char, u8>,
    /// `Some` for an imported model's tokenizer.
    foreign: Option<Box<Foreign>>,
}

/// What an imported model's tokenizer brings besides its vocabulary.
#[derive(Clone, Debug)]
struct Foreign {
    /// Its `tokenizer_config.json` (chat template, special-token strings, end ids), verbatim.
    config_json: String,
    template: Option<ChatTemplate>,
    /// Ids that end a generation: `eos_token_ids` and the id of `eos_token`.
    end_ids: Vec<u32>,
    /// The `bos_token` and `eos_token` strings.
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// The id a prompt starts with when the tokenizer adds a beginning-of-sequence token
    /// (`add_bos_token` in `tokenizer_config.json`, else what the post-processor adds).
    bos_prefix: Option<u32>,
    /// SentencePiece-style pieces (`▁` for a space, `<0xNN>` byte tokens) rather than
    /// byte-level characters.
    spm_pieces: bool,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.vocab_size()).finish_non_exhaustive()
    }
}

fn special_added_tokens() -> Vec<AddedToken> {
    // `special = true`: matched verbatim before pre-tokenization, never split, not normalized.
    Special::ALL.iter().map(|s| AddedToken::from(s.text(), true)).collect()
}

fn byte_level() -> ByteLevel {
    // add_prefix_space = false (text is encoded as is), trim_offsets = true, use_regex = true
    // (the GPT-2 split pattern).
    ByteLevel::new(false, true, true)
}

impl Tokenizer {
    /// Trains a new tokenizer on `texts`.
    ///
    /// Each item is one document; they are consumed in parallel by `tokenizers`. The resulting
    /// vocab has exactly `cfg.vocab_size` entries unless the corpus runs out of pairs seen at
    /// least `cfg.min_frequency` times first, in which case it is smaller.
    pub fn train<I, S>(texts: I, cfg: &TrainConfig) -> Result<Tokenizer, TokenizerError>
    where
        I: IntoIterator<Item = S>,
        I::IntoIter: Send,
        S: AsRef<str> + Send,
    {
        cfg.validate()?;
        let specials = special_added_tokens();

        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(byte_level()));
        inner.with_decoder(Some(byte_level()));

        let trainer = BpeTrainer::builder()
            .vocab_size(cfg.vocab_size)
            .min_frequency(cfg.min_frequency)
            .show_progress(false)
            // The trainer puts these first in the vocab, in order: ids 0..COUNT.
            .special_tokens(specials)
            // All 256 byte symbols, whether or not the corpus contains them: no unknown tokens.
            .initial_alphabet(byte_to_char().into_iter().collect::<HashSet<char>>())
            .build();
        let mut trainer = TrainerWrapper::from(trainer);
        // `tokenizers` would count special-token text in the corpus as ordinary words and learn
        // merges such as "<|"; feed only the pieces between special tokens instead.
        let pieces = texts
            .into_iter()
            .flat_map(|t| split_out_specials(t.as_ref()).into_iter().map(str::to_owned).collect::<Vec<String>>());
        inner.train(&mut trainer, pieces).map_err(|e| TokenizerError::Training(e.to_string()))?;

        Self::from_inner(inner, "freshly trained tokenizer").map_err(|e| match e {
            // A failed invariant here is a bug in this crate or in `tokenizers`, not bad input.
            TokenizerError::WrongTokenizer { reason, .. } => {
                TokenizerError::Training(format!("trained tokenizer fails validation: {reason}"))
            }
            other => other,
        })
    }

    /// Wraps an already-built `tokenizers::Tokenizer`, checking that it is an ascent tokenizer.
    /// `origin` names it in error messages.
    pub fn from_tokenizers(inner: tokenizers::Tokenizer, origin: &str) -> Result<Self, TokenizerError> {
        Self::from_inner(inner, origin)
    }

    fn from_inner(inner: tokenizers::Tokenizer, origin: &str) -> Result<Self, TokenizerError> {
        let wrong = |reason: String| TokenizerError::WrongTokenizer { origin: origin.to_string(), reason };

        // 1. The reserved special tokens, at their fixed ids, registered as special.
        let added = inner.get_added_tokens_decoder();
        for s in Special::ALL {
            match inner.token_to_id(s.text()) {
                None => return Err(wrong(format!("{s} should have id {} but is missing", s.id()))),
                Some(id) if id != s.id() => {
                    return Err(wrong(format!("{s} should have id {} but has id {id}", s.id())))
                }
                Some(_) => {}
            }
            match added.get(&s.id()) {
                Some(t) if t.content == s.text() && t.special => {}
                _ => return Err(wrong(format!("{s} (id {}) is not registered as a special token", s.id()))),
            }
        }

        // 2. The pipeline: no normalizer, ByteLevel (no prefix space) in and out, a BPE model,
        //    nothing that silently changes the ids (truncation, padding, templates).
        if !matches!(inner.get_model(), ModelWrapper::BPE(_)) {
            return Err(wrong("the model is not BPE".into()));
        }
        if inner.get_normalizer().is_some() {
            return Err(wrong("it has a normalizer (ascent tokenizers have none)".into()));
        }
        match inner.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::ByteLevel(b)) if !b.add_prefix_space => {}
            Some(PreTokenizerWrapper::ByteLevel(_)) => {
                return Err(wrong("its ByteLevel pre-tokenizer adds a prefix space".into()))
            }
            _ => return Err(wrong("the pre-tokenizer is not ByteLevel".into())),
        }
        if !matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_))) {
            return Err(wrong("the decoder is not ByteLevel".into()));
        }
        match inner.get_post_processor() {
            None | Some(PostProcessorWrapper::ByteLevel(_)) => {}
            Some(_) => return Err(wrong("it has a post-processor other than ByteLevel".into())),
        }
        if inner.get_truncation().is_some() {
            return Err(wrong("truncation is enabled".into()));
        }
        if inner.get_padding().is_some() {
            return Err(wrong("padding is enabled".into()));
        }

        // 3. All 256 single-byte tokens, so any text can be encoded.
        let table = byte_to_char();
        let mut byte_ids = [0u32; 256];
        for (b, c) in table.iter().enumerate() {
            byte_ids[b] = inner
                .token_to_id(&c.to_string())
                .ok_or_else(|| wrong(format!("the vocab lacks the byte-level token {c:?} for byte 0x{b:02x}")))?;
        }
        let char_to_byte = (0..=255u8).map(|b| (table[usize::from(b)], b)).collect();

        Ok(Tokenizer { inner, byte_ids, char_to_byte, foreign: None })
    }

    /// An imported model's tokenizer: any `tokenizer.json` the `tokenizers` library reads, with
    /// its `tokenizer_config.json` (Hugging Face's: `chat_template`, `bos_token`, `eos_token`,
    /// plus `eos_token_ids`, a list this project adds from `generation_config.json`). It must
    /// name at least one end-of-sequence token, or generation could never stop.
    pub fn foreign(tokenizer_json: &[u8], config_json: &str, origin: &str) -> Result<Self, TokenizerError> {
        let parse = |reason: String| TokenizerError::Parse { origin: origin.to_string(), reason };
        let inner = tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(|e| parse(format!("{e}")))?;
        let cfg: serde_json::Value = serde_json::from_str(config_json)
            .map_err(|e| parse(format!("its tokenizer_config.json is not valid JSON ({e})")))?;
        let token = |key: &str| match cfg.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
            _ => None,
        };
        let (bos, eos) = (token("bos_token"), token("eos_token"));
        let mut end_ids: Vec<u32> = cfg
            .get("eos_token_ids")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect())
            .unwrap_or_default();
        if let Some(id) = eos.as_deref().and_then(|e| inner.token_to_id(e)) {
            if !end_ids.contains(&id) {
                end_ids.push(id);
            }
        }
        if end_ids.is_empty() {
            return Err(TokenizerError::WrongTokenizer {
                origin: origin.to_string(),
                reason: "no end-of-sequence token (eos_token or eos_token_ids in tokenizer_config.json)".into(),
            });
        }
        let template = match cfg.get("chat_template").and_then(|t| t.as_str()) {
            Some(src) => Some(ChatTemplate::new(src, bos.clone(), eos.clone()).map_err(|e| {
                TokenizerError::WrongTokenizer { origin: origin.to_string(), reason: format!("its chat template {e}") }
            })?),
            None => None,
        };
        // A beginning-of-sequence token is added to prompts when the config says so
        // (`add_bos_token`, the slow tokenizers' flag), else when the post-processor adds it
        // (what `tokenizer(text)` does in transformers).
        let bos_id = bos.as_deref().and_then(|b| inner.token_to_id(b));
        let adds_bos = match cfg.get("add_bos_token").and_then(|v| v.as_bool()) {
            Some(flag) => flag,
            None => inner
                .encode_fast("", true)
                .map(|e| bos_id.is_some() && e.get_ids().first().copied() == bos_id)
                .unwrap_or(false),
        };
        let spm_pieces = matches!(inner.get_decoder(), Some(DecoderWrapper::Sequence(_)))
            && !matches!(inner.get_pre_tokenizer(), Some(PreTokenizerWrapper::ByteLevel(_)));
        let table = byte_to_char();
        let char_to_byte = (0..=255u8).map(|b| (table[usize::from(b)], b)).collect();
        let mut byte_ids = [0u32; 256];
        for (b, c) in table.iter().enumerate() {
            let piece = if spm_pieces { format!("<0x{b:02X}>") } else { c.to_string() };
            byte_ids[b] = inner.token_to_id(&piece).unwrap_or(u32::MAX);
        }
        let foreign = Foreign {
            config_json: config_json.to_string(),
            template,
            end_ids,
            bos_token: bos,
            eos_token: eos,
            bos_prefix: if adds_bos { bos_id } else { None },
            spm_pieces,
        };
        Ok(Tokenizer { inner, byte_ids, char_to_byte, foreign: Some(Box::new(foreign)) })
    }

    /// A checkpoint's tokenizer: an ascent tokenizer, or an imported model's when its
    /// `tokenizer_config.json` comes with it.
    pub fn from_parts(tokenizer_json: &[u8], config_json: Option<&str>, origin: &str) -> Result<Self, TokenizerError> {
        match config_json {
            Some(cfg) => Self::foreign(tokenizer_json, cfg, origin),
            None => Self::from_json_bytes_named(tokenizer_json, origin),
        }
    }

    /// Whether this is an imported model's tokenizer (no reserved special tokens).
    pub fn is_foreign(&self) -> bool {
        self.foreign.is_some()
    }

    /// An imported tokenizer's `tokenizer_config.json` text (to store beside `tokenizer.json`).
    pub fn config_json(&self) -> Option<&str> {
        self.foreign.as_ref().map(|f| f.config_json.as_str())
    }

    /// An imported tokenizer's `bos_token` and `eos_token` strings (`tokenizer_config.json`).
    pub fn special_strings(&self) -> (Option<&str>, Option<&str>) {
        match &self.foreign {
            Some(f) => (f.bos_token.as_deref(), f.eos_token.as_deref()),
            None => (None, None),
        }
    }

    /// An imported tokenizer's chat template, if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.foreign.as_ref().and_then(|f| f.template.as_ref())
    }

    /// Ids that end a generation: `<|end|>` and `<|eos|>` for ascent tokenizers, the
    /// end-of-sequence ids of an imported one.
    pub fn end_ids(&self) -> Vec<u32> {
        match &self.foreign {
            Some(f) => f.end_ids.clone(),
            None => vec![Special::End.id(), Special::Eos.id()],
        }
    }

    /// Whether `id` ends a sequence: `<|eos|>` for ascent tokenizers (not `<|end|>`, which ends a
    /// chat turn), any end-of-sequence id of an imported one.
    pub fn is_eos(&self, id: u32) -> bool {
        match &self.foreign {
            Some(f) => f.end_ids.contains(&id),
            None => id == Special::Eos.id(),
        }
    }

    /// The end-of-sequence id appended after a training document.
    pub fn eos_id(&self) -> u32 {
        match &self.foreign {
            Some(f) => f.end_ids[0],
            None => Special::Eos.id(),
        }
    }

    /// The id used for padding (never trained on, never attended to).
    pub fn pad_id(&self) -> u32 {
        match &self.foreign {
            Some(f) => f.end_ids[0],
            None => Special::Pad.id(),
        }
    }

    /// The conversation as the model expects it: the ascent chat format, or an imported model's
    /// chat template; with `generation_prompt`, ready for the assistant's reply.
    pub fn render_chat(&self, messages: &[Message], generation_prompt: bool) -> Result<String, TokenizerError> {
        match &self.foreign {
            None => Ok(crate::chat::render_chat(messages, generation_prompt)),
            Some(f) => match &f.template {
                Some(t) => t.render(messages, generation_prompt),
                None => Err(TokenizerError::Template(
                    "the model has no chat template (tokenizer_config.json has no chat_template)".into(),
                )),
            },
        }
    }

    /// Encodes `text` into token ids. No BOS/EOS is added; special-token text inside `text`
    /// (e.g. `"<|user|>"`) becomes that special token's single id.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.try_encode(text) {
            Ok(ids) => ids,
            // Not expected with a validated pipeline; stay lossless rather than panic.
            Err(_) => self.encode_bytes(text),
        }
    }

    /// Encodes a prompt the way the model saw text in training: as [`encode`](Self::encode),
    /// with the beginning-of-sequence token first when the tokenizer adds one (an imported
    /// Llama or Mistral tokenizer) and `text` does not already start with it (a chat template
    /// that writes `bos_token` itself).
    pub fn encode_prompt(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode(text);
        if let Some(bos) = self.foreign.as_ref().and_then(|f| f.bos_prefix) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        ids
    }

    /// Encodes the concatenation of `segments` as one text (so tokens may merge across their
    /// boundaries, and a SentencePiece tokenizer adds its space prefix once), with per token the
    /// mark of the segment its first byte lies in; starting with the beginning-of-sequence token
    /// (marked `false`) as [`encode_prompt`](Self::encode_prompt) does. This is how an imported
    /// model's training rows are cut into prompt and trained parts.
    pub fn encode_marked(&self, segments: &[(&str, bool)]) -> Result<(Vec<u32>, Vec<bool>), TokenizerError> {
        let text: String = segments.iter().map(|s| s.0).collect();
        let enc = self.inner.encode(text.as_str(), false).map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut ends = Vec::with_capacity(segments.len());
        let mut at = 0;
        for (t, _) in segments {
            at += t.len();
            ends.push(at);
        }
        let mark = |start: usize| {
            let k = ends.partition_point(|&e| e <= start).min(segments.len().saturating_sub(1));
            segments.get(k).is_some_and(|s| s.1)
        };
        let mut ids = enc.get_ids().to_vec();
        let mut marks: Vec<bool> = enc.get_offsets().iter().map(|o| mark(o.0)).collect();
        if let Some(bos) = self.bos_prefix() {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
                marks.insert(0, false);
            }
        }
        Ok((ids, marks))
    }

    /// The id [`encode_prompt`](Self::encode_prompt) puts first, if any.
    pub fn bos_prefix(&self) -> Option<u32> {
        self.foreign.as_ref().and_then(|f| f.bos_prefix)
    }

    /// Like [`encode`](Self::encode), but reports an error from the `tokenizers` pipeline
    /// instead of falling back to one token per byte.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode_fast(text, false)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Encodes many texts in parallel; `result[i] == self.encode(texts[i])`.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        let inputs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        match self.inner.encode_batch_fast(inputs, false) {
            Ok(encs) => encs.into_iter().map(|e| e.get_ids().to_vec()).collect(),
            Err(_) => texts.iter().map(|t| self.encode(t.as_ref())).collect(),
        }
    }

    /// One token per UTF-8 byte: always possible for an ascent tokenizer, always decodes back to
    /// `text`. (An imported tokenizer may lack byte tokens; those bytes are dropped.)
    fn encode_bytes(&self, text: &str) -> Vec<u32> {
        text.bytes().map(|b| self.byte_ids[usize::from(b)]).filter(|&id| id != u32::MAX).collect()
    }

    /// Decodes ids back to text. Special tokens are kept as their text (`"<|eos|>"`); ids not in
    /// the vocab are skipped. Byte sequences that are not valid UTF-8 (possible when decoding an
    /// arbitrary id slice) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self.inner.decode(ids, false) {
            Ok(s) => s,
            // Not expected (the ByteLevel decoder is total); decode by hand instead.
            Err(_) => {
                let bytes: Vec<u8> = ids.iter().filter_map(|&id| self.token_bytes(id)).flatten().collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }

    /// The raw bytes token `id` stands for (a special token's text for special tokens), or `None`
    /// if `id` is not in the vocab. Useful for streaming decode.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        if self.foreign.is_none() {
            if let Some(s) = Special::from_id(id) {
                return Some(s.text().as_bytes().to_vec());
            }
        }
        let token = self.inner.id_to_token(id)?;
        if self.foreign.as_ref().is_some_and(|f| f.spm_pieces) {
            // `<0xNN>` byte tokens; otherwise the piece with `▁` for each space.
            let byte = token
                .strip_prefix("<0x")
                .and_then(|t| t.strip_suffix('>'))
                .filter(|h| h.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            return Some(match byte {
                Some(b) => vec![b],
                None => token.replace('\u{2581}', " ").into_bytes(),
            });
        }
        token
            .chars()
            .map(|c| self.char_to_byte.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            // A token outside the byte alphabet (only a foreign added token could be one):
            // it stands for its own text.
            .or_else(|| Some(token.into_bytes()))
    }

    /// Number of ids, special tokens included. Ids are `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        match &self.foreign {
            // An imported vocabulary may count a token twice (in the model and as an added
            // token) or leave ids unused: the id range is what a model must cover.
            Some(_) => self.inner.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1),
            None => self.inner.get_vocab_size(true),
        }
    }

    /// Id of a token given in vocab form (ByteLevel characters, e.g. `"Ġthe"` for `" the"`),
    /// or a special token's text.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocab form of token `id` (ByteLevel characters; see [`token_bytes`](Self::token_bytes)
    /// for the bytes it stands for).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Compact tokenizer.json text (same content as [`save`](Self::save) writes, without the
    /// indentation). Deterministic.
    pub fn to_json_string(&self) -> Result<String, TokenizerError> {
        self.inner.to_string(false).map_err(|e| TokenizerError::Serialize(e.to_string()))
    }

    /// Parses and validates tokenizer.json bytes (e.g. embedded in a checkpoint).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, TokenizerError> {
        Self::from_json_bytes_named(bytes, IN_MEMORY)
    }

    /// Like [`from_json_bytes`](Self::from_json_bytes), naming the bytes' origin (e.g. a
    /// checkpoint path) in error messages.
    pub fn from_json_bytes_named(bytes: &[u8], origin: &str) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| {
            let reason = if bytes.iter().all(u8::is_ascii_whitespace) {
                "the file is empty".to_string()
            } else {
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Err(je) if je.is_eof() => format!("truncated JSON ({je})"),
                    Err(je) => format!("invalid JSON ({je})"),
                    Ok(_) => format!("valid JSON but not in tokenizer.json format ({e})"),
                }
            };
            TokenizerError::Parse { origin: origin.to_string(), reason }
        })?;
        Self::from_inner(inner, origin)
    }

    /// Writes the tokenizer to `path` in tokenizer.json format (pretty-printed), atomically:
    /// the JSON goes to a temporary file in the same directory, which is fsynced and then
    /// renamed over `path`. A reader never sees a partial file.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        let json = self.inner.to_string(true).map_err(|e| TokenizerError::Serialize(e.to_string()))?;
        atomic_write(path, json.as_bytes()).map_err(|source| TokenizerError::Write { path: path.to_path_buf(), source })
    }

    /// Reads and validates a tokenizer.json written by [`save`](Self::save) (or any tokenizer.json
    /// that passes validation).
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let bytes = fs::read(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                TokenizerError::NotFound { path: path.to_path_buf() }
            } else {
                TokenizerError::Read { path: path.to_path_buf(), source }
            }
        })?;
        Self::from_json_bytes_named(&bytes, &path.display().to_string())
    }
}

/// The non-empty pieces of `text` between occurrences of special-token text.
fn split_out_specials(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while let Some(off) = text[i..].find("<|") {
        let pos = i + off;
        // No special token's text is a prefix of another's, so the first match is the only one.
        match Special::ALL.iter().find(|s| text[pos..].starts_with(s.text())) {
            Some(s) => {
                if pos > start {
                    pieces.push(&text[start..pos]);
                }
                start = pos + s.text().len();
                i = start;
            }
            // `<` is one byte, so `pos + 1` is a char boundary.
            None => i = pos + 1,
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Write `bytes` to a fresh temp file next to `path`, fsync it, rename it over `path`, then
/// fsync the directory (best effort: not every filesystem allows it). The temp file is removed
/// on failure.
fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_out_specials;

    #[test]
    fn splits_at_special_text_only() {
        assert_eq!(split_out_specials("<|user|>hi<|end|>"), vec!["hi"]);
        assert_eq!(split_out_specials("a<|b <|eos|><|bos|>c|>"), vec!["a<|b ", "c|>"]);
        assert_eq!(split_out_specials("é<|/think|>ü"), vec!["é", "ü"]);
        assert_eq!(split_out_specials(""), Vec::<&str>::new());
        assert_eq!(split_out_specials("<|<|pad|>"), vec!["<|"]);
    }
}
