"""Build small random GPT-2 checkpoints with transformers and record what transformers computes on them.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.logits              # writes tests/fixtures/<name>/ for every fixture below
    python -m scripts.reference.logits fullvocab    # or only the ones named

tests/call/test_parity.py then checks minigpt against these records with NumPy alone. Everything is seeded and
runs on one thread, so re-running the script rewrites the same bytes (up to the versions the records name).

Each fixture folder holds
    config.json, model.safetensors   the checkpoint, in the key layout named in FIXTURES_SPEC
    reference.safetensors            float32 arrays recorded from transformers, named in reference.json
    reference.json                   prompts, generated tokens, settings, versions, sharpening statistics

Each model is sharpened (common.sharpen) so that it looks trained: the top token gets half the probability at
the median position. With random embeddings the logits over the vocabulary are close to Gaussian, so at that
sharpness 90% of the mass sits on about ten tokens; a trained model's tail is heavier (about a hundred). The
script prints both statistics.
"""

import json
from pathlib import Path

import numpy as np
import safetensors
import tiktoken
import torch
import transformers
from safetensors.numpy import save_file
from transformers import GPT2Config, GPT2LMHeadModel

from . import common
from .common import EOT, FIXTURES, command_line, cut_after, gpt2_encoding, left_pad, sharpen, start_torch, write_json

FIXTURES_SPEC = {
    # The hub's own layout (what huggingface.co/gpt2 ships): no "transformer." prefix, the attention-mask
    # buffers "h.N.attn.bias" and "h.N.attn.masked_bias" that a loader must skip, no lm_head.weight.
    "tiny-hub": dict(seed=1, layout="hub", dtype="float32", prompt_lengths=[1, 5, 17, 125],
                     config=dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=128)),
    # save_pretrained's layout ("transformer." prefix) with lm_head.weight written out (equal to wte).
    "tiny-pretrained": dict(seed=2, layout="pretrained+lm_head", dtype="float32", prompt_lengths=[1, 6, 23, 64],
                            config=dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=128)),
    # Odd shapes, an explicit n_inner, a non-default epsilon, float16 weights, a prompt filling n_positions.
    "odd-f16": dict(seed=3, layout="pretrained", dtype="float16", prompt_lengths=[1, 4, 13, 40],
                    config=dict(vocab_size=777, n_embd=48, n_layer=3, n_head=3, n_inner=100, n_positions=40,
                                layer_norm_epsilon=1e-4)),
    # GPT-2's real vocabulary, so text runs end to end through the tokenizer; float16 to stay small.
    "fullvocab": dict(seed=4, layout="pretrained", dtype="float16",
                      config=dict(vocab_size=50257, n_embd=32, n_layer=2, n_head=2, n_positions=1024)),
}
FULLVOCAB_TEXTS = [
    "The dog",
    "Hello, my dog is a little",
    "Today, I",
    "Naïve café owners in Zürich said: \"we'll open at 9:30\" — 東京 too!\n\n  Indented line\twith a tab.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who had never caught a fish. " * 4,
]
FULLVOCAB_KEEP = 1  # full-vocabulary logits are 200 KB a position: keep the last position (all of "The dog")

# ----------------------------------------------------------------------------- the model


def build_model(config: dict, seed: int) -> GPT2LMHeadModel:
    """A random GPT2LMHeadModel in eval mode; eos/bos left unset so generate() uses only what we pass."""
    torch.manual_seed(seed)
    cfg = GPT2Config(**config, bos_token_id=None, eos_token_id=None, attn_implementation="eager")
    model = GPT2LMHeadModel(cfg).eval()
    model.generation_config.bos_token_id = model.generation_config.eos_token_id = None
    return model


def quartiles(x: torch.Tensor) -> list[float]:
    q = torch.quantile(x.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.double))
    return [round(v, 3) for v in q.tolist()]


def next_token_stats(logits: torch.Tensor) -> dict:
    """Quartiles over all positions of the top token's probability and of how many tokens hold 90% of the mass."""
    probs = torch.softmax(logits.double(), -1).reshape(-1, logits.shape[-1])
    top = probs.sort(-1, descending=True).values  # [positions, V], most probable first
    n90 = (top.cumsum(-1) < 0.9).sum(-1) + 1
    return {"top1_prob_quartiles": quartiles(top[:, 0]), "tokens_for_90pct_quartiles": quartiles(n90)}


@torch.no_grad()
def round_weights(model: GPT2LMHeadModel, dtype: str):
    """Round every weight to `dtype` and back, so the float32 model computes with the stored values."""
    for p in model.parameters():
        p.copy_(p.to(getattr(torch, dtype)).float())


def write_checkpoint(model: GPT2LMHeadModel, folder: Path, layout: str, dtype: str):
    """config.json + model.safetensors in the given key layout (see FIXTURES_SPEC)."""
    if layout == "hub":
        state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items() if k != "lm_head.weight"}
        n = model.config.n_positions
        for i in range(model.config.n_layer):  # the buffers older transformers saved in every block
            state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
            state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        arrays = {k: v.numpy().astype(dtype) for k, v in state.items()}
        save_file(arrays, str(folder / "model.safetensors"), metadata={"format": "pt"})
        config = json.loads(model.config.to_json_string())  # shaped like gpt2's config.json on the hub:
        del config["n_inner"]  # no n_inner key (it means 4 * n_embd), an n_ctx, the architecture
        config.update(n_ctx=model.config.n_positions, architectures=["GPT2LMHeadModel"])
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return
    model.to(getattr(torch, dtype)).save_pretrained(folder)  # drops lm_head.weight: it is tied to wte
    model.float()
    if layout == "pretrained+lm_head":
        state = {k: v.numpy().astype(dtype) for k, v in model.state_dict().items()}
        assert np.array_equal(state["lm_head.weight"], state["transformer.wte.weight"])
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


# ----------------------------------------------------------------------------- what transformers computes


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token among the real ones, as generate() computes it (padding gets 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def record_logits(model, prompts, keep):
    """Logits [T, V] of each prompt alone; if keep is set, only the last `keep` positions after the first prompt."""
    logits = {f"logits.{i}": model(torch.tensor([p])).logits[0] for i, p in enumerate(prompts)}
    return {k: v[-keep:] if keep and k != "logits.0" else v for k, v in logits.items()}


@torch.no_grad()
def record_batch(model, prompts, pad_id, keep):
    """Left-padded batch with attention_mask and positions from the mask: logits [B, keep or T, V]."""
    ids, mask = left_pad(prompts, pad_id)
    logits = model(ids, attention_mask=mask, position_ids=positions(mask)).logits
    meta = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "pad_id": pad_id}
    return meta, {"batch.logits": logits[:, -keep if keep else 0:]}


@torch.no_grad()
def record_steps(model, prompts, pad_id, steps: list[list[int]]):
    """Prefill the left-padded prompts, then feed one token per row per step through transformers' cache.

    Array "steps.logits" is [1 + len(steps), B, V]: the last position after the prefill, then each step's."""
    ids, mask = left_pad(prompts, pad_id)
    out = model(ids, attention_mask=mask, position_ids=positions(mask), use_cache=True)
    cache, pos, logits = out.cache, positions(mask)[:, -1:], [out.logits[:, -1]]
    for step in steps:
        mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=mask.dtype)], 1)
        pos = pos + 1
        out = model(torch.tensor(step)[:, None], cache=cache, attention_mask=mask, position_ids=pos, use_cache=True)
        cache = out.cache
        logits.append(out.logits[:, -1])
    meta = {"prompts": prompts, "pad_id": pad_id, "tokens": steps}
    return meta, {"steps.logits": torch.stack(logits)}


@torch.no_grad()
def record_hidden(model, prompt):
    """transformers' hidden_states[-1]: the final hidden state after ln_f, [T, C]."""
    out = model(torch.tensor([prompt]), output_hidden_states=True)
    assert torch.allclose(out.hidden_states[-1] @ model.lm_head.weight.T, out.logits, atol=1e-4)
    return {"hidden": out.hidden_states[-1][0]}


@torch.no_grad()
def greedy(model, prompts, max_new_tokens, eos_token_id, min_new_tokens=0, pad_id=0):
    """transformers' greedy generate() on a left-padded batch; new tokens per row, cut after eos."""
    ids, mask = left_pad(prompts, pad_id)
    out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                         min_new_tokens=min_new_tokens, eos_token_id=eos_token_id,
                         pad_token_id=pad_id if eos_token_id is None else eos_token_id)
    sequences = [cut_after(row, eos_token_id) for row in out[:, ids.shape[1]:].tolist()]
    reasons = ["eos" if s and s[-1] == eos_token_id else "length" for s in sequences]
    return {"prompts": prompts, "max_new_tokens": max_new_tokens, "min_new_tokens": min_new_tokens,
            "eos_token_id": eos_token_id, "pad_id": pad_id, "sequences": sequences, "finish_reasons": reasons}


def first_new_token(sequence: list[int], start: int) -> int:
    """A token whose first occurrence is at index >= start if there is one, else the latest first occurrence:
    used as eos, it stops generation at that index."""
    firsts = [i for i, t in enumerate(sequence) if t not in sequence[:i]]
    return sequence[next((i for i in firsts if i >= start), firsts[-1])]


def generation_cases(model, prompts, vocab_size, max_new_tokens=12):
    """Greedy cases: eos never generated, eos generated, eos held back by min_new_tokens; single and batch."""
    single, batch = prompts[1:2], prompts
    free_single, free_batch = (greedy(model, p, max_new_tokens, None)["sequences"] for p in (single, batch))
    produced = {t for s in free_single + free_batch for t in s}
    absent = max(t for t in range(vocab_size) if t not in produced)  # an eos that is never generated
    eos_single = first_new_token(free_single[0], start=3)
    eos_batch = first_new_token(free_batch[0], start=2)  # row 0 stops early, the others may not
    # min_new_tokens a few steps past where eos came, so that it is held back there
    min_single, min_batch = free_single[0].index(eos_single) + 3, free_batch[0].index(eos_batch) + 2
    return [
        greedy(model, single, max_new_tokens, absent),
        greedy(model, single, max_new_tokens, eos_single),
        greedy(model, single, max_new_tokens, eos_single, min_new_tokens=min_single),
        greedy(model, batch, max_new_tokens, absent),
        greedy(model, batch, max_new_tokens, eos_batch),
        greedy(model, batch, max_new_tokens, eos_batch, min_new_tokens=min_batch),
    ]


# ----------------------------------------------------------------------------- the fixtures


def sharpened_checkpoint(folder: Path, spec: dict, rng: np.random.Generator) -> tuple:
    """The fixture's model, built, sharpened, rounded to its dtype and written to folder.
    -> (the model, ln_f's factor, the next-token statistics of the sharpened model)"""
    config = spec["config"]
    model = build_model(config, spec["seed"])
    sample = torch.from_numpy(rng.integers(0, config["vocab_size"], (8, min(32, config["n_positions"]))))
    scale = sharpen(model, sample)
    round_weights(model, spec["dtype"])
    with torch.no_grad():
        stats = next_token_stats(model(sample).logits)
    folder.mkdir(parents=True, exist_ok=True)
    write_checkpoint(model, folder, spec["layout"], spec["dtype"])
    return model, scale, stats


def record_passes(model, name: str, spec: dict, rng: np.random.Generator) -> tuple:
    """The forward passes recorded: each prompt alone, a left-padded batch, cached steps, the final hidden state.
    -> (prompts, arrays, the batch's settings, the steps' settings)"""
    vocab = spec["config"]["vocab_size"]
    if name == "fullvocab":
        prompts, keep, pad_id = [gpt2_encoding().encode(t) for t in FULLVOCAB_TEXTS], FULLVOCAB_KEEP, EOT
        batch_prompts, step_prompts, n_steps = prompts[1:3], prompts[:1], 1
    else:
        prompts = [rng.integers(0, vocab, n).tolist() for n in spec["prompt_lengths"]]
        keep, pad_id = None, 0
        batch_prompts, step_prompts, n_steps = prompts[:3], prompts[1:3], 6
    arrays = record_logits(model, prompts, keep)
    batch_meta, batch_arrays = record_batch(model, batch_prompts, pad_id, keep)
    steps = rng.integers(0, vocab, (n_steps, len(step_prompts))).tolist()
    steps_meta, steps_arrays = record_steps(model, step_prompts, pad_id, steps)
    arrays |= batch_arrays | steps_arrays | record_hidden(model, prompts[1])
    return prompts, arrays, batch_meta, steps_meta


def fullvocab_generations(model, prompts) -> list[dict]:
    """Greedy cases on real text, with the texts and the generated tokens decoded."""
    enc = gpt2_encoding()
    generations = [greedy(model, prompts[1:3], 13, EOT, pad_id=EOT), greedy(model, prompts[:1], 18, EOT)]
    eos = first_new_token(generations[0]["sequences"][1], start=2)
    generations.append(greedy(model, prompts[1:3], 13, eos, pad_id=EOT))  # row 1 stops on this token
    for g in generations:
        g["texts"] = [enc.decode(p) for p in g["prompts"]]
        g["decoded"] = [enc.decode(s) for s in g["sequences"]]
    return generations


def settings(spec: dict, ln_f_scale: float) -> dict:
    """How the checkpoint was made, as reference.json states it."""
    sharpening = {"attn_scale": common.ATTN_SCALE, "fc_scale": common.FC_SCALE, "proj_scale": common.PROJ_SCALE,
                  "param_noise": common.PARAM_NOISE, "ln_f_scale": round(ln_f_scale, 6),
                  "target_top_prob": common.TARGET_TOP_PROB}
    return {"config": spec["config"], "seed": spec["seed"], "layout": spec["layout"], "dtype": spec["dtype"],
            "attn_implementation": "eager", "torch_threads": torch.get_num_threads(), "sharpening": sharpening}


def make_fixture(name: str, spec: dict):
    """tests/fixtures/<name>/: the checkpoint, and what transformers computes on it."""
    folder, vocab = FIXTURES / name, spec["config"]["vocab_size"]
    rng = np.random.default_rng(spec["seed"])
    model, scale, stats = sharpened_checkpoint(folder, spec, rng)
    prompts, arrays, batch_meta, steps_meta = record_passes(model, name, spec, rng)
    if name == "fullvocab":
        generations = fullvocab_generations(model, prompts)
    else:
        generations = generation_cases(model, prompts[:3], vocab)
    assert any(r == "eos" for g in generations for r in g["finish_reasons"])
    reference = {
        "fixture": name,
        # The script's name before scripts/ became a package (python -m scripts.reference.logits): kept, so that a
        # rerun on the same versions writes the same bytes.
        "about": "transformers' outputs on this checkpoint, recorded by python -m scripts.reference.logits",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
                     "safetensors": safetensors.__version__, "tiktoken": tiktoken.__version__},
        "settings": settings(spec, scale),
        "next_token_stats": stats,
        "prompts": prompts,
        "texts": FULLVOCAB_TEXTS if name == "fullvocab" else None,
        "logits_keep": {f"logits.{i}": int(arrays[f"logits.{i}"].shape[0]) for i in range(len(prompts))},
        "batch": batch_meta,
        "steps": steps_meta,
        "hidden_prompt": 1,
        "generations": generations,
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
    }
    save_file({k: v.detach().float().contiguous().numpy() for k, v in arrays.items()},
              str(folder / "reference.safetensors"))
    write_json(folder / "reference.json", reference)
    print(f"{name:16s} ln_f x{scale:7.3f}  top-1 prob quartiles {stats['top1_prob_quartiles']}  "
          f"tokens holding 90% quartiles {stats['tokens_for_90pct_quartiles']} of {vocab}")


def main():
    args = command_line(__doc__, names=list(FIXTURES_SPEC))
    start_torch(threads=1)
    for name in args.names or list(FIXTURES_SPEC):
        make_fixture(name, FIXTURES_SPEC[name])


if __name__ == "__main__":
    main()
