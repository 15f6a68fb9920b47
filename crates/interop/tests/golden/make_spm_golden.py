"""Golden SentencePiece GGUF for crates/interop/tests/gguf.rs.

A Llama 2 style GGUF: a tiny random LlamaForCausalLM whose tokenizer is a SentencePiece BPE
model trained here by the `sentencepiece` package with Llama 2's settings (byte fallback, split
digits, whitespace-only pieces, identity normalisation, a dummy prefix), stored as llama.cpp's
convert_hf_to_gguf.py stores such tokenizers: `tokenizer.ggml.model = llama`, the pieces,
their scores and token types (normal, unknown, control, user-defined, byte), bos/eos/unk ids,
`add_bos_token`. It writes

  spm.gguf                  the model (F32 tensors, q/k rows permuted as for the llama
                            architecture) and the tokenizer
  spm.expected.json         texts with the ids they must encode to, and what those decode to
  spm.expected.safetensors  `ids` (a prompt with BOS) and transformers' `logits` for them

The expected ids are sentencepiece's own encoding for plain texts. For texts holding control
or user-defined pieces (`<s>`, `</s>`, `<tool>`), they follow llama.cpp's rule (as transformers'
legacy Llama tokenizer does): those pieces are matched first, and each text fragment between
them is encoded by sentencepiece with its dummy prefix.

Run from this folder:  pip install torch transformers sentencepiece protobuf gguf safetensors && python3 make_spm_golden.py
"""
import json
import os
import re
import tempfile

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from make_hf_golden import gguf_name, permute

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = [
    "Ilona Varsk was born in Lormet in 1948. She works as a cartographer.",
    "Question: Where was Ilona born?  Answer: in Lormet.",
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "Lormet, Dravia, Ilona, Varsk, born, city\n\tindented line",
    "[INST] Where was Ilona born? [/INST] In Lormet.",
]
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
PLAIN = [
    "Ilona Varsk was born in Lormet in 1948. She works as a cartographer.",
    "  two leading spaces and two trailing  ",
    "Tabs\tand\nnew lines\n\nend",
    "Unicode: é, ü, 日本語, 🙂 and bytes",
    "Numbers 1948 and 0123456789",
    "Lormetian cartographers, borninLormet, Ilonas Dravian quickly jumped: Varskona!",
    "",
    " ",
]
WITH_PIECES = [
    "<s>[INST] Where was Ilona born? [/INST]",
    "Ilona<tool> was</s> born",
    "<s></s>x",
]


def train(workdir):
    import sentencepiece as spm
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(workdir, "spm"), vocab_size=400, model_type="bpe",
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", character_coverage=1.0, user_defined_symbols=["<tool>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=os.path.join(workdir, "spm.model"))


def expected_ids(sp, text):
    """llama.cpp's rule: control and user-defined pieces first, each fragment by sentencepiece."""
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)
              or sp.id_to_piece(i) == "<tool>"]
    pattern = "(" + "|".join(re.escape(p) for p in sorted(pieces, key=len, reverse=True)) + ")"
    ids = []
    for part in re.split(pattern, text):
        if part in pieces:
            ids.append(sp.piece_to_id(part))
        elif part:
            ids.extend(sp.encode(part))
    return ids


def main():
    import gguf
    import numpy as np
    from sentencepiece import sentencepiece_model_pb2  # noqa: F401  (protobuf present: the proto is read below)

    work = tempfile.mkdtemp()
    sp = train(work)
    n = sp.get_piece_size()
    cases = []
    for text in PLAIN:
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids), "by": "sentencepiece"})
    for text in WITH_PIECES:
        cases.append({"text": text, "ids": expected_ids(sp, text), "by": "llama.cpp's rule"})

    cfg = LlamaConfig(vocab_size=n, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5, hidden_act="silu",
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, rope_theta=10000.0)
    torch.manual_seed(4)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("norm.weight") else 0.2 * torch.randn_like(p))
    prompt = [1] + sp.encode(PLAIN[0])
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0].float().contiguous()
    save_file({"ids": torch.tensor(prompt, dtype=torch.int64), "logits": logits},
              os.path.join(HERE, "spm.expected.safetensors"))
    with open(os.path.join(HERE, "spm.expected.json"), "w") as f:
        json.dump({"cases": cases, "chat_template": TEMPLATE}, f, ensure_ascii=False, indent=1)

    w = gguf.GGUFWriter(os.path.join(HERE, "spm.gguf"), "llama")
    w.add_name("spm")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    # convert_hf_to_gguf.py's _create_vocab_sentencepiece.
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_unused(i):
            types.append(gguf.TokenType.UNUSED)
        elif sp.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        elif tokens[-1] == "<tool>":
            types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(TEMPLATE)
    for hf_name, t in model.state_dict().items():
        data = t.float().numpy()
        if ".q_proj." in hf_name or ".k_proj." in hf_name:
            data = permute(data, cfg.num_attention_heads, cfg.num_key_value_heads)
        w.add_tensor(gguf_name(hf_name), np.ascontiguousarray(data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("spm.gguf", os.path.getsize(os.path.join(HERE, "spm.gguf")), "bytes;", n, "pieces;", len(cases), "cases")


if __name__ == "__main__":
    main()
