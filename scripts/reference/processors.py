"""Record what transformers' logits processors do, so that the tests can check our links without torch.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.processors          # writes tests/fixtures/processors/cases.{safetensors,json}

Each case is one link (named as in minigpt.links.chain.LINKS, with its constructor's parameters) or one whole
chain (build_chain's options), random logits [B, V] with ties and -inf entries, a random id history [B, t], and
the scores transformers returns for them. The arrays go to cases.safetensors under "<case>.logits",
"<case>.ids", "<case>.expected"; cases.json holds the rest. The links added since the first record (sequence
bias, the prompt's penalties, allowed tokens, forced end-of-text, the length decay, top-h, renormalisation) are
recorded after the first cases, each case drawn from the same seeded generator, so that those stay as they were.
A prefix_allowed_tokens_fn cannot be written to JSON: its cases hold a table, {"allowed": [tokens of each row]},
and `allowed_fn` makes the function from it (the row's tokens, and the last id of the row).

`reference_processor` and `reference_chain` say which transformers class stands for which of ours;
tests/links/test_processors.py uses them too when torch and transformers are installed.
"""

import warnings
from functools import lru_cache

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel
from transformers.generation import logits_process as hf

from minigpt.links.chain import LINKS

from .common import FIXTURES, command_line, sequence_bias, start_torch, versions, write_json

OUT = FIXTURES / "processors"
CASES_PER_PROCESSOR = 6
CHAIN_CASES = 12
# The links recorded one by one, in the order of the records: those with a transformers counterpart.
NAMES = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
         "no_repeat_ngram", "bad_words", "logit_bias", "min_new_tokens", "suppress_tokens")
NEW_NAMES = ("sequence_bias", "encoder_repetition_penalty", "encoder_no_repeat_ngram", "allowed_tokens", "forced_eos",
             "exponential_decay_length_penalty", "top_h", "renormalize")
# The cut-offs: our link -> (transformers' warper, its keyword for the link's parameter, that parameter); each also
# takes min_tokens_to_keep.
CUT_OFFS = {
    "top_k": (hf.TopKLogitsWarper, "top_k", "k"),
    "top_p": (hf.TopPLogitsWarper, "top_p", "p"),
    "min_p": (hf.MinPLogitsWarper, "min_p", "p"),
    "typical_p": (hf.TypicalLogitsWarper, "mass", "p"),
    "epsilon_cutoff": (hf.EpsilonLogitsWarper, "epsilon", "epsilon"),
    "eta_cutoff": (hf.EtaLogitsWarper, "epsilon", "epsilon"),
}


def allowed_fn(table):
    """A prefix_allowed_tokens_fn from a case's table: the tokens listed for the row's prompt, and the row's last id
    (a NumPy array for minigpt, a torch tensor for transformers: both index alike)."""
    return lambda batch_id, ids: list(table[batch_id]) + ([int(ids[-1])] if len(ids) else [])


def link_params(name, params):
    """A case's parameters as LINKS[name] takes them: allowed_tokens' table made its function."""
    return {"fn": allowed_fn(params["allowed"])} if name == "allowed_tokens" else params


def reference_processor(name, params, ids=None):
    """The transformers LogitsProcessor equivalent to LINKS[name](**link_params(name, params)); ids [B, t], the
    history it will run on, gives the prompt's penalties their prompt (ids[:, :prompt_length])."""
    p = dict(params)
    keep = p.get("min_tokens_to_keep", 1)
    if name in NEW_NAMES:
        return new_reference_processor(name, p, ids)
    if name == "temperature":
        return hf.TemperatureLogitsWarper(float(p["t"]))
    if name in CUT_OFFS:
        warper, keyword, parameter = CUT_OFFS[name]
        return warper(**{keyword: p[parameter]}, min_tokens_to_keep=keep)
    if name == "repetition_penalty":
        skip = p.get("prompt_ignore_length")
        skip = torch.tensor(skip) if isinstance(skip, list) else skip
        return hf.RepetitionPenaltyLogitsProcessor(float(p["penalty"]), prompt_ignore_length=skip)
    if name == "no_repeat_ngram":
        return hf.NoRepeatNGramLogitsProcessor(p["n"])
    if name == "bad_words":
        return hf.NoBadWordsLogitsProcessor(p["sequences"], eos_token_id=p.get("eos_token_id"))
    if name == "logit_bias":
        return hf.SequenceBiasLogitsProcessor(sequence_bias(p["bias"]))
    if name == "min_new_tokens":
        return hf.MinNewTokensLengthLogitsProcessor(p["prompt_length"], p["min_new_tokens"], p["eos_token_id"])
    if name == "suppress_tokens":
        return hf.SuppressTokensLogitsProcessor(p["token_ids"])
    raise KeyError(f"transformers has no counterpart of {name}")


def new_reference_processor(name, p, ids):
    """reference_processor for the links recorded since the first record."""
    prompt = None if ids is None else torch.from_numpy(ids[:, : p.get("prompt_length", 0)].copy())
    if name == "sequence_bias":
        return hf.SequenceBiasLogitsProcessor([[list(map(int, s)), float(b)] for s, b in p["bias"]])
    if name == "encoder_repetition_penalty":
        return hf.EncoderRepetitionPenaltyLogitsProcessor(float(p["penalty"]), encoder_input_ids=prompt)
    if name == "encoder_no_repeat_ngram":
        return hf.EncoderNoRepeatNGramLogitsProcessor(p["n"], encoder_input_ids=prompt)
    if name == "allowed_tokens":
        return hf.PrefixConstrainedLogitsProcessor(allowed_fn(p["allowed"]), 1)
    if name == "forced_eos":
        return hf.ForcedEOSTokenLogitsProcessor(p["prompt_length"] + p["max_new_tokens"], p["token_id"])
    if name == "exponential_decay_length_penalty":
        return hf.ExponentialDecayLengthPenalty(tuple(p["decay"]), p["eos_token_id"], p["prompt_length"])
    if name == "top_h":
        return hf.TopHLogitsWarper(top_h=float(p["h"]))
    if name == "renormalize":
        return hf.LogitNormalization()
    raise KeyError(name)


@lru_cache(maxsize=1)
def decoder_only_model() -> GPT2LMHeadModel:
    """The model whose _get_logits_processor builds the chains: any decoder-only model will do, since only its
    config's is_encoder_decoder is read."""
    transformers.logging.set_verbosity_error()  # it warns that sampling options go unused when not sampling
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, n_positions=8, vocab_size=8, bos_token_id=0,
                                      eos_token_id=0))


def chain_params(options):
    """A case's options as build_chain takes them: the allowed table made prefix_allowed_tokens_fn."""
    o = dict(options)
    table = o.pop("allowed", None)
    return o | ({"prefix_allowed_tokens_fn": allowed_fn(table)} if table is not None else {})


def reference_chain(options, prompt_length, vocab_size, ids=None):
    """transformers' own processor list for build_chain(**chain_params(options)), from
    GenerationMixin._get_logits_processor; ids [B, t] (when the prompt's penalties are on) gives their prompt.

    frequency/presence penalties have no transformers counterpart and must not be in options.
    """
    o = dict(options)
    biases = sequence_bias(o.get("logit_bias") or {}) + [[list(s), float(b)] for s, b in o.get("sequence_bias") or ()]
    config = GenerationConfig(
        do_sample=o["sampling"], temperature=o.get("temperature", 1.0), top_k=o.get("top_k", 0),
        top_p=o.get("top_p", 1.0), min_p=o.get("min_p") or None, typical_p=o.get("typical_p", 1.0),
        epsilon_cutoff=o.get("epsilon_cutoff", 0.0), eta_cutoff=o.get("eta_cutoff", 0.0),
        repetition_penalty=o.get("repetition_penalty", 1.0),
        no_repeat_ngram_size=o.get("no_repeat_ngram_size", 0), bad_words_ids=o.get("bad_words_ids") or None,
        sequence_bias=biases or None, min_new_tokens=o.get("min_new_tokens", 0),
        suppress_tokens=o.get("suppress_tokens") or None, **new_generation_config(o, prompt_length),
    )
    config._eos_token_tensor = torch.tensor([o["eos_token_id"]])  # what generate's _prepare_special_tokens sets
    kwargs = {}
    if o.get("pad_lengths") is not None and prompt_length > 0:  # generate reads the padding off the attention mask
        pads = torch.tensor(o["pad_lengths"])
        kwargs["attention_mask"] = (torch.arange(prompt_length)[None, :] >= pads[:, None]).long()
    with warnings.catch_warnings():  # with an empty prompt it warns that generate must have had inputs_embeds
        warnings.simplefilter("ignore", UserWarning)
        processors = decoder_only_model()._get_logits_processor(
            config, input_ids_seq_length=prompt_length, model_kwargs=kwargs,
            encoder_input_ids=None if ids is None else torch.from_numpy(ids[:, :prompt_length].copy()),
            prefix_allowed_tokens_fn=allowed_fn(o["allowed"]) if o.get("allowed") is not None else None)
    if o.get("min_tokens_to_keep", 1) != 1:  # generate sets it from num_beams; we take it as an option
        for p in processors:
            if hasattr(p, "min_tokens_to_keep"):
                p.min_tokens_to_keep = o["min_tokens_to_keep"]
                if isinstance(p, hf.TopKLogitsWarper):
                    p.top_k = max(p.top_k, p.min_tokens_to_keep)
    return processors


def new_generation_config(o, prompt_length) -> dict:
    """GenerationConfig's settings for the options added since the first record."""
    config = {"num_beams": 1, "num_return_sequences": 1,  # PrefixConstrainedLogitsProcessor reads both
              "encoder_repetition_penalty": o.get("encoder_repetition_penalty", 1.0),
              "encoder_no_repeat_ngram_size": o.get("encoder_no_repeat_ngram_size", 0),
              "forced_eos_token_id": o.get("forced_eos_token_id"), "top_h": o.get("top_h"),
              "renormalize_logits": o.get("renormalize_logits", False)}
    if o.get("exponential_decay_length_penalty") is not None:
        config["exponential_decay_length_penalty"] = tuple(o["exponential_decay_length_penalty"])
    if o.get("max_new_tokens") is not None:
        config["max_length"] = prompt_length + o["max_new_tokens"]  # what generate sets from max_new_tokens
    return config


def run_reference(processor, logits, ids):
    """Apply a transformers processor (or list) to NumPy arrays; float32 [B, V] out."""
    with torch.no_grad():
        out = processor(torch.from_numpy(ids.copy()), torch.from_numpy(logits.copy())).numpy()
    return np.ascontiguousarray(out)  # some processors return a strided view; safetensors would save its raw buffer


# ----------------------------------------------------------------------------- random cases


def random_logits(rng, batch, vocab):
    """Logits on a coarse grid (many ties) or continuous, with some -inf; every row keeps a finite one."""
    if rng.random() < 0.5:
        x = rng.integers(-12, 13, size=(batch, vocab)) / 4
    else:
        x = rng.normal(0, 3, size=(batch, vocab))
    x = x.astype(np.float32)
    x[rng.random((batch, vocab)) < rng.choice([0.0, 0.1, 0.4])] = -np.inf
    for row in np.flatnonzero(np.isneginf(x).all(axis=1)):
        x[row, rng.integers(vocab)] = 0.0
    return x


def random_ids(rng, batch, vocab):
    """A history [B, t] over a small alphabet so that tokens and n-grams repeat."""
    t = int(rng.integers(0, 13))
    return rng.integers(0, int(rng.integers(1, vocab)), size=(batch, t)).astype(np.int64)


def random_params(rng, name, batch, vocab, t):
    keep = {"min_tokens_to_keep": int(rng.choice([1, 1, 2, 3, 7]))}
    tokens = lambda n: [int(i) for i in rng.choice(vocab, size=n, replace=False)]  # noqa: E731
    if name == "temperature":
        return {"t": float(rng.choice([0.3, 0.7, 1.5, rng.uniform(0.05, 5)]))}
    if name == "top_k":
        return {"k": int(rng.integers(1, vocab + 3)), **keep}
    if name == "top_p":
        return {"p": float(rng.choice([0.5, 0.9, 1.0, rng.uniform(0.01, 1)])), **keep}
    if name == "min_p":
        return {"p": float(rng.choice([0.05, 0.5, 1.0, rng.uniform(0, 1)])), **keep}
    if name == "typical_p":
        return {"p": float(rng.choice([0.2, 0.9, rng.uniform(0.01, 0.99)])), **keep}
    if name in ("epsilon_cutoff", "eta_cutoff"):
        return {"epsilon": float(rng.choice([3e-4, 0.02, 0.2, rng.uniform(1e-4, 0.9)])), **keep}
    if name == "repetition_penalty":
        skip = [None, int(rng.integers(0, t + 1)), [int(s) for s in rng.integers(0, t + 1, size=batch)]]
        return {"penalty": float(rng.choice([0.5, 1.3, rng.uniform(0.1, 5)])),
                "prompt_ignore_length": skip[rng.integers(3)]}
    if name == "no_repeat_ngram":
        return {"n": int(rng.integers(1, 5))}
    if name == "bad_words":
        sequences = [tokens(int(rng.integers(1, 4))) for _ in range(int(rng.integers(1, 5)))]
        return {"sequences": sequences, "eos_token_id": [None, sequences[0][0]][rng.integers(2)]}
    if name == "logit_bias":
        return {"bias": [[tok, float(rng.choice([-np.inf, -100.0, rng.uniform(-5, 5)]))]
                         for tok in tokens(int(rng.integers(1, 6)))]}
    if name == "min_new_tokens":
        return {"eos_token_id": int(rng.integers(vocab)), "prompt_length": int(rng.integers(0, t + 1)),
                "min_new_tokens": int(rng.integers(0, 6))}
    if name == "suppress_tokens":
        return {"token_ids": tokens(int(rng.integers(1, 6)))}
    raise KeyError(name)


def random_sequences(rng, ids, vocab, longer_only=False) -> list:
    """Biased sequences [[ids], bias] of 1 to 3 tokens (2 to 3 if longer_only), some continuing the end of a row
    so that their prefix matches, some sharing a last token."""
    batch, t = ids.shape
    sequences = []
    for _ in range(int(rng.integers(1, 5))):
        n = int(rng.integers(2 if longer_only else 1, 4))
        if t and n > 1 and rng.random() < 0.5:  # the end of a row, and a token after it
            k = min(n - 1, t)
            sequence = [int(i) for i in ids[rng.integers(batch), t - k :]] + [int(rng.integers(vocab))]
        else:
            sequence = [int(i) for i in rng.integers(0, vocab, size=n)]
        sequences.append(sequence)
    if len(sequences) > 1 and rng.random() < 0.5:
        sequences[-1] = sequences[-1][:-1] + [sequences[0][-1]]  # the same last token twice
    unique = {tuple(s): None for s in sequences if s}
    return [[list(s), float(rng.choice([-np.inf, -20.0, rng.uniform(-5, 5)]))] for s in unique]


def new_random_params(rng, name, ids, vocab):
    """random_params for the links recorded since the first record; no left padding for the prompt's penalties
    (transformers counts a padded prompt's pad tokens, minigpt skips them: docs in minigpt/links/prompt.py)."""
    batch, t = ids.shape
    prompt_length = int(rng.integers(0, t + 1))
    if name == "sequence_bias":
        return {"bias": random_sequences(rng, ids, vocab)}
    if name == "encoder_repetition_penalty":
        return {"penalty": float(rng.choice([0.5, 1.3, rng.uniform(0.1, 5)])), "prompt_length": prompt_length}
    if name == "encoder_no_repeat_ngram":
        return {"n": int(rng.integers(1, 5)), "prompt_length": prompt_length}
    if name == "allowed_tokens":
        return {"allowed": [[int(i) for i in rng.choice(vocab, size=int(rng.integers(1, 4)), replace=False)]
                            for _ in range(batch)]}
    if name == "forced_eos":  # at the last step half of the time
        new = t - prompt_length + 1 if rng.random() < 0.5 else int(rng.integers(1, 8))
        return {"token_id": int(rng.integers(vocab)), "prompt_length": prompt_length, "max_new_tokens": new}
    if name == "exponential_decay_length_penalty":
        return {"decay": [int(rng.integers(0, 4)), float(rng.choice([0.5, 1.05, 2.0, rng.uniform(0.2, 3)]))],
                "eos_token_id": int(rng.integers(vocab)), "prompt_length": prompt_length}
    if name == "top_h":
        return {"h": float(rng.choice([0.2, 0.5, 0.9, 1.0, rng.uniform(0.01, 1)]))}
    if name == "renormalize":
        return {"on": True}
    raise KeyError(name)


def random_new_options(rng, ids, vocab):
    """build_chain options for the chains recorded since the first record: the added options each on half of the
    time, with some of the first ones; no left padding (see new_random_params)."""
    batch, t = ids.shape
    maybe = lambda value, neutral: value if rng.random() < 0.5 else neutral  # noqa: E731
    prompt_length = int(rng.integers(0, t + 1))
    new = int(rng.integers(1, 6)) if rng.random() < 0.5 else t - prompt_length + 1
    return {
        "sampling": bool(rng.random() < 0.7), "prompt_length": prompt_length, "vocab_size": vocab,
        "eos_token_id": int(rng.integers(vocab)), "max_new_tokens": new,
        "logit_bias": maybe([[int(tok), float(rng.uniform(-3, 3))] for tok in rng.choice(vocab, 2, replace=False)],
                            None),
        "sequence_bias": maybe(random_sequences(rng, ids, vocab, longer_only=True), None),
        "encoder_repetition_penalty": maybe(float(rng.uniform(0.5, 2)), 1.0),
        "repetition_penalty": maybe(float(rng.uniform(0.5, 2)), 1.0),
        "no_repeat_ngram_size": maybe(int(rng.integers(1, 4)), 0),
        "encoder_no_repeat_ngram_size": maybe(int(rng.integers(1, 4)), 0),
        "allowed": maybe([[int(i) for i in rng.choice(vocab, size=4, replace=False)] for _ in range(batch)], None),
        "forced_eos_token_id": maybe(int(rng.integers(vocab)), None),
        "exponential_decay_length_penalty": maybe([int(rng.integers(0, 3)), float(rng.uniform(0.5, 2))], None),
        "temperature": maybe(float(rng.uniform(0.3, 2)), 1.0), "top_h": maybe(float(rng.uniform(0.2, 1)), None),
        "top_k": maybe(int(rng.integers(1, vocab)), 0), "top_p": maybe(float(rng.uniform(0.3, 1)), 1.0),
        "renormalize_logits": bool(rng.random() < 0.5),
    }


def random_options(rng, batch, vocab, t):
    """build_chain options: each one neutral half of the time; no frequency/presence (no reference)."""
    maybe = lambda value, neutral: value if rng.random() < 0.5 else neutral  # noqa: E731
    tokens = lambda n: [int(i) for i in rng.choice(vocab, size=n, replace=False)]  # noqa: E731
    prompt_length = int(rng.integers(0, t + 1))
    return {
        "sampling": bool(rng.random() < 0.8), "prompt_length": prompt_length, "vocab_size": vocab,
        "eos_token_id": int(rng.integers(vocab)),
        "temperature": maybe(float(rng.uniform(0.3, 2)), 1.0), "top_k": maybe(int(rng.integers(1, vocab)), 0),
        "top_p": maybe(float(rng.uniform(0.3, 1)), 1.0), "min_p": maybe(float(rng.uniform(0, 0.5)), 0.0),
        "typical_p": maybe(float(rng.uniform(0.3, 0.99)), 1.0),
        "epsilon_cutoff": maybe(float(rng.uniform(1e-4, 0.05)), 0.0),
        "eta_cutoff": maybe(float(rng.uniform(1e-4, 0.05)), 0.0),
        "repetition_penalty": maybe(float(rng.uniform(0.5, 2)), 1.0),
        "no_repeat_ngram_size": maybe(int(rng.integers(1, 4)), 0),
        "bad_words_ids": maybe([tokens(int(rng.integers(1, 3))) for _ in range(2)], None),
        "logit_bias": maybe([[tok, float(rng.uniform(-3, 3))] for tok in tokens(2)], None),
        "min_new_tokens": maybe(int(rng.integers(1, 5)), 0),
        "suppress_tokens": maybe(tokens(2), None),
        "min_tokens_to_keep": int(rng.choice([1, 1, 2])),
        "pad_lengths": maybe([int(p) for p in rng.integers(0, prompt_length + 1, size=batch)], None),
    }


def record_case(rng, name: str, i: int) -> tuple[dict, dict]:
    """One random case of a link (or of a whole chain): its record in cases.json, and its arrays."""
    batch, vocab = int(rng.integers(1, 4)), int(rng.integers(5, 41))
    logits, ids = random_logits(rng, batch, vocab), random_ids(rng, batch, vocab)
    key = f"{name}.{i}"
    if name == "chain":
        options = random_options(rng, batch, vocab, ids.shape[1])
        reference = reference_chain(options, options["prompt_length"], vocab)
        case = {"key": key, "options": options}
    else:
        params = random_params(rng, name, batch, vocab, ids.shape[1])
        LINKS[name](**params)  # our link takes these parameters: a case the tests could not replay stops here
        reference = reference_processor(name, params)
        case = {"key": key, "processor": name, "params": params}
    arrays = {f"{key}.logits": logits, f"{key}.ids": ids, f"{key}.expected": run_reference(reference, logits, ids)}
    return case, arrays


def record_new_case(rng, name: str, i: int) -> tuple[dict, dict]:
    """record_case for the links (and the chains, "chain_more") recorded since the first record. top-h looks at
    the 100 most probable tokens only: half of its cases have a larger vocabulary."""
    batch = int(rng.integers(1, 4))
    vocab = int(rng.integers(101, 161)) if name == "top_h" and rng.random() < 0.5 else int(rng.integers(5, 41))
    logits, ids = random_logits(rng, batch, vocab), random_ids(rng, batch, vocab)
    key = f"{name}.{i}"
    if name == "chain_more":
        options = random_new_options(rng, ids, vocab)
        reference = reference_chain(options, options["prompt_length"], vocab, ids)
        case = {"key": key, "options": options}
    else:
        params = new_random_params(rng, name, ids, vocab)
        LINKS[name](**link_params(name, params))  # our link takes these parameters
        reference = reference_processor(name, params, ids)
        case = {"key": key, "processor": name, "params": params}
    arrays = {f"{key}.logits": logits, f"{key}.ids": ids, f"{key}.expected": run_reference(reference, logits, ids)}
    return case, arrays


def main():
    command_line(__doc__)
    start_torch(threads=None)
    rng = np.random.default_rng(20240601)
    cases, arrays = [], {}
    jobs = [(record_case, name, i) for name in NAMES for i in range(CASES_PER_PROCESSOR)]
    jobs += [(record_case, "chain", i) for i in range(CHAIN_CASES)]
    jobs += [(record_new_case, name, i) for name in NEW_NAMES for i in range(CASES_PER_PROCESSOR)]
    jobs += [(record_new_case, "chain_more", i) for i in range(CHAIN_CASES)]
    for record, name, i in jobs:
        case, case_arrays = record(rng, name, i)
        cases.append(case)
        arrays |= case_arrays
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(OUT / "cases.safetensors"))
    path = write_json(OUT / "cases.json", {**versions(), "cases": cases})
    print(f"wrote {len(cases)} cases to {path.parent}")


if __name__ == "__main__":
    main()
