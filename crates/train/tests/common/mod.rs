//! Helpers shared by the fine-tuning and evaluation tests: a small world, its tokenizer, and a
//! freshly initialised model saved as a checkpoint.

use std::path::{Path, PathBuf};

use model::engine::{self, Backend};
use model::{weights, ModelConfig, Transformer};
use tokenizer::Tokenizer;
use train::checkpoint::{self, Payload, TrainState};
use train::data::SamplerState;
use train::eval::{qa_text, trace_text};
use world::{World, WorldConfig};

pub fn small_world() -> World {
    World::generate(&WorldConfig { seed: 5, people: 16, ..Default::default() }).unwrap()
}

/// BPE over the world's single-rendering corpus and every task in every answer format.
pub fn world_tokenizer(w: &World) -> Tokenizer {
    let mut texts = w.corpus_documents(1).unwrap();
    for t in w.tasks() {
        texts.push(qa_text(&t.question, &t.answer));
        texts.push(trace_text(&t.question, &t.trace));
        texts.push(tools::protocol::segments_text(&tools::trace_to_chat(&t.tool_trace)));
    }
    Tokenizer::train(texts.iter(), &tokenizer::TrainConfig { vocab_size: 384, ..Default::default() }).unwrap()
}

/// A freshly initialised model saved as a checkpoint, as a stage would leave it.
pub fn random_checkpoint(out: &Path, tok: &Tokenizer) -> PathBuf {
    random_checkpoint_of(out, tok, ModelConfig::llama(tok.vocab_size(), 64, 2, 4, 192))
}

/// [`random_checkpoint`] of the architecture `cfg`.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn random_checkpoint_of(out: &Path, tok: &Tokenizer, cfg: ModelConfig) -> PathBuf {
    let device = engine::device(Backend::Cpu).unwrap();
    let m = Transformer::seeded(&cfg, &device, 3);
    let payload = Payload {
        model_safetensors: weights::to_safetensors(&m, &Default::default()),
        config_json: serde_json::json!({ "model": cfg }).to_string(),
        optimizer: Vec::new(),
        tokenizer_json: tok.to_json_string().unwrap(),
        tokenizer_config_json: tok.config_json().map(str::to_string),
    };
    let state = TrainState {
        format_version: checkpoint::FORMAT_VERSION,
        step: 0,
        tokens_seen: 0,
        sampler: SamplerState { seed: 0, word_pos: 0 },
        val_loss: None,
        train_seconds: 0.0,
        files: Default::default(),
    };
    checkpoint::save(out, &payload, state, 1).unwrap()
}
