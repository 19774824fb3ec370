"""What the fixture-making scripts share: a test checkpoint as transformers' GPT2LMHeadModel, and
left padding as torch tensors. Needs torch and transformers (the `reference` extra); imports nothing
of minigpt, so that it also runs under an older transformers (4.46, for diverse beam search)."""

from pathlib import Path

import torch
from safetensors.numpy import load_file
from transformers import GPT2Config, GPT2LMHeadModel


def reference_model(folder) -> GPT2LMHeadModel:
    """tests/fixtures/<name> as a float32 GPT2LMHeadModel, from either key layout: the hub's (no prefix,
    with causal-mask buffers, which are skipped) or save_pretrained's ("transformer."); lm_head tied to wte."""
    folder = Path(folder)
    config = GPT2Config.from_json_file(str(folder / "config.json"))
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config).eval()
    state = {}
    for key, value in load_file(str(folder / "model.safetensors")).items():
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        state[key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key] = torch.from_numpy(value).float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise RuntimeError(f"{folder}: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    return model


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> ids [B, T] and attention_mask [B, T], padded on the left (as minigpt.prompts.left_pad)."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, T - len(prompt) :] = torch.tensor(prompt)
        mask[row, T - len(prompt) :] = 1
    return ids, mask
