"""The JSON endpoints of `minigpt explore`: a request's fields in, the library's answer out, as render.py's JSON.

    options     the registry of options (strategies/options.py), from which the page builds its controls
    tokenize    text -> its tokens, each with id, bytes and the byte-pair merges that built it
    step        generate() from prompt + prefix: the accepted tokens and the pending one, each with its
                candidates before and after the chain; what each link of the chain cuts at the pending step
    inspect     the logit lens and one layer's attention over the text so far (inspection/)
    beam_tree   a beam search, every candidate it weighed (inspection.beam_tree)

Stepping is exact: "accepted n tokens" means generate(prompt + prefix, max_new_tokens=n + 1) with the
same strategy, options and seed; its first n steps are the text, its last is the pending step. So n
clicks of Next give generate()'s own tokens, and a forced token (a new prefix) starts a branch whose
continuation is generate() from the prefix. The beam strategies re-run the search n tokens long.

Every field is checked here, and every option by GenerationOptions, the library's own check; a bad one
raises RequestError with the library's sentence. A request never names a file: the model (and a draft
model) is chosen at launch. What this module is not: the HTTP service (server.py) or the page (web/).
"""

import numpy as np

from ..call import memory
from ..call.generate import generate
from ..call.strategies import STRATEGIES, build_options, doing, users
from ..core.checks import is_integer
from ..core.link import GROUPS, Trait
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from ..inspection import attention_patterns, beam_tree, logit_lens, token_logprobs
from ..links.chain import build_chain
from ..strategies.options import BY_NAME, REGISTRY
from ..views.labels import shown_bytes
from .render import beam_tree_json, generation_data, lens_json, measures, tokens_table

LIMITS = {"accepted": 256, "max_new_tokens": 256, "top": 50, "num_beams": 16, "num_return_sequences": 16,
          "num_assistant_tokens": 64, "inspect_tokens": 256}  # the page's work per request, at most
SET_BY_THE_PAGE = ("max_new_tokens",)  # the step endpoint sets it from `accepted`; the page uses it for Run N


class RequestError(ValueError):
    """A request the explorer refuses, in one sentence: the page shows it as it is."""


def field(payload: dict, name: str, check, default=None, what: str = ""):
    """payload[name], or default when absent; RequestError naming the field and what it takes otherwise."""
    value = payload.get(name, default)
    if value is None and default is None and name not in payload:
        raise RequestError(f"the request needs {name}: {what}.")
    if not check(value):
        raise RequestError(f"{name} must be {what}, got {str(value)[:80]!r}.")
    return value


def whole(low: int, high: int):
    return lambda v: is_integer(v) and low <= v <= high


def accepts(option) -> str:
    """What an option takes, in words (an object without a `valid` text, such as draft_model, by its metavar)."""
    return option.accepts if option.valid or option.kind is not object else option.metavar


def registry_json(draft: str = "") -> dict:
    """The options as the page builds its controls: every declaration, the strategies and the groups."""
    options = [{"name": o.name, "default": o.default if not isinstance(o.default, tuple) else list(o.default),
                "kind": o.kind.__name__, "low": o.low, "high": o.high, "ends": o.ends, "accepts": accepts(o),
                "strategies": users(o), "group": o.group, "help": o.help, "metavar": o.metavar,
                "repeat": o.repeat, "limit": LIMITS.get(o.name), "python_only": o.python_only} for o in REGISTRY]
    strategies = [{"name": n, "help": s.help} for n, s in STRATEGIES.items() if n != "speculative" or draft]
    return {"options": options, "strategies": strategies, "groups": [{"name": n, "help": h} for n, h in GROUPS.items()],
            "beams": doing(Trait.KEEPS_BEAMS), "draft_model": draft, "limits": LIMITS,
            "set_by_the_page": list(SET_BY_THE_PAGE)}


class Explorer:
    """One model, chosen at launch, and what each endpoint asks of it."""

    def __init__(self, model: GPT2, tokenizer: Tokenizer, name: str = "", draft: GPT2 | None = None,
                 draft_name: str = ""):
        self.model, self.tok, self.name, self.draft, self.draft_name = model, tokenizer, name, draft, draft_name

    def options(self, payload=None) -> dict:
        return registry_json(self.draft_name) | {"model": self.name, "n_positions": self.model.config.n_positions,
                                                 "n_layer": self.model.config.n_layer,
                                                 "n_head": self.model.config.n_head}

    def tokenize(self, payload: dict) -> dict:
        text = field(payload, "text", lambda v: isinstance(v, str), what="a string")
        ids = self.tok.encode(text)
        if len(ids) > self.model.config.n_positions:
            raise RequestError(f"the text has {len(ids)} tokens, more than the model's context of "
                               f"n_positions={self.model.config.n_positions}; give a shorter text.")
        rows = []
        for i in ids:
            merges = [] if i == self.tok.eot else self.tok.merges(i)
            rows.append({"id": i, "bytes": self.tok.token_bytes(i).hex(" "), "text": self.tok.decode([i]),
                         "shown": tokens_table(self.tok, [i])[str(i)]["shown"],
                         "merges": [{"left": m.left.hex(" "), "right": m.right.hex(" "), "rank": m.rank, "at": m.at,
                                     "left_shown": shown_bytes(m.left), "right_shown": shown_bytes(m.right)}
                                    for m in merges]})
        return {"tokens": rows}

    def token_ids(self, payload: dict, name: str, default=None) -> list[int]:
        """A list of token ids of the model's vocabulary."""
        vocab = self.model.config.vocab_size
        return field(payload, name, lambda v: isinstance(v, list) and len(v) <= self.model.config.n_positions
                     and all(is_integer(i) and 0 <= i < vocab for i in v), default,
                     f"a list of at most {self.model.config.n_positions} token ids, each in [0, {vocab - 1}]")

    def generation_options(self, payload: dict) -> tuple[str, dict]:
        """The strategy and the options of a request, checked as generate() checks them, within LIMITS."""
        strategy = field(payload, "strategy", lambda v: v in STRATEGIES, "greedy",
                         f"one of {', '.join(STRATEGIES)}")
        given = field(payload, "options", lambda v: isinstance(v, dict), {}, "an object of option names and values")
        options = {}
        for name, value in given.items():
            option = BY_NAME.get(name)
            if name == "draft_model" or name in SET_BY_THE_PAGE or (option is not None and option.python_only):
                raise RequestError(f"{name} cannot be given in a request: "
                                   + ("the draft model is chosen at launch (minigpt explore --draft-model)."
                                      if name == "draft_model" else "it is a function, which only Python can give."
                                      if option is not None and option.python_only else
                                      "the page sets it from the tokens accepted."))
            if option is not None and option.kind is object:
                value = self.from_text(option, value)
            if name in LIMITS and is_integer(value) and value > LIMITS[name]:
                raise RequestError(f"{name} must be at most {LIMITS[name]} in minigpt explore, got {value}.")
            options[name] = value
        if strategy == "speculative":
            if self.draft is None:
                raise RequestError("speculative decoding needs a draft model; start minigpt explore with "
                                   "--draft-model NAME.")
            options["draft_model"] = self.draft
        build_options(strategy, **options)  # every refusal before any token is generated
        return strategy, options

    def from_text(self, option, value):
        """A structured option as the page's text box gives it (a repeatable one as a list of texts) -> its value,
        read as the command line reads the flag; any other value is left to the option's own check."""
        if option.repeat and isinstance(value, list) and all(isinstance(v, str) for v in value):
            values = [option.from_text(v) for v in value]
            if option.name == "logit_bias":  # a token given twice: the last bias counts, as on the command line
                return dict(values)
            return [] if values == ["none"] and option.name == "dry_sequence_breakers" else values
        if isinstance(value, str):
            return self.tok.encode(value) if option.encode else option.from_text(value)
        return value

    def prompt(self, payload: dict) -> list[int]:
        text = field(payload, "prompt", lambda v: isinstance(v, str), "", "a string")
        return self.tok.encode(text) or [self.tok.eot]  # as generate() reads an empty prompt

    def step(self, payload: dict) -> dict:
        """The text after `accepted` steps from prompt + prefix, and the pending step (see the docstring)."""
        strategy, options = self.generation_options(payload)
        prompt, prefix = self.prompt(payload), self.token_ids(payload, "prefix", [])
        n = field(payload, "accepted", whole(0, LIMITS["accepted"]), 0, f"an integer in [0, {LIMITS['accepted']}]")
        top = field(payload, "top", whole(1, LIMITS["top"]), 10, f"an integer in [1, {LIMITS['top']}]")
        beams = strategy in doing(Trait.KEEPS_BEAMS)
        out = generate(self.model, prompt + prefix, strategy, max_new_tokens=n if beams else n + 1, trace_top=top,
                       tokenizer=self.tok, **options)
        data = generation_data(self.tok, out, prompt, options, self.name)
        steps = data["sequences"][0]["steps"]
        accepted, pending = steps[:n], (steps[n] if len(steps) > n and not beams else None)
        prefix_logprobs = token_logprobs(self.model, prompt + prefix)[len(prompt) - 1:] if prefix else []
        tokens = prefix + [s["token"] for s in accepted]
        data.update(prefix=prefix, prefix_logprobs=prefix_logprobs, accepted=accepted, pending=pending,
                    measures=measures(tokens, prefix_logprobs + [s["logprob"] for s in accepted], self.tok.eot),
                    cutoffs=self.cutoffs(prompt, prefix + tokens[len(prefix):], options, strategy, pending))
        data["tokens"].update(tokens_table(self.tok, prefix))
        return data

    def cutoffs(self, prompt: list[int], generated: list[int], options: dict, strategy: str, pending) -> list[dict]:
        """At the pending step, what each link of the chain leaves: how many tokens of the vocabulary, and which
        of the shown candidates (before the chain) it is the first to remove. The chain is built again, with a
        generator seeded as the run's (XTC's draw may differ from the run's: its state says what it removed)."""
        opts = build_options(strategy, **options)
        chooses = Trait.CHOOSES in STRATEGIES[strategy].does  # the others choose by rules of their own
        if pending is None or not chooses or opts.guidance_scale != 1 or opts.dola_layers:
            return []  # the other strategies (and guidance, DoLa) start from scores of their own
        ids = np.array([prompt + generated], dtype=np.int64)  # [1, T]
        memory.check_fits(memory.prompt_pass(self.model.config, ids.shape[1], 4), "the chain's cut-offs")
        logits = self.model.forward(ids, self.model.new_cache(1, ids.shape[1]), last_only=True).logits[:, -1]
        eos = self.model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
        chain = build_chain(sampling=STRATEGIES[strategy].samples(opts), prompt_length=len(prompt), eos_token_id=eos,
                            vocab_size=self.model.config.vocab_size, tokenizer=self.tok,
                            rng=np.random.default_rng(opts.seed), pad_token_id=eos, **opts.chain_options())
        shown_ids, result, scores = [c["id"] for c in pending["raw_candidates"]], [], logits
        alive = set(shown_ids)
        for link in chain.processors:
            scores = link(scores, ids)  # [1, V]
            kept = np.isfinite(scores[0])
            cut = [i for i in shown_ids if i in alive and not kept[i]]
            alive -= set(cut)
            result.append({"link": repr(link), "name": link.name, "kept": int(kept.sum()), "cuts": cut})
        return result

    def inspect(self, payload: dict) -> dict:
        """The logit lens of the text, and the attention of one layer (every head): inspection/'s arrays."""
        ids = self.token_ids(payload, "ids")
        if not 0 < len(ids) <= LIMITS["inspect_tokens"]:
            raise RequestError(f"the inspector reads 1 to {LIMITS['inspect_tokens']} tokens, got {len(ids)}; "
                               "undo some tokens or shorten the prompt.")
        layer = field(payload, "layer", whole(0, self.model.config.n_layer - 1), 0,
                      f"a layer in [0, {self.model.config.n_layer - 1}]")
        lens = lens_json(logit_lens(self.model, ids))
        attention = attention_patterns(self.model, ids).weights[layer]  # [H, T, T]
        return {"ids": ids, "lens": lens, "layer": layer, "attention": attention.tolist(),
                "tokens": tokens_table(self.tok, ids + [i for row in lens["top_tokens"] for i in row])}

    def beam_tree(self, payload: dict) -> dict:
        strategy, options = self.generation_options(payload)
        if strategy not in doing(Trait.KEEPS_BEAMS):
            raise RequestError(f"the beam tree is drawn for the beam strategies "
                               f"({', '.join(doing(Trait.KEEPS_BEAMS))}), not {strategy}.")
        n = field(payload, "max_new_tokens", whole(1, 32), 5, "an integer in [1, 32]")
        prompt, prefix = self.prompt(payload), self.token_ids(payload, "prefix", [])
        tree = beam_tree_json(beam_tree(self.model, prompt + prefix, max_new_tokens=n, strategy=strategy, **options))
        ids = tree["prompt"] + [node["token"] for node in tree["nodes"] if node["token"] is not None]
        return {"beam_tree": tree, "tokens": tokens_table(self.tok, ids)}


ENDPOINTS = {"/api/options": Explorer.options, "/api/tokenize": Explorer.tokenize, "/api/step": Explorer.step,
             "/api/inspect": Explorer.inspect, "/api/beam-tree": Explorer.beam_tree}
MODEL_CALLS = ("/api/step", "/api/inspect", "/api/beam-tree")  # one at a time: the others wait
