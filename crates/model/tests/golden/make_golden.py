"""Golden logits, loss and gradients for crates/model/tests/golden.rs.

An independent PyTorch implementation of the two reference architectures at a tiny size, with
fixed random weights. It writes, per architecture NAME:
  NAME.weights.safetensors   the weights, Hugging Face Llama names and [out, in] layout
  NAME.expected.safetensors  tokens, targets, logits, loss and grad.<weight name> for every weight
  NAME.config.json           the ascent ModelConfig for the same architecture

Run from this folder:  pip install torch safetensors && python3 make_golden.py
"""
import json, math

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # compute in f64; stored as f32

CONFIGS = {
    # Reference architecture (Llama): RMSNorm, SwiGLU, RoPE, GQA, untied head, no biases.
    "llama": dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=48, max_seq_len=16,
                  norm="rms", norm_eps=1e-5, mlp="swiglu", position={"kind": "rope", "theta": 10000.0},
                  tie_embeddings=False, qk_norm=False, parallel_residual=False, bias=False, init_std=0.02),
    # The other branches: LayerNorm, GELU, learned positions, biases, tied head, QK-norm, parallel residual, MQA.
    "variant": dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=1, d_ff=64, max_seq_len=16,
                    norm="layer", norm_eps=1e-5, mlp="gelu", position={"kind": "learned"},
                    tie_embeddings=True, qk_norm=True, parallel_residual=True, bias=True, init_std=0.02),
}
B, T = 2, 7


def make(cfg):
    D, L, H, N, FF, V = cfg["d_model"], cfg["n_layers"], cfg["n_heads"], cfg["n_kv_heads"], cfg["d_ff"], cfg["vocab_size"]
    K = D // H
    w = {}

    def lin(name, i, o):
        w[name + ".weight"] = torch.randn(o, i) * 0.2
        if cfg["bias"]:
            w[name + ".bias"] = torch.randn(o) * 0.1

    def norm(name, d):
        w[name + ".weight"] = 1.0 + 0.1 * torch.randn(d)
        if cfg["norm"] == "layer":
            w[name + ".bias"] = 0.1 * torch.randn(d)

    w["model.embed_tokens.weight"] = torch.randn(V, D) * 0.5
    if cfg["position"]["kind"] == "learned":
        w["model.embed_positions.weight"] = torch.randn(cfg["max_seq_len"], D) * 0.5
    for l in range(L):
        p = f"model.layers.{l}."
        norm(p + "input_layernorm", D)
        lin(p + "self_attn.q_proj", D, D)
        lin(p + "self_attn.k_proj", D, N * K)
        lin(p + "self_attn.v_proj", D, N * K)
        lin(p + "self_attn.o_proj", D, D)
        if cfg["qk_norm"]:
            w[p + "self_attn.q_norm.weight"] = 1.0 + 0.1 * torch.randn(K)
            w[p + "self_attn.k_norm.weight"] = 1.0 + 0.1 * torch.randn(K)
        norm(p + "post_attention_layernorm", D)
        if cfg["mlp"] in ("swiglu", "geglu"):
            lin(p + "mlp.gate_proj", D, FF)
        lin(p + "mlp.up_proj", D, FF)
        lin(p + "mlp.down_proj", FF, D)
    norm("model.norm", D)
    if not cfg["tie_embeddings"]:
        w["lm_head.weight"] = torch.randn(V, D) * 0.2
    # Round to f32 so both sides start from identical values.
    return {k: v.float().double().requires_grad_() for k, v in w.items()}


def forward(cfg, w, tok):
    D, H, N = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    K, G, eps = D // H, H // N, cfg["norm_eps"]
    b, t = tok.shape

    def norm(x, name, kind=None):
        kind = kind or cfg["norm"]
        if kind == "layer":
            mu = x.mean(-1, keepdim=True)
            var = ((x - mu) ** 2).mean(-1, keepdim=True)
            return (x - mu) / torch.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w[name + ".weight"]

    def lin(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    def act(x):
        return F.silu(x) if cfg["mlp"] == "swiglu" else F.relu(x) if cfg["mlp"] == "relu" else F.gelu(x, approximate="tanh")

    def rope(x):
        theta = cfg["position"]["theta"]
        inv = theta ** (-torch.arange(0, K, 2, dtype=torch.float64) / K)
        ang = torch.outer(torch.arange(t, dtype=torch.float64), inv)
        cos, sin = ang.cos(), ang.sin()
        x1, x2 = x[..., : K // 2], x[..., K // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

    def attn(x, p):
        q = lin(x, p + "q_proj").view(b, t, H, K).transpose(1, 2)
        k = lin(x, p + "k_proj").view(b, t, N, K).transpose(1, 2)
        v = lin(x, p + "v_proj").view(b, t, N, K).transpose(1, 2)
        if cfg["qk_norm"]:
            q, k = norm(q, p + "q_norm", "rms"), norm(k, p + "k_norm", "rms")
        if cfg["position"]["kind"] == "rope":
            q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(G, 1), v.repeat_interleave(G, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(K)
        s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        y = torch.softmax(s, -1) @ v
        return lin(y.transpose(1, 2).reshape(b, t, D), p + "o_proj")

    def mlp(x, p):
        if p + "gate_proj.weight" in w:
            return lin(act(lin(x, p + "gate_proj")) * lin(x, p + "up_proj"), p + "down_proj")
        return lin(act(lin(x, p + "up_proj")), p + "down_proj")

    x = w["model.embed_tokens.weight"][tok]
    if "model.embed_positions.weight" in w:
        x = x + w["model.embed_positions.weight"][:t]
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        if cfg["parallel_residual"]:
            x = x + attn(norm(x, p + "input_layernorm"), p + "self_attn.") + mlp(norm(x, p + "post_attention_layernorm"), p + "mlp.")
        else:
            x = x + attn(norm(x, p + "input_layernorm"), p + "self_attn.")
            x = x + mlp(norm(x, p + "post_attention_layernorm"), p + "mlp.")
    x = norm(x, "model.norm")
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


for name, cfg in CONFIGS.items():
    w = make(cfg)
    seq = torch.arange(B * (T + 1)).view(B, T + 1)
    seq = (seq * 7 + seq * seq * 3 + 1) % cfg["vocab_size"]
    tok, tgt = seq[:, :-1], seq[:, 1:]
    logits = forward(cfg, w, tok)
    loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), tgt.reshape(-1))
    loss.backward()
    save_file({k: v.detach().float().contiguous() for k, v in w.items()}, f"{name}.weights.safetensors", metadata={"format": "pt"})
    out = {"tokens": tok.float(), "targets": tgt.float(), "logits": logits.detach().float(), "loss": loss.detach().float().reshape(1)}
    out.update({"grad." + k: v.grad.float() for k, v in w.items()})
    save_file(out, f"{name}.expected.safetensors")
    with open(f"{name}.config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    print(name, "loss", loss.item(), "tensors", len(w))
