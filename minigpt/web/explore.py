"""The JSON endpoints of `minigpt explore`: a request's fields in, the library's answer out, as render.py's JSON.

    options     the registry of options (strategies/options.py), from which the page builds its controls
    tokenize    text -> its tokens, each with id, bytes and the byte-pair merges that built it
    step        a branch of the page after `accepted` steps: the steps the page lacks (it holds `have`), the
                pending one, and the pending step's distribution link by link (inspection/stages.py)
    inspect     the logit lens and one layer's attention over the text so far (inspection/)
    beam_tree   a beam search, every candidate it weighed (inspection.beam_tree)

Stepping is exact and costs one decoding step: each branch is a paused generate() call (runs.py), so n
clicks of Next give generate()'s own n tokens, seeded draws included, and an answer carries only the steps
the page lacks. A token clicked in the bars is forced into the branch's run at that step (greedy, sample):
the branch goes on with its parent's stream of draws. The other strategies continue from the clicked token
as a prefix; the beam strategies settle their sequences only when the search ends, so theirs is run again
`accepted` tokens long.

Every field is checked here, and every option by GenerationOptions, the library's own check; a bad one
raises RequestError with the library's sentence. A request never names a file: the model (and a draft
model) is chosen at launch. What this module is not: the HTTP service (server.py) or the page (web/).
"""

from ..call import memory
from ..call.generate import generate
from ..call.strategies import STRATEGIES, build_options, doing, users
from ..core.checks import is_integer
from ..core.link import GROUPS, Trait
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from ..inspection import attention_patterns, beam_tree, logit_lens, token_logprobs
from ..strategies.options import BY_NAME, REGISTRY
from ..views.labels import shown_bytes
from .render import (beam_tree_json, branch_steps, generation_data, lens_json, measures, setting, stages_json,
                     tokens_table)
from .runs import LiveRuns, branch_key, start_live

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
                "repeat": o.repeat, "limit": LIMITS.get(o.name)} for o in REGISTRY]
    strategies = [{"name": n, "help": s.help} for n, s in STRATEGIES.items() if n != "speculative" or draft]
    return {"options": options, "strategies": strategies, "groups": [{"name": n, "help": h} for n, h in GROUPS.items()],
            "beams": doing(Trait.KEEPS_BEAMS), "choosers": doing(Trait.CHOOSES), "draft_model": draft,
            "limits": LIMITS, "set_by_the_page": list(SET_BY_THE_PAGE),
            "strategy_defaults": {n: {o.name: v for o, v in s.defaults} for n, s in STRATEGIES.items()}}


class Explorer:
    """One model, chosen at launch, and what each endpoint asks of it."""

    def __init__(self, model: GPT2, tokenizer: Tokenizer, name: str = "", draft: GPT2 | None = None,
                 draft_name: str = ""):
        self.model, self.tok, self.name, self.draft, self.draft_name = model, tokenizer, name, draft, draft_name
        self.runs = LiveRuns(memory.available())  # the branches' paused runs

    def options(self, payload=None) -> dict:
        return registry_json(self.draft_name) | {"model": self.name, "n_positions": self.model.config.n_positions,
                                                 "n_layer": self.model.config.n_layer,
                                                 "n_head": self.model.config.n_head,
                                                 "vocab_size": self.model.config.vocab_size}

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
            if name == "draft_model" or name in SET_BY_THE_PAGE:
                raise RequestError(f"{name} cannot be given in a request: "
                                   + ("the draft model is chosen at launch (minigpt explore --draft-model)."
                                      if name == "draft_model" else "the page sets it from the tokens accepted."))
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

    def step(self, payload: dict, send=None) -> dict:
        """The branch's text after `accepted` steps and its pending step: the steps the page lacks (it holds `have`)
        and, for the strategies that choose, the pending step's distribution link by link. send(answer) is
        called with each step as it is taken, when given (Run N streams)."""
        strategy, options = self.generation_options(payload)
        prompt, prefix = self.prompt(payload), self.token_ids(payload, "prefix", [])
        n = field(payload, "accepted", whole(0, LIMITS["accepted"]), 0, f"an integer in [0, {LIMITS['accepted']}]")
        top = field(payload, "top", whole(1, LIMITS["top"]), 10, f"an integer in [1, {LIMITS['top']}]")
        have = field(payload, "have", whole(0, LIMITS["accepted"] + 1), 0,
                     f"how many steps of this branch the page holds, an integer in [0, {LIMITS['accepted'] + 1}]")
        if strategy in doing(Trait.KEEPS_BEAMS):
            return self.beam_step(prompt, prefix, n, strategy, options, top)
        forced = self.forced(payload, strategy, prompt + prefix)
        branch = self.live_branch(prompt, prefix, strategy, options, forced)
        while branch.needs(n + 1):
            branch.advance(LIMITS["top"])
            if send is not None and branch.needs(n + 1):
                send(branch_steps(self.tok, branch, have, len(branch.steps), top))
                have = len(branch.steps)
        return self.step_answer(branch, prompt, prefix, n, have, top, strategy, options)

    def live_branch(self, prompt, prefix, strategy, options, forced):
        """The live run of the branch: prompt + prefix continued by the strategy, with the forced tokens."""
        room = min(LIMITS["accepted"] + 1, self.model.config.n_positions - len(prompt) - len(prefix))
        if room < 1:
            raise RequestError(f"the prompt and prefix ({len(prompt) + len(prefix)} tokens) exceed the model's context "
                               f"of n_positions={self.model.config.n_positions} tokens with no room for one more; "
                               "shorten the prompt or undo some tokens.")
        if STRATEGIES[strategy].samples(build_options(strategy, **options)) and "seed" not in options:
            options = options | {"seed": 0}  # every branch of a page is reproducible
        key = branch_key(prompt, prefix, strategy, setting(options), forced)
        branch = self.runs.branch(key, lambda: start_live(self.model, prompt + prefix, strategy, options | {
            "max_new_tokens": room}, LIMITS["top"], self.tok, forced))
        if prefix and not branch.prefix_logprobs:
            branch.prefix_logprobs = token_logprobs(self.model, prompt + prefix)[len(prompt) - 1:]
        return branch

    def forced(self, payload: dict, strategy: str, ids: list[int]) -> dict[int, int]:
        """The tokens forced in place of the first row's choice, {step: token}: strategies whose chain chooses."""
        vocab = self.model.config.vocab_size
        pairs = field(payload, "forced", lambda v: isinstance(v, list) and len(v) <= LIMITS["accepted"] and all(
            isinstance(p, list) and len(p) == 2 and whole(0, LIMITS["accepted"])(p[0]) and whole(0, vocab - 1)(p[1])
            for p in v), [], f"a list of [step, token id] pairs, steps in [0, {LIMITS['accepted']}], ids in "
                             f"[0, {vocab - 1}]")
        if pairs and Trait.CHOOSES not in STRATEGIES[strategy].does:
            raise RequestError(f"{strategy} chooses its tokens by rules of its own, so a token cannot be forced into "
                               "its run; the page continues it from the forced token instead (as a prefix).")
        return {int(step): int(token) for step, token in pairs}

    def step_answer(self, branch, prompt, prefix, n, have, top, strategy, options) -> dict:
        """What the page lacks of the branch after n accepted steps (see step)."""
        steps = branch.steps
        accepted = min(n, len(steps))
        pending = accepted if accepted < len(steps) else None
        answer = branch_steps(self.tok, branch, have, accepted + (pending is not None), top)
        run = branch.live.run
        tokens = prefix + [s.token for s in steps[:accepted]]
        logprobs = branch.prefix_logprobs + [s.logprob for s in steps[:accepted]]
        answer.update(strategy=strategy, seed=run.options.seed, chain=run.chain.describe(), model=self.name,
                      options={k: setting(v) for k, v in options.items()}, accepted=accepted, pending=pending,
                      ended=None if pending is not None else branch.finish_reason(run.eos_token_id),
                      measures=measures(tokens, logprobs, self.tok.eot))
        if have == 0:
            answer["prefix_logprobs"] = branch.prefix_logprobs
            answer["tokens"].update(tokens_table(self.tok, prefix))
        if pending is not None and branch.stages:
            answer["stages"] = stages_json(branch.stages[pending], top)
            answer["tokens"].update(tokens_table(self.tok, answer["stages"]["ids"]))
        return answer

    def beam_step(self, prompt, prefix, n, strategy, options, top) -> dict:
        """A beam strategy settles its sequences only when its search ends: the search run again, n tokens long."""
        out = generate(self.model, prompt + prefix, strategy, max_new_tokens=n, trace_top=top,
                       tokenizer=self.tok, **options)
        data = generation_data(self.tok, out, prompt, options, self.name)
        data.update(prefix=prefix, accepted=len(out.sequences[0]), pending=None, rerun=True, ended=None,
                    steps=data["sequences"][0]["steps"], rows=[s["steps"] for s in data["sequences"][1:]],
                    total=len(out.sequences[0]), measures=data["sequences"][0]["measures"])
        data["tokens"].update(tokens_table(self.tok, prefix))
        return data

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
STREAMS = ("/api/step",)  # with "stream": true, each step is sent as it is taken, one JSON line each
