"""Build a deeper test checkpoint and record what transformers 4.46's DoLa decoding generates on it, so that
tests/sources/test_dola.py can replay it against minigpt without torch.

    <env>/bin/python -m scripts.reference.dola
        # -> tests/fixtures/dola-model/ (config.json + model.safetensors, 12 layers, float16)
        #    tests/fixtures/strategies/dola.json (+ dola.safetensors: processed scores of the first steps)

<env> is an environment of transformers 4.46 (scripts/reference/__init__.py says how to make one).
transformers 5 moved DoLa out of its core (to a hub "custom_generate" repository); 4.46 still runs it inside
generate() when dola_layers is set (GenerationMixin._dola_decoding). The fixture models have 2 or 3 layers,
too few for "low" and "high" to differ, so this script writes a 12-layer model ("low" = [2, 4], "high" =
[6, 8, 10]), sharpened as the other fixture models are (common.sharpen, its sample drawn from torch's generator
after the noise), so that layers disagree and DoLa departs from greedy decoding.

Each case: a prompt, the options under minigpt's names, transformers' greedy tokens, the premature
layer transformers chose at each step, and (in dola.safetensors, under the case's name) the scores
[STEPS, V] its processors produced at the first steps (generate's output_scores). Also, for models of
1 to 48 layers, the candidate layers transformers takes for "low" and "high" (null where it fails). That choice
is not an output of generate(); it is found by wrapping transformers' own _dola_select_contrast and asking which
candidate layer reproduces the scores it returned.
read_out "raw" is transformers as it is (lm_head applied to the hidden state without ln_f); read_out "lens"
runs the same code with the output embeddings replaced by ln_f followed by lm_head, i.e. the logit lens.
"""

import sys

import numpy as np
import torch
import transformers.generation.utils as generation_utils
from safetensors.numpy import save_file
from transformers import GPT2Config, GPT2LMHeadModel

from .common import (FIXTURES, ROOT, STRATEGIES, command_line, cut_after, fit_final_norm, reference_model,
                     scale_weights, start_torch, versions, write_json)

FOLDER = FIXTURES / "dola-model"
OUT = STRATEGIES / "dola.json"
CONFIG = dict(vocab_size=256, n_embd=12, n_layer=12, n_head=2, n_positions=64)
SEED = 12
STEPS = 3  # processed scores kept per case


@torch.no_grad()
def build_model() -> GPT2LMHeadModel:
    """The 12-layer model, sharpened: common.sharpen's two steps, with the sample drawn between them."""
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(GPT2Config(**CONFIG, bos_token_id=None, eos_token_id=None)).eval()
    scale_weights(model)
    fit_final_norm(model, torch.randint(0, CONFIG["vocab_size"], (8, 32)))
    return model


chosen_layers = []  # filled by the wrapper below during one generate() call
candidates = []  # the candidate layers transformers passed, likewise


def recording_select_contrast(candidate_layers, candidate_logits, final_logits):
    """transformers' _dola_select_contrast, noting which candidate layer its result came from."""
    candidates.append(list(candidate_layers))
    result = original_select_contrast(candidate_layers, candidate_logits, final_logits)
    filtered = {j: generation_utils._relative_top_filter(final_logits, candidate_logits[j]) for j in candidate_layers}
    matches = [j for j in candidate_layers if torch.equal(torch.sub(*filtered[j]), result)]
    chosen_layers.append(matches[0] if len(matches) == 1 else None)
    return result


def record_the_chosen_layers():
    """Wrap transformers 4.46's _dola_select_contrast so that each step notes the layer it chose."""
    global original_select_contrast
    original_select_contrast = generation_utils._dola_select_contrast
    generation_utils._dola_select_contrast = recording_select_contrast


def run(model, prompt, options, read_out):
    """transformers' greedy DoLa; new tokens and the premature layer of each step."""
    options = dict(options)
    options.pop("dola_read_out", None)
    eos = options["eos_token_id"]
    if read_out == "lens":
        lens = torch.nn.Sequential(model.transformer.ln_f, model.lm_head)
        model.get_output_embeddings = lambda: lens
    chosen_layers.clear()
    with torch.no_grad():
        ids = torch.tensor([prompt])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0,
                             use_cache=True, output_scores=True, return_dict_in_generate=True, **options)
    if read_out == "lens":
        del model.get_output_embeddings
    new = cut_after(out.sequences[0, len(prompt):].tolist(), eos)
    scores = torch.stack(out.scores[:STEPS])[:, 0].numpy()  # [STEPS, V] after the processors
    return new, list(chosen_layers[: len(new)]), scores


def candidate_layers(n_layer, dola_layers):
    """The candidate premature layers transformers uses for dola_layers on an n_layer model (None: it fails)."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=8, n_embd=4, n_layer=n_layer, n_head=1, n_positions=8)).eval()
    candidates.clear()
    try:
        with torch.no_grad():
            model.generate(input_ids=torch.tensor([[1, 2]]), max_new_tokens=1, do_sample=False, pad_token_id=0,
                           dola_layers=dola_layers)
    except (RuntimeError, ValueError):
        return None
    return candidates[0]


def cases(rng) -> list[tuple]:
    """(name, prompt, options) of every case, for both read-outs."""
    prompt = lambda n: [int(t) for t in rng.integers(0, CONFIG["vocab_size"], size=n)]  # noqa: E731
    never = dict(max_new_tokens=16, eos_token_id=CONFIG["vocab_size"])  # end-of-text outside the vocabulary
    found = []
    for read_out in ("raw", "lens"):
        found += [
            (f"{read_out}-low", prompt(5), dict(dola_layers="low", **never)),
            (f"{read_out}-high", prompt(7), dict(dola_layers="high", **never)),
            (f"{read_out}-high-repetition-penalty", prompt(6),
             dict(dola_layers="high", repetition_penalty=1.2, **never)),
            (f"{read_out}-list", prompt(4), dict(dola_layers=[0, 3, 5, 11], **never)),
            (f"{read_out}-one-layer", prompt(8), dict(dola_layers=[7], **never)),
            (f"{read_out}-one-token-prompt", prompt(1), dict(dola_layers="low", repetition_penalty=1.2, **never)),
        ]
    return found


def main():
    command_line(__doc__)
    record_the_chosen_layers()
    start_torch(threads=None)
    FOLDER.mkdir(parents=True, exist_ok=True)
    model = build_model()
    model.half().save_pretrained(FOLDER)  # float16: small; lm_head is tied to wte and not written
    model = reference_model(FOLDER)  # the float32 model of the stored float16 weights, as minigpt reads them
    records, arrays = [], {}
    for name, p, options in cases(np.random.default_rng(SEED)):
        read_out = name.split("-")[0]
        options = dict(options, dola_read_out=read_out)
        sequence, layers, scores = run(model, p, options, read_out)
        arrays[name] = np.ascontiguousarray(scores, dtype=np.float32)
        greedy, _, _ = run(model, p, {k: v for k, v in options.items() if k != "dola_layers"}, "raw")
        records.append(dict(name=name, prompt=p, options=options, sequence=sequence, layers=layers, greedy=greedy))
        print(f"{name}: {'differs from' if sequence != greedy else 'equals'} greedy; layers {layers}", file=sys.stderr)
    layers = {n: {which: candidate_layers(n, which) for which in ("low", "high")}
              for n in (1, 2, 3, 4, 5, 6, 7, 12, 24, 40, 41, 48)}
    path = write_json(OUT, {**versions(), "model": "dola-model", "candidate_layers": layers, "cases": records})
    save_file(arrays, str(OUT.with_suffix(".safetensors")))
    print(f"wrote {FOLDER.relative_to(ROOT)} and {len(records)} cases to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
