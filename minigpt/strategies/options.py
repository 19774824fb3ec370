"""The options of a generate() call: every declaration gathered in one registry, and one field for each.

Every option is declared once as a core/link.Option: the chain's beside the link that reads it (links/chain.py
gathers them), guidance's and DoLa's beside their sources, and below the output's (length, end-of-text, stop
strings) and the strategies' own. REGISTRY holds them all, in the order --help groups them.

GenerationOptions has one field per option, written out so that a reader finds each one, its type and its
default (taken from the declaration); tests/strategies/test_options_registry.py checks the fields against REGISTRY.
`validate` refuses what no single option can say (min_new_tokens above max_new_tokens, guidance with DoLa).
Which strategy accepts which option, and each strategy's own rules, are in its record (call/strategies.py).

What this module is not: the code that reads the options (the links, the sources, the strategies).

Differences from transformers: min_new_tokens > max_new_tokens is refused (transformers never lets
end-of-text come); sample draws from the full distribution unless given top_k (transformers: top_k 50).
"""

import os
from dataclasses import dataclass

from ..core.checks import OptionError
from ..core.link import GROUPS, Option, Trait
from ..core.links import MIN_P, MIN_TOKENS_TO_KEEP, PENALTY_LAST_N, REPETITION_PENALTY, TEMPERATURE, TOP_K, TOP_P
from ..core.loop import MAX_NEW_TOKENS
from ..core.model import GPT2
from ..links import chain, constraints, llama, penalties, prompt, warpers
from ..links.mirostat import MIROSTAT, MIROSTAT_ETA, MIROSTAT_TAU
from ..links.values import as_text_or_texts
from ..links.watermark import (WATERMARK, WATERMARK_BIAS, WATERMARK_CONTEXT_WIDTH, WATERMARK_GREENLIST_RATIO,
                               WATERMARK_HASHING_KEY, WATERMARK_SEEDING_SCHEME)
from ..sources.dola import DOLA_LAYERS, DOLA_READ_OUT
from ..sources.guidance import GUIDANCE_SCALE, NEGATIVE_PROMPT_IDS


def as_stop_strings(option: Option, value) -> tuple:
    texts = as_text_or_texts(option, value)
    if any(not isinstance(s, str) or not s for s in texts):
        raise option.refusal(list(texts), "a list of non-empty strings")
    return texts


def as_early_stopping(option: Option, value):
    if not isinstance(value, (bool, str)) or value not in (True, False, "never"):
        raise option.refusal(value, option.valid)
    return value


def parse_early_stopping(text: str):
    choices = {"true": True, "false": False, "never": "never"}
    if text.lower() not in choices:
        raise ValueError(f"expected true, false or never, got {text!r}")
    return choices[text.lower()]


def as_draft_model(option: Option, value):
    if not isinstance(value, (GPT2, str, os.PathLike)):
        raise option.refusal(type(value).__name__, "a GPT2 model, a name or a path")
    return value


BEAMS, OWN = Trait.KEEPS_BEAMS, None  # OWN: used by the strategies whose record lists it
EOS_TOKEN_ID = Option("eos_token_id", None, "the end-of-text token id (default: the model's, 50256)", "output",
                      kind=int, low=0, metavar="ID")
STOP = Option("stop", (), "stop once the text contains TEXT (repeatable)", "output", Trait.STREAMS, kind=object,
              valid="a string or a list of strings, such as ['.', '\\n']", normalise=as_stop_strings, parse=str,
              metavar="TEXT", repeat=True)
SEED = Option("seed", None, "the seed of every random draw: the same seed gives the same text", "strategy",
              Trait.SAMPLES, kind=int, low=0, metavar="N")
NUM_RETURN_SEQUENCES = Option("num_return_sequences", 1, "how many sequences to return per prompt", "strategy", OWN,
                              kind=int, low=1, metavar="N")
NUM_BEAMS = Option("num_beams", 1, "beam search: how many partial sequences to keep", "strategy", BEAMS, kind=int,
                   low=1, metavar="N")
LENGTH_PENALTY = Option("length_penalty", 1.0, "beam search: divide a finished sequence's score by length^X",
                        "strategy", BEAMS, low=-10, high=10, note="(1 divides the score by the length)", metavar="X")
EARLY_STOPPING = Option("early_stopping", False, "beam search: stop when num_beams are finished (true), when none "
                        "can improve (false), or 'never'", "strategy", BEAMS, kind=object, valid="true, false or "
                        "'never'", normalise=as_early_stopping, parse=parse_early_stopping,
                        metavar="true|false|never")
NUM_BEAM_GROUPS = Option("num_beam_groups", 1, "diverse beam search: the groups the beams are split into",
                         "strategy", OWN, kind=int, low=1, metavar="N")
DIVERSITY_PENALTY = Option("diversity_penalty", 0.0, "diverse beam search: subtract X for a token an earlier group "
                           "chose at this step", "strategy", OWN, low=0, high=1e9, metavar="X")
PENALTY_ALPHA = Option("penalty_alpha", 0.6, "contrastive search: the weight of the degeneration penalty (0 = "
                       "greedy)", "strategy", OWN, low=0, high=1, metavar="X")
DRAFT_MODEL = Option("draft_model", None, "speculative decoding: the small model that drafts tokens", "strategy",
                     OWN, kind=object, normalise=as_draft_model, parse=str, metavar="NAME_OR_PATH")
NUM_ASSISTANT_TOKENS = Option("num_assistant_tokens", 5, "speculative decoding: tokens drafted per round",
                              "strategy", OWN, kind=int, low=1, metavar="N")
DO_SAMPLE = Option("do_sample", False, "speculative decoding: sample (with the warpers) instead of greedy",
                   "strategy", OWN, kind=bool)
PROMPT_LOOKUP_NUM_TOKENS = Option("prompt_lookup_num_tokens", 10, "prompt lookup decoding: tokens drafted per round, "
                                  "copied from what followed the text's last n-gram earlier", "strategy", OWN,
                                  kind=int, low=1, metavar="N")
MAX_MATCHING_NGRAM_SIZE = Option("max_matching_ngram_size", 2, "prompt lookup decoding: the longest n-gram of the "
                                 "text's end looked up (then shorter ones)", "strategy", OWN, kind=int, low=1,
                                 metavar="N")

OWN_OPTIONS = (SEED, NUM_RETURN_SEQUENCES, NUM_BEAMS, LENGTH_PENALTY, EARLY_STOPPING, NUM_BEAM_GROUPS,
               DIVERSITY_PENALTY, PENALTY_ALPHA, DRAFT_MODEL, NUM_ASSISTANT_TOKENS, DO_SAMPLE,
               PROMPT_LOOKUP_NUM_TOKENS, MAX_MATCHING_NGRAM_SIZE, MAX_NEW_TOKENS, EOS_TOKEN_ID, STOP)
SOURCE_OPTIONS = (GUIDANCE_SCALE, NEGATIVE_PROMPT_IDS, DOLA_LAYERS, DOLA_READ_OUT)
REGISTRY = tuple(sorted((*OWN_OPTIONS, *chain.OPTIONS, *SOURCE_OPTIONS), key=lambda o: list(GROUPS).index(o.group)))
BY_NAME = {option.name: option for option in REGISTRY}


@dataclass(frozen=True)
class GenerationOptions:
    """The options of one generate() call, by transformers' GenerationConfig names where they have one: one field
    per declaration in REGISTRY, its default the declaration's. Built and checked by call/strategies.py."""
    strategy: str = "greedy"
    # strategy: how the next token is chosen, and each strategy's own settings
    seed: int | None = SEED.default
    num_return_sequences: int = NUM_RETURN_SEQUENCES.default
    num_beams: int = NUM_BEAMS.default
    length_penalty: float = LENGTH_PENALTY.default
    early_stopping: bool | str = EARLY_STOPPING.default
    num_beam_groups: int = NUM_BEAM_GROUPS.default
    diversity_penalty: float = DIVERSITY_PENALTY.default
    penalty_alpha: float = PENALTY_ALPHA.default
    draft_model: object = DRAFT_MODEL.default
    num_assistant_tokens: int = NUM_ASSISTANT_TOKENS.default
    do_sample: bool = DO_SAMPLE.default
    prompt_lookup_num_tokens: int = PROMPT_LOOKUP_NUM_TOKENS.default
    max_matching_ngram_size: int = MAX_MATCHING_NGRAM_SIZE.default
    # output: how much to generate, when to stop
    max_new_tokens: int = MAX_NEW_TOKENS.default
    eos_token_id: int | None = EOS_TOKEN_ID.default
    stop: tuple = STOP.default
    # penalties: every strategy
    logit_bias: tuple = penalties.LOGIT_BIAS.default
    sequence_bias: tuple = penalties.SEQUENCE_BIAS.default
    encoder_repetition_penalty: float = prompt.ENCODER_REPETITION_PENALTY.default
    repetition_penalty: float = REPETITION_PENALTY.default
    penalty_last_n: int | None = PENALTY_LAST_N.default
    frequency_penalty: float = penalties.FREQUENCY_PENALTY.default
    presence_penalty: float = penalties.PRESENCE_PENALTY.default
    no_repeat_ngram_size: int = penalties.NO_REPEAT_NGRAM_SIZE.default
    encoder_no_repeat_ngram_size: int = prompt.ENCODER_NO_REPEAT_NGRAM_SIZE.default
    bad_words_ids: tuple = penalties.BAD_WORDS_IDS.default
    min_new_tokens: int = penalties.MIN_NEW_TOKENS.default
    prefix_allowed_tokens_fn: object = constraints.PREFIX_ALLOWED_TOKENS_FN.default
    allowed_tokens_regex: str | None = constraints.ALLOWED_TOKENS_REGEX.default
    forced_eos_token_id: int | None = constraints.FORCED_EOS_TOKEN_ID.default
    exponential_decay_length_penalty: tuple | None = constraints.EXPONENTIAL_DECAY_LENGTH_PENALTY.default
    suppress_tokens: tuple = penalties.SUPPRESS_TOKENS.default
    # warpers: sampling only
    temperature: float = TEMPERATURE.default
    top_h: float | None = warpers.TOP_H.default
    top_k: int | None = TOP_K.default
    min_tokens_to_keep: int = MIN_TOKENS_TO_KEEP.default
    top_p: float = TOP_P.default
    min_p: float = MIN_P.default
    typical_p: float = warpers.TYPICAL_P.default
    epsilon_cutoff: float = warpers.EPSILON_CUTOFF.default
    eta_cutoff: float = warpers.ETA_CUTOFF.default
    # llama.cpp's samplers
    dry_multiplier: float = llama.DRY_MULTIPLIER.default
    dry_base: float = llama.DRY_BASE.default
    dry_allowed_length: int = llama.DRY_ALLOWED_LENGTH.default
    dry_penalty_last_n: int = llama.DRY_PENALTY_LAST_N.default
    dry_sequence_breakers: tuple = llama.DRY_SEQUENCE_BREAKERS.default
    dynatemp_range: float = llama.DYNATEMP_RANGE.default
    dynatemp_exponent: float = llama.DYNATEMP_EXPONENT.default
    top_n_sigma: float = llama.TOP_N_SIGMA.default
    xtc_probability: float = llama.XTC_PROBABILITY.default
    xtc_threshold: float = llama.XTC_THRESHOLD.default
    mirostat: int = MIROSTAT.default
    mirostat_tau: float = MIROSTAT_TAU.default
    mirostat_eta: float = MIROSTAT_ETA.default
    sampler_order: tuple = chain.SAMPLER_ORDER.default
    # the chain's end: every strategy
    watermark: bool = WATERMARK.default
    watermark_bias: float = WATERMARK_BIAS.default
    watermark_greenlist_ratio: float = WATERMARK_GREENLIST_RATIO.default
    watermark_hashing_key: int = WATERMARK_HASHING_KEY.default
    watermark_seeding_scheme: str = WATERMARK_SEEDING_SCHEME.default
    watermark_context_width: int = WATERMARK_CONTEXT_WIDTH.default
    renormalize_logits: bool = constraints.RENORMALIZE_LOGITS.default
    # guidance and DoLa: greedy and sample
    guidance_scale: float = GUIDANCE_SCALE.default
    negative_prompt_ids: tuple | None = NEGATIVE_PROMPT_IDS.default
    dola_layers: str | tuple | None = DOLA_LAYERS.default
    dola_read_out: str | None = DOLA_READ_OUT.default

    def chain_options(self) -> dict:
        """The values of the options the chain's links read (links/chain.build_chain's keyword arguments)."""
        return {option.name: getattr(self, option.name) for option in chain.OPTIONS}

    def validate(self):
        """What no single option can say: the links' contents (every link built once, ids unchecked against a
        vocabulary), and the rules between options that every strategy shares."""
        chain.build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=None, **self.chain_options())
        if self.min_new_tokens > self.max_new_tokens:
            raise OptionError("{least} ({low}) exceeds {most} ({high}), so the call could not generate that many "
                              "tokens; raise {most} or lower {least}.", least=penalties.MIN_NEW_TOKENS.said(),
                              most=MAX_NEW_TOKENS.said(), low=self.min_new_tokens, high=self.max_new_tokens)
        if self.negative_prompt_ids is not None and self.guidance_scale == 1:
            raise OptionError("{negative} is used only with {scale} other than 1 (1 is no guidance); set {scale}, such "
                              "as 1.5, or drop the negative prompt.", negative=NEGATIVE_PROMPT_IDS.said(),
                              scale=GUIDANCE_SCALE.said())
        if self.dola_read_out is not None and self.dola_layers is None:
            raise OptionError("{read_out} is used only with {layers}; set {layers} ('low', 'high' or layer indices).",
                              read_out=DOLA_READ_OUT.said(), layers=DOLA_LAYERS.said())
        if self.dola_layers is not None and self.guidance_scale != 1:
            raise OptionError("{scale} and {layers} cannot be combined, since each replaces the model's next-token "
                              "scores; choose one.", scale=GUIDANCE_SCALE.said(), layers=DOLA_LAYERS.said())
