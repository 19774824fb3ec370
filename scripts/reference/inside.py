"""Build dense GPT-2 checkpoints and record what TransformerLens 4.x computes on them: the activation cache, direct
logit attribution, activation patching and the head detectors, for tests/inspection/test_inside.py to compare
minigpt with, using NumPy alone.

    /work/venv-tl/bin/python -m scripts.reference.inside            # every fixture below
    /work/venv-tl/bin/python -m scripts.reference.inside dense      # or those named
        # -> tests/fixtures/inside/<name>/ config.json, model.safetensors, reference.json, reference.safetensors

The environment holds transformer_lens 4.x beside the CPU torch (pip install torch==2.13.0 first, then
transformer_lens, and tiktoken for common.py). Dense: transformers initialises every layer-norm weight to 1 and
every bias to 0, so a wrong fold of a layer norm or a bias would still pass; here every layer-norm weight is
scaled by a random factor in [0.5, 2] and every bias and layer-norm bias is random (densify).

How TransformerLens is run (offline, no tokenizer, token ids in): the checkpoint is loaded as transformers'
GPT2LMHeadModel and wrapped by transformer_lens.model_bridge.sources.build_bridge_from_module(hf_model,
"GPT2LMHeadModel", hf_config=...), then enable_compatibility_mode(fold_ln=True, center_writing_weights=False,
center_unembed=False, fold_value_biases=F): Hugging Face's basis (its logits to float32 rounding: no centring),
with ln_f folded into W_U and b_U, so that TransformerLens' own get_full_resid_decomposition / decompose_resid
(apply_ln=True) projected on W_U[:, token] plus b_U[token] are the logit; b_U is then ln_f's bias term, minigpt's
`leftover`. F is False, and True for the fold_value_biases records; centered=True is read with
center_unembed=True. Patching: transformer_lens.patching.get_act_patch_{resid_pre,attn_out,mlp_out,
attn_head_out_all_pos} with the metric logits[0, -1, answer] - logits[0, -1, wrong]. Detectors: head_detector's
get_*_detection_pattern and compute_head_attention_similarity_score on the cached patterns (detect_head itself
tokenizes text), with its defaults (error_measure="mul", no exclusion) and with both exclusions. No BOS is added.
"""

import copy
from importlib.metadata import version

import numpy as np
import torch
from safetensors.numpy import save_file
from transformer_lens import head_detector, patching
from transformer_lens.model_bridge.sources import build_bridge_from_module
from transformers import GPT2Config, GPT2LMHeadModel

from .common import FIXTURES, command_line, start_torch, versions, write_json

OUT = FIXTURES / "inside"
SPEC = {  # name: (seed, GPT2Config arguments)
    "dense": (21, dict(vocab_size=300, n_embd=64, n_layer=3, n_head=4, n_positions=64)),
    "dense-odd": (22, dict(vocab_size=97, n_embd=48, n_layer=2, n_head=3, n_inner=100, n_positions=32,
                           layer_norm_epsilon=1e-4)),
}
BLOCK_POINTS = ("hook_resid_pre", "ln1.hook_scale", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern",
                "attn.hook_z", "attn.hook_result", "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "mlp.hook_pre",
                "mlp.hook_post", "hook_mlp_out", "hook_resid_post")  # the names issue 23 lists, per block
PLACES = {"resid_pre": patching.get_act_patch_resid_pre, "attn_out": patching.get_act_patch_attn_out,
          "mlp_out": patching.get_act_patch_mlp_out, "head": patching.get_act_patch_attn_head_out_all_pos}
KINDS = {"previous_token": head_detector.get_previous_token_head_detection_pattern,
         "duplicate_token": head_detector.get_duplicate_token_head_detection_pattern,
         "induction": head_detector.get_induction_head_detection_pattern}


def hook_names(n_layer: int) -> list[str]:
    return (["hook_embed", "hook_pos_embed"] + [f"blocks.{l}.{p}" for l in range(n_layer) for p in BLOCK_POINTS]
            + ["ln_final.hook_scale"])


@torch.no_grad()
def densify(model: GPT2LMHeadModel):
    """Every layer-norm weight times a factor in [0.5, 2], every bias and layer-norm bias random, attention and
    MLP weights and the embeddings larger (peaked attention, logits that differ)."""
    for name, p in model.named_parameters():
        if ".ln_" in name or name.startswith("transformer.ln_f"):
            if name.endswith("weight"):
                p.mul_(0.5 + 1.5 * torch.rand_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.2 * torch.randn_like(p))
        elif name.endswith("weight"):
            p.mul_({"c_attn": 4.0, "c_fc": 3.0, "c_proj": 3.0, "wte": 5.0}.get(name.split(".")[-2], 1.0))


def build(seed: int, config: dict) -> GPT2LMHeadModel:
    """A random GPT2LMHeadModel of this shape, made dense."""
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**config, bos_token_id=None, eos_token_id=None,
                                       attn_implementation="eager")).eval()
    densify(model)
    model.tie_weights()
    return model


def bridge(model: GPT2LMHeadModel, fold_value_biases=False, center_unembed=False):
    """TransformerLens' bridge around a copy of the model, in Hugging Face's basis (see the docstring)."""
    b = build_bridge_from_module(copy.deepcopy(model), "GPT2LMHeadModel", hf_config=model.config)
    b.enable_compatibility_mode(disable_warnings=True, fold_ln=True, center_writing_weights=False,
                                center_unembed=center_unembed, fold_value_biases=fold_value_biases)
    b.set_use_attn_result(True)  # keep attn.hook_result, each head's output through its slice of W_O
    return b


def prompts(vocab: int, seed: int) -> dict:
    """The prompts: one for the cache and attribution, a clean/corrupted pair that differs at position 4, and a
    random sequence repeated (for the induction detector)."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, vocab, 10)
    corrupted = clean.copy()
    corrupted[4] = (clean[4] + 1 + rng.integers(0, vocab - 1)) % vocab
    half = rng.integers(0, vocab, 8)
    return {"cache": rng.integers(0, vocab, 12).tolist(), "clean": clean.tolist(), "corrupted": corrupted.tolist(),
            "repeated": np.concatenate([half, half]).tolist()}


def record_cache(b, ids, names) -> tuple[dict, np.ndarray]:
    _, cache = b.run_with_cache(torch.tensor([ids]))
    return {f"cache.{n}": cache[n][0].float().numpy() for n in names}, cache


def attribution(b, cache, case) -> tuple[list[str], np.ndarray, float]:
    """TransformerLens' decomposition at the position, through the frozen ln_f scale, projected on W_U."""
    if case["by"] == "head":
        stack, labels = cache.get_full_resid_decomposition(expand_neurons=False, apply_ln=True,
                                                           pos_slice=case["position"], return_labels=True)
    else:
        stack, labels = cache.decompose_resid(apply_ln=True, pos_slice=case["position"], return_labels=True)
    token, versus = case["token"], case["versus"]
    u, bias = b.W_U[:, token], b.b_U[token]
    if versus is not None:
        u, bias = u - b.W_U[:, versus], bias - b.b_U[versus]
    return labels, (stack.reshape(len(labels), -1) @ u).float().numpy(), float(bias)


def attribution_cases(model, ids, vocab) -> tuple[list, dict]:
    rng = np.random.default_rng(len(ids))
    token, versus = rng.choice(vocab, 2, replace=False).tolist()
    settings = [dict(by="head", fold_value_biases=False, centered=False, versus=None, position=-1),
                dict(by="head", fold_value_biases=True, centered=False, versus=None, position=-1),
                dict(by="layer", fold_value_biases=False, centered=False, versus=None, position=-1),
                dict(by="head", fold_value_biases=False, centered=False, versus=versus, position=5),
                dict(by="head", fold_value_biases=True, centered=True, versus=None, position=3)]
    cases, arrays = [], {}
    for i, s in enumerate(settings):
        b = bridge(model, fold_value_biases=s["fold_value_biases"], center_unembed=s["centered"])
        _, cache = b.run_with_cache(torch.tensor([ids]))
        labels, contributions, leftover = attribution(b, cache, s | {"token": token})
        cases.append(s | {"token": token, "labels": labels, "leftover": leftover})
        arrays[f"attribution.{i}"] = contributions
    return cases, arrays


def defaults(clean_logits, corrupted_logits) -> tuple[int, int]:
    """answer: the clean argmax; wrong: the corrupted argmax, or the clean runner-up if it is the answer."""
    answer, wrong = int(clean_logits.argmax()), int(corrupted_logits.argmax())
    return (answer, int(clean_logits.topk(2).indices[1])) if wrong == answer else (answer, wrong)


def record_patching(b, clean, corrupted) -> tuple[dict, dict]:
    clean_logits, clean_cache = b.run_with_cache(torch.tensor([clean]))
    corrupted_logits = b(torch.tensor([corrupted]))
    answer, wrong = defaults(clean_logits[0, -1], corrupted_logits[0, -1])
    metric = lambda logits: logits[0, -1, answer] - logits[0, -1, wrong]  # noqa: E731
    meta = {"answer": answer, "wrong": wrong, "clean_metric": float(metric(clean_logits)),
            "corrupted_metric": float(metric(corrupted_logits))}
    arrays = {f"patch.{where}": sweep(b, torch.tensor([corrupted]), clean_cache, metric).float().numpy()
              for where, sweep in PLACES.items()}
    return meta, arrays


def record_heads(cache, ids, n_layer, n_head) -> dict:
    arrays = {}
    for kind, detection_pattern in KINDS.items():
        detection = detection_pattern(torch.tensor([ids]))
        for suffix, exclude in (("", False), (".excluded", True)):
            scores = [[head_detector.compute_head_attention_similarity_score(
                cache["pattern", l][0, h], detection, exclude_bos=exclude, exclude_current_token=exclude,
                error_measure="mul") for h in range(n_head)] for l in range(n_layer)]
            arrays[f"heads.{kind}{suffix}"] = np.array(scores, dtype=np.float32)
    return arrays


@torch.no_grad()
def records(model: GPT2LMHeadModel, seed: int) -> tuple[dict, dict]:
    """What TransformerLens computes on the model: (the record for reference.json, the float32 arrays)."""
    c = model.config
    ids = prompts(c.vocab_size, seed)
    b = bridge(model)
    arrays, _ = record_cache(b, ids["cache"], hook_names(c.n_layer))
    arrays["hf.logits"] = model(torch.tensor([ids["cache"]])).logits[0].numpy()
    arrays["tl.logits"] = b(torch.tensor([ids["cache"]]))[0].float().numpy()
    cases, more = attribution_cases(model, ids["cache"], c.vocab_size)
    patch_meta, patched = record_patching(b, ids["clean"], ids["corrupted"])
    _, repeated_cache = b.run_with_cache(torch.tensor([ids["repeated"]]))
    heads = record_heads(repeated_cache, ids["repeated"], c.n_layer, c.n_head)
    # contiguous copies: safetensors' save_file writes an array's buffer as it lies in memory
    arrays = {k: np.ascontiguousarray(v) for k, v in (arrays | more | patched | heads).items()}
    record = {"prompts": ids, "attribution": cases, "patch": patch_meta, "arrays": sorted(arrays),
              "settings": "fold_ln=True, center_writing_weights=False, center_unembed=False (True for centered), "
                          "fold_value_biases=False (True where the case says)",
              "versions": versions() | {"transformer_lens": version("transformer_lens")}}
    return record, arrays


def make(name: str):
    folder = OUT / name
    model = build(*SPEC[name])
    model.save_pretrained(folder)  # config.json + model.safetensors, lm_head tied to wte
    record, arrays = records(model, SPEC[name][0])
    save_file(arrays, str(folder / "reference.safetensors"))
    print(write_json(folder / "reference.json", record, flat_lists=True))


def main():
    args = command_line(__doc__, names=list(SPEC))
    start_torch(seed=0)
    for name in args.names or SPEC:
        make(name)


if __name__ == "__main__":
    main()
