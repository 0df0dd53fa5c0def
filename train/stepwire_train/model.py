"""The policy network: one Llama-shaped decoder for all three roles, built from a config (no
download), with fast hidden-state / target-logit helpers for packed batches."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from .tokenizer import BOS, EOS, PAD
from .util import UserError

# About 4 M parameters with a 4,000-token vocabulary: small enough to train from scratch on two CPU
# cores in hours (see ../shared/DESIGN.md "Training") and to export under 20 MB.
DEFAULTS = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=704, max_position_embeddings=1024)


def make_config(vocab_size: int, **sizes) -> LlamaConfig:
    s = {**DEFAULTS, **{k: v for k, v in sizes.items() if v is not None}}
    if s["hidden_size"] % s["num_attention_heads"]:
        raise UserError("--hidden must be a multiple of --heads")
    if s["num_attention_heads"] % s["num_key_value_heads"]:
        raise UserError("--heads must be a multiple of --kv-heads")
    return LlamaConfig(
        vocab_size=vocab_size, **s, head_dim=s["hidden_size"] // s["num_attention_heads"],
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu",
        attention_bias=False, mlp_bias=False, initializer_range=0.02,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, dtype="float32",
    )


def new_model(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa")
    _generation_defaults(model)
    return model


def from_config_dict(d: dict) -> LlamaForCausalLM:
    """An (uninitialised) model of a checkpoint's config, for loading its state dict."""
    model = LlamaForCausalLM._from_config(LlamaConfig.from_dict(d), attn_implementation="sdpa")
    _generation_defaults(model)
    return model


def _generation_defaults(model) -> None:
    g = model.generation_config
    g.do_sample, g.pad_token_id, g.eos_token_id, g.bos_token_id = False, PAD, EOS, BOS


def load_model(hf_dir: str | Path) -> LlamaForCausalLM:
    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise UserError(f"{hf_dir}: no config.json; expected the `hf/` folder that `bc` or `rl` "
                        "writes")
    model = LlamaForCausalLM.from_pretrained(hf_dir, attn_implementation="sdpa",
                                             dtype=torch.float32)
    _generation_defaults(model)
    return model


def save_model(model, hf_dir: Path) -> None:
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(hf_dir, safe_serialization=True)


def n_params(model) -> int:
    # Tied embeddings are one tensor: count each parameter once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def hidden_states(backbone, batch: dict) -> torch.Tensor:
    """Final-norm hidden states [B*W, H] of a packed batch (block-diagonal causal mask)."""
    out = backbone(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                   attention_mask=batch["attn_mask"], use_cache=False)
    h = out.last_hidden_state
    return h.reshape(-1, h.shape[-1])


def target_logprobs(model, flat_hidden: torch.Tensor, batch: dict) -> torch.Tensor:
    """Log-probability of every target token; the LM head runs on target positions only (most
    positions are prompt, whose logits training never reads)."""
    logits = model.lm_head(flat_hidden.index_select(0, batch["pred_idx"]))
    return -torch.nn.functional.cross_entropy(logits.float(), batch["pred_labels"],
                                              reduction="none")


def config_summary(config) -> str:
    return json.dumps({k: getattr(config, k) for k in
                       ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "intermediate_size", "max_position_embeddings")})
