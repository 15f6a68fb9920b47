"""Golden Hugging Face checkpoints for crates/interop/tests/hf.rs.

Tiny random models written by `transformers` itself, one per supported layout, each with the
logits transformers computes for a fixed text. Per NAME it writes the folder NAME/ as
`save_pretrained` writes it (config.json, model.safetensors or shards with
model.safetensors.index.json, generation_config.json, tokenizer.json, tokenizer_config.json)
and NAME.expected.safetensors (the text's token ids as `ids`, the logits as `logits`).

  llama    LlamaForCausalLM, GQA, untied head, Llama 3.1 rope scaling, f32, sharded
  qwen2    Qwen2ForCausalLM, biases on q/k/v, tied embeddings, rope theta 1e6, bf16
  mistral  MistralForCausalLM, sliding window, f16
  qwen3    Qwen3ForCausalLM, RMSNorm on each query and key head, heads twice as wide as
           hidden_size / num_attention_heads (head_dim 16), untied head, f32

and, from the llama, qwen2 and qwen3 folders, llama.gguf, qwen2.gguf and qwen3.gguf as llama.cpp's
convert_hf_to_gguf.py lays them out (gguf-py's writer): llama.cpp tensor names, the q and k
rows of the llama architecture permuted for ggml's interleaved rotary layout, Llama 3.1's
scaling as a `rope_freqs.weight` tensor, the tokenizer as `tokenizer.ggml.*` arrays, 1-D
tensors in F32 and matrices in F16 (llama, qwen3) or Q8_0 (qwen2, quantised by gguf-py). Their
expected logits are the folders': an exact importer matches llama.gguf to f16 precision and
qwen2.gguf to Q8_0 precision.

The weights are drawn at std 0.2 (transformers' 0.02 would make every logit nearly equal and
hide layout mistakes). The expected logits are computed in f32 from the stored weights (for
bf16/f16 folders, the rounded values), so an exact importer matches them to f32 precision.

Run from this folder:  pip install torch transformers tokenizers safetensors gguf && python3 make_hf_golden.py [NAME ...]
(no names: all of them)
"""
import json
import math
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = "Ilona Varsk was born in Lormet in 1948. She works as a cartographer.\nQuestion: Where was Ilona born?"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tokenizer():
    corpus = [TEXT, "The quick brown fox jumps over the lazy dog. 0123456789", "Lormet, Dravia, Ilona, Varsk, born, city"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", chat_template=CHATML)


def common(vocab):
    return dict(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, hidden_act="silu",
                bos_token_id=0, eos_token_id=2, pad_token_id=0)


def build(name, model_cls, cfg, dtype, shard):
    torch.manual_seed({"llama": 1, "qwen2": 2, "mistral": 3, "qwen3": 4}[name])
    model = model_cls(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif n.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model = model.to(dtype)
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, max_shard_size="40KB" if shard else "1GB")
    tok = tokenizer()
    tok.save_pretrained(out)
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    # A fresh f32 model read from the folder: the rounded weights, and rotary tables computed in
    # f32 (a model cast to bf16 and back would carry bf16-rounded inverse frequencies).
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().contiguous()
    save_file({"ids": torch.tensor(ids, dtype=torch.int64), "logits": logits},
              os.path.join(HERE, f"{name}.expected.safetensors"))
    print(name, "tokens", len(ids), "files", sorted(os.listdir(out)))


def permute(w, n_head, n_head_kv):
    """llama.cpp's LlamaModel.permute: HF's rotate-half rows to ggml's interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
GGUF_LAYER_PARTS = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
                    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                    "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
                    "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                    "mlp.down_proj": "ffn_down"}


def gguf_name(hf_name):
    """llama.cpp's name of a Hugging Face tensor name (convert_hf_to_gguf.py's mapping)."""
    if hf_name in GGUF_NAMES:
        return GGUF_NAMES[hf_name]
    _, _, i, rest = hf_name.split(".", 3)
    key = next(k for k in GGUF_LAYER_PARTS if rest.startswith(k))
    return f"blk.{i}.{GGUF_LAYER_PARTS[key]}{rest[len(key):]}"


def write_gguf(name, arch, matrix_type):
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    folder = os.path.join(HERE, name)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    tensors = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            tensors.update({k: v.float().numpy() for k, v in load_file(os.path.join(folder, f)).items()})
    H, N = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(os.path.join(HERE, f"{name}.gguf"), arch)
    w.add_name(name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(N)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    rope = cfg["rope_parameters"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // H
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_rope_dimension_count(head_dim)
    if head_dim != cfg["hidden_size"] // H:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if rope.get("rope_type") == "llama3":
        # convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors: per-pair divisors.
        base, dim = rope["rope_theta"], cfg["hidden_size"] // H
        freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
        factor, lo, hi, old = (rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                               rope["original_max_position_embeddings"])
        low_wl, high_wl = old / lo, old / hi
        factors = []
        for f in freqs:
            wl = 2 * math.pi / f
            if wl < high_wl:
                factors.append(1)
            elif wl > low_wl:
                factors.append(factor)
            else:
                smooth = (old / wl - lo) / (hi - lo)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    tok = json.load(open(os.path.join(folder, "tokenizer.json")))
    vocab = tok["model"]["vocab"]
    tokens = [None] * cfg["vocab_size"]
    types = [gguf.TokenType.UNUSED] * cfg["vocab_size"]
    for t, i in vocab.items():
        tokens[i], types[i] = t, gguf.TokenType.NORMAL
    for a in tok["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_chat_template(CHATML)
    for hf_name, data in tensors.items():
        gg = gguf_name(hf_name)
        if arch == "llama" and ".self_attn.q_proj." in hf_name:
            data = permute(data, H, H)
        if arch == "llama" and ".self_attn.k_proj." in hf_name:
            data = permute(data, H, N)
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.ndim == 1:
            w.add_tensor(gg, data)
        elif matrix_type == "f16" or data.shape[-1] % 32:  # rows not whole blocks: F16, as llama.cpp falls back
            w.add_tensor(gg, data.astype(np.float16))
        else:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(gg, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(name + ".gguf", os.path.getsize(os.path.join(HERE, f"{name}.gguf")), "bytes")


if __name__ == "__main__":
    import sys
    names = sys.argv[1:] or ["llama", "qwen2", "mistral", "qwen3"]
    vocab = tokenizer().backend_tokenizer.get_vocab_size() + 4  # padded like real checkpoints
    if "llama" in names:
        llama = LlamaConfig(**common(vocab), tie_word_embeddings=False, rope_theta=500000.0,
                            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
        build("llama", LlamaForCausalLM, llama, torch.float32, shard=True)
        write_gguf("llama", "llama", "f16")
    if "qwen2" in names:
        qwen2 = Qwen2Config(**common(vocab), tie_word_embeddings=True, rope_theta=1000000.0, use_sliding_window=False)
        build("qwen2", Qwen2ForCausalLM, qwen2, torch.bfloat16, shard=False)
        write_gguf("qwen2", "qwen2", "q8_0")
    if "mistral" in names:
        mistral = MistralConfig(**common(vocab), tie_word_embeddings=False, rope_theta=10000.0, sliding_window=4096)
        build("mistral", MistralForCausalLM, mistral, torch.float16, shard=False)
    if "qwen3" in names:
        qwen3 = Qwen3Config(**common(vocab), head_dim=16, tie_word_embeddings=False, rope_theta=1000000.0,
                            use_sliding_window=False, attention_bias=False)
        build("qwen3", Qwen3ForCausalLM, qwen3, torch.float32, shard=False)
        write_gguf("qwen3", "qwen3", "f16")
