"""Prompt lookup decoding: speculative decoding whose drafts are copied from the text itself, no draft model
(Saxena 2023, "Prompt Lookup Decoding", github.com/apoorvumang/prompt-lookup-decoding; transformers'
PromptLookupCandidateGenerator, generate(prompt_lookup_num_tokens=...)).

    text      ... the value of the key ... the value of
    n-gram    the text's last n tokens ("the value of", n at most max_matching_ngram_size), found earlier
    drafts    the tokens that followed it there ("the key ..."), at most prompt_lookup_num_tokens
    verify    the model checks them in one pass, as speculative decoding's greedy verification does

Where a text repeats itself (code, a document being summarised or edited, a quote), many drafts are right and
each pass of the model gives several tokens; where nothing matches, a round is a plain greedy step. The text is
greedy's, token for token: the drafts only change how many passes it takes. The n-gram is looked up as
transformers does: the longest first, then shorter ones; of its occurrences, the first (leftmost) whose
continuation is not empty; the drafts stop before an end-of-text token. One difference: transformers also
drops drafted tokens its processors would ban, which here the model's check rejects instead (the same text).

What this module is not: the rounds of drafting and checking (speculative.py's draft_and_verify, shared with
speculative decoding, and its draft_stats) or the options' declarations (options.py).
"""

from .run import Run
from .speculative import draft_and_verify, one_prompt


def lookup(sequence: list[int], most: int, max_ngram: int, eos_token_id: int | None = None) -> list[int]:
    """The drafts after `sequence`: what followed the first earlier occurrence of its last n tokens, n from
    max_ngram down to 1, at most `most` tokens, cut before end-of-text.

        lookup([5, 6, 7, 8, 5, 6], most=10, max_ngram=2) -> [7, 8, 5, 6]   (5 6 seen at 0: what came after it)
        lookup([5, 6, 7, 8, 9, 6], most=10, max_ngram=2) -> [7, 8, 9, 6]   (9 6 unseen; 6 seen at 1)
        lookup([5, 6, 7], most=10, max_ngram=2) -> []                      (nothing repeats)
    """
    length = len(sequence)
    for n in range(min(max_ngram, length - 1), 0, -1):
        tail = sequence[-n:]
        for start in range(length - n):  # not the tail itself: nothing follows it yet
            if sequence[start : start + n] == tail:
                drafts = sequence[start + n : start + n + most]
                return drafts[: drafts.index(eos_token_id)] if eos_token_id in drafts else drafts
    return []


class PromptLookup:
    """The drafter of prompt lookup decoding: drafts from the text, nothing to keep in step."""

    def __init__(self, most: int, max_ngram: int, eos_token_id: int):
        self.most, self.max_ngram, self.eos_token_id = most, max_ngram, eos_token_id

    def propose(self, sequence: list[int], n: int):
        return lookup(sequence, min(n, self.most), self.max_ngram, self.eos_token_id), None  # greedy: no q

    def keep(self, length: int):
        """The drafts are read from the text each round: nothing to forget."""


def prompt_lookup_decoding(run: Run):
    """Prompt lookup decoding of one prompt, greedy; its stats are draft_stats'. A generator, as
    speculative_decoding: each pass of the model yields the tokens it emitted."""
    one_prompt(run, "prompt lookup decoding")
    o = run.options
    drafter = PromptLookup(o.prompt_lookup_num_tokens, o.max_matching_ngram_size, run.eos_token_id)
    return (yield from draft_and_verify(run, lambda length: drafter, o.prompt_lookup_num_tokens))
