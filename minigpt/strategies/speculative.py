"""Speculative decoding: a small draft model guesses K tokens, the target model checks them in one pass
(Leviathan, Kalman & Matias 2023, "Fast Inference from Transformers via Speculative Decoding", ICML; Chen
et al. 2023, "Accelerating Large Language Model Decoding with Speculative Sampling").

    draft:  d_1 ~ q(. | x), d_2 ~ q(. | x d_1), ..., d_K          K cheap one-token passes
    target: p(. | x), p(. | x d_1), ..., p(. | x d_1 ... d_K)      ONE pass over K + 1 positions
    keep the drafts the target agrees with, then one token of the target's own

Each round adds between 1 and K + 1 tokens for a single pass of the big model, which is where the speed
comes from, and the text is distributed as the target alone would give it (verify):
- greedy (do_sample False): d_i is the draft's argmax, kept while it equals the target's argmax; at the
  first disagreement the target's argmax comes instead, and if all K agree its next argmax is a bonus.
- sampling (do_sample True): d_i ~ q is accepted with probability min(1, p(d_i) / q(d_i)); at the first
  rejection the token is drawn from r = max(0, p - q) / sum(max(0, p - q)) and the round ends; if all
  K are accepted the bonus token is drawn from p at position K + 1.

The processors run on both models' logits, each position with its own history (prompt + text so far +
the drafts before it), so p and q are the distributions a plain sampler would use there. One prompt at a
time: each row would accept a different number of tokens per round. transformers calls it assisted generation
(generate(assistant_model=...)). The rounds (draft_and_verify) and their stats (draft_stats: acceptance, tokens
per forward pass) are shared with prompt lookup decoding (prompt_lookup.py), whose drafts come from the text.

What this module is not: loading the draft model (generate() does: call/generate.py) or the chain (core/, links/).
"""

import numpy as np

from ..core.model import GPT2
from ..core.numerics import draw, log_softmax, softmax
from ..links.chain import check_choosable
from .run import Hypothesis, Outcome, Run, append_token


def check_draft(draft: GPT2, target: GPT2):
    """The draft model must share the target's tokenizer: the same vocabulary."""
    if draft.config.vocab_size != target.config.vocab_size:
        raise ValueError(f"the draft model's vocabulary ({draft.config.vocab_size} tokens) differs from the "
                         f"target's ({target.config.vocab_size}); speculative decoding needs a draft with the "
                         f"same tokenizer.")


class Distributions:
    """What a model says about a run of positions, each processed with its own history."""

    def __init__(self, run: Run, logits, histories):
        """logits [n, V]; histories: n token lists, the text before each position."""
        self.run, self.logits, self.histories = run, logits, histories
        self.model_logprobs = log_softmax(logits)  # [n, V] the model's own log-probabilities
        self.processed = np.concatenate([run.chain(logits[i : i + 1], np.array([h]))  # [n, V] after the chain
                                         for i, h in enumerate(histories)])
        self.probs = softmax(self.processed).astype(np.float64)  # [n, V]

    def check(self, i: int):
        """Refuse position i if the processors left no token there, or its logits hold NaN.

        Whether the processors leave a token depends only on the history (bans, biases, n-grams, min
        length; the warpers always keep one), not on the model: so the draft's check of a position
        stands for the target's too, and only the target's bonus position is left (see verify)."""
        history = np.array([self.histories[i]])
        step = len(self.histories[i]) - self.run.ids.shape[1]
        check_choosable(self.run.chain, self.logits[i : i + 1], history, self.processed[i : i + 1], step)


def propose(run: Run, draft: GPT2, cache, sequence: list[int], n: int):
    """n draft tokens after `sequence`, one draft pass each, and the distributions q they were taken from.

    The draft's cache holds a prefix of `sequence`; the rest is fed with the first pass. Drafting stops
    early at end-of-text, after which there is nothing to guess. Returns tokens (n ids at most) and q [n, V]."""
    tokens, q = [], []
    feed = sequence[cache.length :]
    for _ in range(n):
        logits = draft.forward(np.array([feed]), cache, last_only=True).logits[0]  # [1, V]
        distributions = Distributions(run, logits, [sequence + tokens])
        distributions.check(0)
        dist = distributions.probs[0]  # [V]
        tokens.append(draw(dist, run.rng) if run.options.do_sample else int(dist.argmax()))
        q.append(dist)
        if tokens[-1] == run.eos_token_id:
            break
        feed = tokens[-1:]
    return tokens, np.array(q)


def verify(run: Run, drafts: list[int], q, target: Distributions) -> list[int]:
    """The tokens to append: the accepted drafts, then one token of the target's (a correction or the bonus;
    no bonus where the processors leave no token, which the next round's draft then reports).

    drafts: n ids; q [n, V] the draft's distributions; target: the target's n + 1 distributions.

    Greedy, each token is the target's argmax given the tokens before it: the target's own greedy text.
    Sampling, each token follows p exactly (Leviathan et al. 2023, Appendix A; Chen et al. 2023, Theorem 1):
        P(v) = P(draft v and accept) + P(reject) r(v)
             = q(v) min(1, p(v)/q(v)) + (1 - sum_u min(q(u), p(u))) max(0, p(v) - q(v)) / sum_u max(0, p(u) - q(u))
             = min(q(v), p(v)) + max(0, p(v) - q(v))       (both sums equal 1 - sum_u min(p(u), q(u)))
             = p(v),
    and by induction over positions the whole text is distributed as the target alone would sample it; the
    draft only changes how fast.
    """
    p = target.probs  # [n + 1, V]
    for i, token in enumerate(drafts):
        if run.options.do_sample:
            if run.rng.random() >= p[i, token] / q[i, token]:  # accepted with probability min(1, p / q)
                residual = np.maximum(p[i] - q[i], 0.0)
                # p <= q everywhere only by float rounding, when p = q: then the residual is p itself
                return drafts[:i] + [draw(residual if residual.any() else p[i], run.rng)]
        elif token != target.processed[i].argmax():
            return drafts[:i] + [int(target.processed[i].argmax())]
    bonus = p[len(drafts)]  # every draft accepted: the target's next token comes free
    if not bonus.any():
        return drafts
    return drafts + [draw(bonus, run.rng) if run.options.do_sample else int(target.processed[len(drafts)].argmax())]


def one_prompt(run: Run, strategy: str):
    """Refuse a batch: each prompt would accept a different number of drafted tokens per round."""
    if run.ids.shape[0] != 1:
        raise ValueError(f"{strategy} takes one prompt at a time (got {run.ids.shape[0]}): each prompt accepts a "
                         f"different number of drafted tokens per round; call generate once per prompt.")


def draft_stats(drafted: int, accepted: int, passes: int, tokens: int) -> dict:
    """What drafting bought, as every drafting strategy reports it: the drafts the model kept (acceptance_rate),
    and the tokens each of the model's forward passes gave (tokens_per_pass; 1 is plain greedy's rate)."""
    return dict(drafted=drafted, accepted=accepted, acceptance_rate=accepted / drafted if drafted else 0.0,
                forward_passes=passes, tokens_per_pass=tokens / passes if passes else 0.0)


class DraftModel:
    """Drafts of a small model (the draft), K one-token passes of its own per round, its cache kept in step."""

    def __init__(self, run: Run, draft: GPT2, max_length: int):
        try:
            self.cache = draft.new_cache(1, max_length)
        except ValueError as e:
            raise ValueError(f"the draft model is too short for this call: {e}") from None
        self.run, self.draft = run, draft

    def propose(self, sequence: list[int], n: int):
        return propose(self.run, self.draft, self.cache, sequence, n)

    def keep(self, length: int):
        """Forget the rejected drafts: the cache keeps only what is now part of the text."""
        self.cache.crop(min(self.cache.length, length))


def draft_and_verify(run: Run, start_drafter, most: int):
    """The rounds every drafting strategy shares. start_drafter(the cache's length) makes the drafter, once the
    model's cache is made; each round `drafter.propose(sequence, n)` guesses up to n tokens (and the distributions
    q it drew them from, or None for a greedy run), the model checks them all in one pass (verify), and
    `drafter.keep(length)` hears how much of the text stands. At most `most` drafts a round.
    A generator: each round (one pass of the model) yields [(0, Step)] for every token it emitted; it returns
    the Outcome, its stats those of draft_stats."""
    model = run.model
    prompt = [int(t) for t in run.ids[0]]
    cache = run.new_cache(1)
    drafter = start_drafter(cache.max_length)
    if len(prompt) > 1:  # the model's cache always holds every token but the last one
        model.forward(np.array([prompt[:-1]]), cache)
    sequence, hyp = list(prompt), Hypothesis(tokens=[], score=0.0)
    drafted = accepted = passes = 0
    while len(hyp.tokens) < run.max_new_tokens:
        n = min(most, run.max_new_tokens - len(hyp.tokens) - 1)  # never draft past max_new_tokens
        drafts, q = drafter.propose(sequence, n)
        # The model scores the last token and the drafts in one pass: len(drafts) + 1 next-token distributions.
        logits = model.forward(np.array([sequence[-1:] + drafts]), cache).logits[0]  # [len(drafts) + 1, V]
        target = Distributions(run, logits, [sequence + drafts[:i] for i in range(len(drafts) + 1)])
        if np.isnan(target.processed).any():
            target.check(int(np.isnan(target.processed).any(axis=-1).argmax()))  # names the step
        emitted = verify(run, drafts, q, target)
        if not emitted:  # no drafts and no token allowed at the model's only position
            target.check(0)
        no_bonus = emitted == drafts  # all accepted, and no bonus token (after end-of-text, or nothing allowed)
        drafted, accepted = drafted + len(drafts), accepted + len(emitted) - (0 if no_bonus else 1)
        passes += 1

        ended = False
        for i, token in enumerate(emitted):
            ended = (append_token(run, hyp, token, target.model_logprobs[i], target.processed[i])
                     or len(hyp.tokens) == run.max_new_tokens)
            if ended:
                emitted = emitted[: i + 1]
                break
        yield [(0, step) for step in hyp.steps[len(hyp.steps) - len(emitted) :]]
        if ended:
            break
        cache.crop(len(sequence) + len(emitted) - 1)  # all but the last emitted token
        drafter.keep(len(sequence) + len(emitted) - 1)
        sequence += emitted
    return Outcome([[hyp]], stats=draft_stats(drafted, accepted, passes, len(hyp.tokens)))


def speculative_decoding(run: Run):
    """Speculative decoding of one prompt: a draft model's guesses, checked by the model (draft_and_verify)."""
    one_prompt(run, "speculative decoding")
    check_draft(run.draft, run.model)
    return (yield from draft_and_verify(run, lambda length: DraftModel(run, run.draft, length),
                                        run.options.num_assistant_tokens))
