"""Bad, odd and extreme input: each case ends in correct output or in one sentence naming what is wrong
and how to fix it (a ValueError from the library; from the CLI a non-zero exit, one line on stderr,
no traceback). NumPy's RuntimeWarnings (overflow, invalid, divide) are errors in this file.

The matrix: prompts (empty, whitespace, "<|endoftext|>" as text, any Unicode, undecodable argv bytes,
too long, ids beyond the model's vocabulary); options (wrong types, out of range, contradictions);
numerics (one token allowed, none allowed, exact ties, extreme temperatures, -inf/NaN/+inf biases).
Cases already covered elsewhere (test_cli.py, test_generate.py, test_sampling.py, test_beam.py,
test_processors.py) are not repeated.
"""

import json
import math

import numpy as np
import pytest
from helpers import program_env, random_params
from helpers import run_cli as cli
from helpers import run_program, write_checkpoint

import minigpt
from minigpt.call.strategies import build_options
from minigpt.cli.main import main
from minigpt.core.config import GPTConfig
from minigpt.strategies.options import OptionError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

V = 64  # the tiny model's vocabulary; its end-of-text is outside it unless a test names one
TINY = GPTConfig(vocab_size=V, n_positions=24, n_embd=16, n_layer=2, n_head=2)
NEVER = V  # an end-of-text id no token equals: generation runs to max_new_tokens
PROMPT = [1, 2, 3]
STRATEGIES = {  # the options each strategy needs to run (the draft model is added by the fixture)
    "greedy": {}, "sample": {"seed": 0}, "beam": {"num_beams": 3}, "beam-sample": {"num_beams": 3, "seed": 0},
    "diverse-beam": {"num_beams": 4, "num_beam_groups": 2}, "contrastive": {}, "speculative": {},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    tie = random_params(TINY, seed=3)
    tie["wte.weight"][[5, 9]] = 0.0  # tokens 5 and 9: the same (zero) embedding, so exactly equal logits
    return {
        "tiny": write_checkpoint(root / "tiny", TINY),
        "draft": write_checkpoint(root / "draft", GPTConfig(vocab_size=V, n_positions=24, n_embd=8, n_layer=1, n_head=2)),
        "tie": write_checkpoint(root / "tie", TINY, tie),
        # GPT-2's tokenizer, but a vocabulary of 1000: most text has ids the model cannot read
        "small-vocab": write_checkpoint(root / "small-vocab",
                                        GPTConfig(vocab_size=1000, n_positions=64, n_embd=8, n_layer=1, n_head=2)),
        # GPT-2's vocabulary, a short context: any text runs end to end, and the context is easy to overflow
        "text": write_checkpoint(root / "text", GPTConfig(vocab_size=50257, n_positions=64, n_embd=8, n_layer=1, n_head=2)),
    }


@pytest.fixture(scope="module")
def tiny(folders):
    return minigpt.load(folders["tiny"])


@pytest.fixture(scope="module")
def draft(folders):
    return minigpt.load(folders["draft"])


def run(model, strategy, draft=None, prompt=PROMPT, **options):
    options = {"max_new_tokens": 3, "eos_token_id": NEVER} | STRATEGIES[strategy] | options
    if strategy == "speculative":
        options["draft_model"] = draft
    return minigpt.generate(model, prompt, strategy, **options)


def assert_one_line_error(code, err, *needles):
    assert code != 0
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("minigpt"), err
    for needle in needles:
        assert needle in err, err


tok = minigpt.Tokenizer()


# ----------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_empty_prompt_starts_from_endoftext_for_every_strategy(tiny, draft, strategy):
    eot = 63  # this vocabulary has no 50256: name one
    out = run(tiny, strategy, draft, prompt=[], eos_token_id=eot)
    assert out.prompt_tokens == [[eot]]
    assert out.sequences[:1] == run(tiny, strategy, draft, prompt=[eot], eos_token_id=eot).sequences[:1]


@pytest.mark.parametrize("text", [" ", "   \n\t", "\n\n"])
def test_whitespace_prompt_is_ordinary_text(capsys, folders, text):
    code, out, err = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "3", "--json")
    result = json.loads(out)
    assert code == 0 and result["prompt_tokens"] == tok.encode(text) != []
    code, out, _ = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "3")
    assert code == 0 and out == text + result["sequences"][0]["text"] + "\n"


def test_endoftext_written_as_text_is_not_the_special_token(capsys, folders):
    code, out, _ = cli(capsys, "generate", "<|endoftext|>", "--model", folders["text"], "--max-new-tokens", "3", "--json")
    prompt = json.loads(out)["prompt_tokens"]
    assert code == 0 and prompt == tok.encode("<|endoftext|>") and tok.eot not in prompt and len(prompt) > 1
    model = minigpt.load(folders["text"])
    assert minigpt.generate(model, prompt, max_new_tokens=3).prompt_tokens == [prompt]


UNICODE = ["🦙🚀 emoji", "漢字とかな", "e\u0301 a\u0308 combining", "שלום עולם", "مرحبا بالعالم", "mixed 🦙 שלום 漢"]


@pytest.mark.parametrize("text", UNICODE)
def test_any_unicode_prompt_streams_back_exactly(capsys, folders, text):
    code, out, _ = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "4", "--json")
    result = json.loads(out)
    assert code == 0 and result["prompt_tokens"] == tok.encode(text)
    code, out, _ = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "4")
    assert code == 0 and out == text + result["sequences"][0]["text"] + "\n"


def subprocess_cli(*argv, env=None):
    """python -m minigpt with argv given as bytes where the test wants bytes that are not UTF-8."""
    return run_program(*argv, env=env, text=False)


def test_undecodable_argv_bytes_become_replacement_characters(folders):
    """Bytes that are not UTF-8 reach Python as lone surrogates; each becomes U+FFFD, in the prompt,
    in a stop string and in tokenize, and the output is valid UTF-8."""
    prompt, stop = b"caf\xe9 \xff\xfe ok", b"\xed\xa0\x80"  # Latin-1, stray bytes, an encoded surrogate
    proc = subprocess_cli(b"generate", prompt, b"--model", str(folders["text"]).encode(), b"--max-new-tokens", b"4",
                          b"--stop", stop, b"--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode("utf-8"))
    assert result["prompt_tokens"] == tok.encode("caf\ufffd \ufffd\ufffd ok")
    proc = subprocess_cli(b"tokenize", prompt, b"--json")
    rows = json.loads(proc.stdout.decode("utf-8"))
    assert proc.returncode == 0 and "".join(r["text"] for r in rows) == "caf\ufffd \ufffd\ufffd ok"


def test_a_terminal_that_cannot_show_the_text_is_named(folders):
    env = program_env(PYTHONIOENCODING="ascii")
    proc = subprocess_cli("generate", "🦙", "--model", str(folders["text"]), "--max-new-tokens", "2", env=env)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1 and "Traceback" not in err and err.count("\n") == 1
    assert "ascii" in err and "PYTHONIOENCODING=utf-8" in err


def test_lone_surrogates_in_python_text_encode_as_replacement_characters():
    assert tok.decode(tok.encode("a\ud800b\udfff")) == "a\ufffdb\ufffd"


# ----------------------------------------------------------------------------- prompts longer than the context


def test_long_prompt_is_refused_naming_the_limit_and_the_way_out(tiny):
    with pytest.raises(ValueError, match=r"n_positions=24.*truncate_prompt=True to keep.*last 19 tokens"):
        minigpt.generate(tiny, list(range(30)), max_new_tokens=5)


def test_truncate_prompt_keeps_the_last_tokens(tiny):
    long, short = list(range(40)), [7, 8]
    out = minigpt.generate(tiny, [long, short], max_new_tokens=5, eos_token_id=NEVER, truncate_prompt=True)
    assert out.prompt_tokens == [long[-19:], short]  # 24 positions - 5 new tokens
    alone = minigpt.generate(tiny, [long[-19:], short], max_new_tokens=5, eos_token_id=NEVER)
    assert out.sequences == alone.sequences
    fits = minigpt.generate(tiny, short, max_new_tokens=5, eos_token_id=NEVER, truncate_prompt=True)
    assert fits.prompt_tokens == [short]  # a prompt that fits is left alone


@pytest.mark.parametrize("max_new_tokens", [24, 30])
def test_truncation_cannot_make_room_when_max_new_tokens_fills_the_context(tiny, max_new_tokens):
    with pytest.raises(ValueError, match=rf"max_new_tokens \({max_new_tokens}\) leaves no room.*at most 23 new tokens"):
        minigpt.generate(tiny, [1, 2], max_new_tokens=max_new_tokens, truncate_prompt=True)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_truncate_prompt_must_be_a_bool(tiny, bad):
    with pytest.raises(ValueError, match="truncate_prompt must be true or false"):
        minigpt.generate(tiny, [1, 2], truncate_prompt=bad)


def test_cli_truncate_prompt(capsys, folders):
    text = "one two " * 40
    n = len(tok.encode(text))  # 81 tokens, context 64
    code, _, err = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "4")
    assert_one_line_error(code, err, "n_positions=64", "--truncate-prompt")
    code, out, err = cli(capsys, "generate", text, "--model", folders["text"], "--max-new-tokens", "4", "--json",
                         "--truncate-prompt")
    assert code == 0 and json.loads(out)["prompt_tokens"] == tok.encode(text)[-60:]
    assert f"first {n - 60} of {n} tokens were dropped" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- ids the model cannot read


def test_ids_beyond_the_vocabulary_are_named(folders):
    model = minigpt.load(folders["small-vocab"])
    ids = tok.encode("Hello world")  # [15496, 995]
    with pytest.raises(ValueError, match=r"token id 15496 is outside the model's vocabulary of vocab_size=1000"):
        minigpt.generate(model, ids)
    with pytest.raises(ValueError, match=r"token id 1000 is outside .* vocab_size=1000 \(ids 0 to 999\)"):
        minigpt.generate(model, [[5, 6], [1000]])
    with pytest.raises(ValueError, match=r"token id 15496 is outside the model's vocabulary of vocab_size=1000"):
        model(ids)


@pytest.mark.parametrize("command", ["generate", "score"])
def test_cli_names_the_id_beyond_the_vocabulary(capsys, folders, command):
    code, out, err = cli(capsys, command, "Hello world", "--model", folders["small-vocab"])
    assert out == ""
    assert_one_line_error(code, err, "token id 15496", "vocab_size=1000")


@pytest.mark.parametrize("prompt, needle", [
    ([-1, 2], "token id -1"),
    ([1.0, 2], "integer token ids"),
    ([True, 2], "integer token ids"),
    (["1", "2"], "integer token ids"),
    ([[1, 2], [3, "x"]], "integer token ids"),
    ([1, [2]], "integer token ids"),
    ("Hello", "not text; encode the text first"),
    (b"Hello", "not text"),
    (None, "got NoneType"),
    (7, "got int"),
    (np.zeros((1, 2, 3), dtype=np.int64), "shape"),
    (np.array([1.5, 2.0]), "integer token ids"),
])
def test_prompts_that_are_not_token_ids_are_refused(tiny, prompt, needle):
    with pytest.raises(ValueError, match=needle):
        minigpt.generate(tiny, prompt, max_new_tokens=2)


def test_attention_mask_must_be_zeros_and_ones(tiny):
    with pytest.raises(ValueError, match="attention_mask must hold only 1"):
        minigpt.generate(tiny, [[0, 5, 6]], attention_mask=[[2, 1, 1]], max_new_tokens=2)


def test_tokenizer_refuses_what_is_not_text_or_an_id():
    with pytest.raises(ValueError, match="encode takes a str, got bytes"):
        tok.encode(b"bytes")
    for bad in ("5", 5.0, True, None):
        with pytest.raises(ValueError, match="must be an integer"):
            tok.decode([bad])


# ----------------------------------------------------------------------------- option types and ranges, from Python

INTEGER_OPTIONS = {  # option -> a strategy that uses it
    "max_new_tokens": "greedy", "min_new_tokens": "greedy", "eos_token_id": "greedy", "no_repeat_ngram_size": "greedy",
    "top_k": "sample", "min_tokens_to_keep": "sample", "seed": "sample", "num_return_sequences": "sample",
    "num_beams": "beam", "num_beam_groups": "diverse-beam", "num_assistant_tokens": "speculative",
}
REAL_OPTIONS = {
    "temperature": "sample", "top_p": "sample", "min_p": "sample", "typical_p": "sample", "epsilon_cutoff": "sample",
    "eta_cutoff": "sample", "repetition_penalty": "greedy", "frequency_penalty": "greedy", "presence_penalty": "greedy",
    "length_penalty": "beam", "diversity_penalty": "diverse-beam", "penalty_alpha": "contrastive",
}
BAD_INTEGERS = ["3", True, False, math.nan, math.inf, 2.5, 3.0, -1, [3], np.float64(3.0)]
BAD_REALS = ["0.5", True, math.nan, math.inf, -math.inf, 1e300, -1e300, [0.5], 1 + 2j, np.float32(np.nan)]


def build(strategy, **options):
    needs = {"beam": {"num_beams": 4}, "diverse-beam": {"num_beams": 4, "num_beam_groups": 2},
             "speculative": {"draft_model": "distilgpt2", "do_sample": True}}.get(strategy, {})
    return build_options(strategy, **(needs | options))


@pytest.mark.parametrize("name", INTEGER_OPTIONS)
@pytest.mark.parametrize("value", BAD_INTEGERS, ids=repr)
def test_integer_options_refuse_other_types_and_negatives(name, value):
    with pytest.raises(OptionError, match=rf"^{name} must be"):
        build(INTEGER_OPTIONS[name], **{name: value})


@pytest.mark.parametrize("name", REAL_OPTIONS)
@pytest.mark.parametrize("value", BAD_REALS, ids=repr)
def test_real_options_refuse_other_types_nan_inf_and_out_of_range(name, value):
    with pytest.raises(OptionError, match=rf"^{name} must be"):
        build(REAL_OPTIONS[name], **{name: value})


def test_numpy_numbers_are_accepted(tiny):
    out = run(tiny, "sample", temperature=np.float32(0.7), top_k=np.int64(5), max_new_tokens=np.int64(2))
    assert len(out.sequences[0]) == 2


@pytest.mark.parametrize("strategy, options, needle", [
    ("greedy", {"stop": 5}, "stop must be a string or a list of strings"),
    ("greedy", {"stop": [""]}, "stop must be a list of non-empty strings"),
    ("greedy", {"stop": [5]}, "stop must be a list of non-empty strings"),
    ("greedy", {"suppress_tokens": "12"}, "suppress_tokens must be a list of token ids"),
    ("greedy", {"suppress_tokens": b"1"}, "suppress_tokens must be a list of token ids"),
    ("greedy", {"suppress_tokens": 5}, "suppress_tokens must be a list of token ids"),
    ("greedy", {"suppress_tokens": {1: 2}}, "suppress_tokens must be a list of token ids"),
    ("greedy", {"suppress_tokens": [1.5]}, "suppress_tokens must hold integer token ids"),
    ("greedy", {"suppress_tokens": [-1]}, "suppress_tokens must hold integer token ids >= 0"),
    ("greedy", {"bad_words_ids": [1, 2]}, "bad_words_ids must be a list of token-id lists"),
    ("greedy", {"bad_words_ids": [[]]}, "bad_words_ids must be a list of non-empty"),
    ("greedy", {"bad_words_ids": "x"}, "bad_words_ids must be a list of token-id lists"),
    ("greedy", {"bad_words_ids": [[True]]}, "bad_words_ids must hold integer token ids"),
    ("greedy", {"logit_bias": 5}, r"logit_bias must be a dict of token id -> bias, such as \{50256: -100.0\}"),
    ("greedy", {"logit_bias": [1, 2]}, r"logit_bias must be a dict of token id -> bias, such as \{50256: -100.0\}"),
    ("greedy", {"logit_bias": [(1, 2.0), (1, 3.0)]}, r"logit_bias must be a dict of token id -> bias, such as \{50256: -100.0\}"),
    ("greedy", {"logit_bias": {"1": 2.0}}, "logit_bias must hold integer token ids"),
    ("greedy", {"logit_bias": {1: "2"}}, "logit_bias for token 1 must be a number"),
    ("greedy", {"logit_bias": {1: 1e10}}, r"logit_bias for token 1 must be a number in \[-1e9, 1e9\], or -inf"),
    ("beam", {"early_stopping": "sometimes"}, "early_stopping must be"),
    ("beam", {"early_stopping": 1}, "early_stopping must be"),
    ("speculative", {"do_sample": "yes"}, "do_sample must be true or false"),
    ("speculative", {"draft_model": 5}, "draft_model must be a GPT2 model, a name or a path"),
    ("beam search", {}, "strategy must be one of"),
    (3, {}, "strategy must be one of"),  # None is the default: greedy, or sample for a sampling option
])
def test_malformed_option_values_are_refused(strategy, options, needle):
    with pytest.raises(OptionError, match=needle):
        build(strategy, **options)


def test_generate_keywords_are_checked(tiny):
    for keyword, value, needle in [("trace_top", -1, "trace_top"), ("trace_top", True, "trace_top"),
                                   ("trace_top", 2.0, "trace_top"), ("on_token", 5, "on_token must be a function")]:
        with pytest.raises(ValueError, match=needle):
            minigpt.generate(tiny, PROMPT, max_new_tokens=2, **{keyword: value})


def test_a_call_too_big_for_memory_is_refused_before_allocating(tiny):
    """More in tests/test_memory.py, under a memory cap."""
    with pytest.raises(ValueError, match=r"this sample call would need about .* EiB of memory at its peak, mostly "
                                         r".* is available; lower .*num_return_sequences"):
        minigpt.generate(tiny, PROMPT, "sample", num_return_sequences=10**15, max_new_tokens=2)
    with pytest.raises(ValueError, match=r"lower .*num_beams"):
        minigpt.generate(tiny, PROMPT, "beam", num_beams=10**12, max_new_tokens=2)


# ----------------------------------------------------------------------------- contradictions


@pytest.mark.parametrize("strategy, options, needle", [
    ("greedy", {"min_new_tokens": 5, "max_new_tokens": 4},
     r"min_new_tokens \(5\) exceeds max_new_tokens \(4\).*raise max_new_tokens"),
    ("sample", {"do_sample": True}, "strategy 'sample' does not use do_sample; it is an option of: speculative"),
    ("speculative", {"temperature": 0.7}, "uses temperature only when it samples; add do_sample=True"),
    ("speculative", {"top_k": 5}, "uses top_k only when it samples"),
    ("speculative", {"seed": 1}, "uses seed only when it samples"),
    ("beam", {"num_beams": 2, "num_return_sequences": 3}, r"num_return_sequences \(3\) must be at most num_beams \(2\)"),
    ("greedy", {"draft_model": "/no/such/model"}, "strategy 'greedy' does not use draft_model"),
])
def test_contradicting_options_are_refused(strategy, options, needle):
    if strategy == "speculative":
        options = {"draft_model": "distilgpt2"} | options
    with pytest.raises(OptionError, match=needle):
        build_options(strategy, **options)


def test_min_new_tokens_equal_to_max_new_tokens_is_allowed(tiny):
    out = run(tiny, "greedy", min_new_tokens=3, max_new_tokens=3, eos_token_id=0)
    assert len(out.sequences[0]) == 3 and 0 not in out.sequences[0]


def test_cli_draft_model_with_another_vocabulary(capsys, folders):
    code, _, err = cli(capsys, "generate", "hi", "--model", folders["text"], "--strategy", "speculative",
                       "--draft-model", folders["small-vocab"], "--max-new-tokens", "2")
    assert_one_line_error(code, err, "draft model's vocabulary (1000 tokens) differs from the target's (50257)")


# ----------------------------------------------------------------------------- bad options from the command line


@pytest.mark.parametrize("argv, needle", [
    (["--strategy", "sample", "--top-k", "2.5"], "--top-k: expected a whole number"),
    (["--max-new-tokens", "1e3"], "--max-new-tokens: expected a whole number"),
    (["--strategy", "sample", "--temperature", "warm"], "--temperature: expected a number"),
    (["--strategy", "sample", "--temperature", "nan"], "temperature must be a number in [1e-20, 1e20]"),
    (["--strategy", "sample", "--temperature", "inf"], "temperature must be"),
    (["--strategy", "sample", "--temperature=-inf"], "temperature must be"),
    (["--strategy", "sample", "--temperature", "-inf"], "a value that starts with '-' is written with '='"),
    (["--strategy", "sample", "--temperature", "0"], "use the greedy strategy"),
    (["--strategy", "sample", "--top-p", "nan"], "--top-p must be a number in (0, 1]"),
    (["--strategy", "sample", "--seed", "-1"], "--seed must be an integer >= 0"),
    (["--repetition-penalty", "inf"], "--repetition-penalty must be"),
    (["--frequency-penalty=-3000"], "--frequency-penalty must be a number in [-1000, 1000]"),
    (["--logit-bias", "5=nan"], "--logit-bias for token 5 must be"),
    (["--logit-bias", "5=inf"], "--logit-bias for token 5 must be"),
    (["--logit-bias", "x=1"], "expected TOKEN=BIAS"),
    (["--suppress-tokens", "1,x"], "expected comma-separated token ids"),
    (["--suppress-tokens", "-1"], "--suppress-tokens must hold integer token ids >= 0"),
    (["--suppress-tokens", "99999"], "--suppress-tokens has token ids outside [0, 50257): [99999]"),
    (["--strategy", "beam", "--num-beams", "0"], "--num-beams must be an integer >= 1"),
    (["--strategy", "beam", "--num-beams", "2", "--length-penalty", "nan"], "--length-penalty must be"),
    (["--strategy", "beam", "--num-beams", "2", "--early-stopping", "maybe"], "expected true, false or never"),
    (["--strategy", "beam", "--num-beams", "2", "--stop", "."], "strategy 'beam' does not use --stop"),
    (["--stop", ""], "--stop must be a list of non-empty strings"),
    (["--trace", "--trace-top", "-1"], "--trace-top must be"),
    (["--do-sample"], "does not use --do-sample"),
    (["--strategy", "speculative", "--draft-model", "X", "--temperature", "0.5"], "uses --temperature only when it samples; add --do-sample,"),
    (["--min-new-tokens", "50"], "--min-new-tokens (50) exceeds --max-new-tokens (20)"),
])
def test_cli_bad_options_end_in_one_line(capsys, folders, argv, needle):
    argv = [str(folders["text"]) if a == "X" else a for a in argv]
    code = None
    try:
        code = main(["generate", "hi", "--model", str(folders["text"]), *argv])
    except SystemExit as e:  # argparse's own checks exit with 2
        code = e.code
    out, err = capsys.readouterr()
    assert code not in (0, None) and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and needle in err, err


# ----------------------------------------------------------------------------- one token allowed, or none


ALL_BUT_7 = [t for t in range(V) if t != 7]


@pytest.mark.parametrize("how", ["suppress_tokens", "logit_bias"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_token_left_is_chosen_by_every_strategy(tiny, draft, strategy, how):
    options = {"suppress_tokens": ALL_BUT_7} if how == "suppress_tokens" else {"logit_bias": {t: -math.inf for t in ALL_BUT_7}}
    out = run(tiny, strategy, draft, max_new_tokens=4, **options)
    assert out.sequences[0] == [7, 7, 7, 7]
    assert all(math.isfinite(s) for s in out.scores[:1])


@pytest.mark.parametrize("how, step, processors", [
    ({"suppress_tokens": list(range(V))}, 1, r"\(suppress_tokens\).*suppress fewer tokens"),
    ({"logit_bias": {t: -math.inf for t in range(V)}}, 1, r"\(logit_bias\).*give fewer tokens a -inf logit_bias"),
    # tokens 7, 8, 9 allowed, and none may repeat: after three steps nothing is left
    ({"suppress_tokens": [t for t in range(V) if t not in (7, 8, 9)], "no_repeat_ngram_size": 1}, 4,
     r"\(no_repeat_ngram_size, suppress_tokens\).*raise no_repeat_ngram_size or suppress fewer tokens"),
    # only the end-of-text token is allowed, and min_new_tokens holds it back
    ({"suppress_tokens": list(range(1, V)), "min_new_tokens": 2, "eos_token_id": 0}, 1,
     r"\(min_new_tokens, suppress_tokens\).*lower min_new_tokens"),
])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nothing_left_is_a_clear_error_for_every_strategy(tiny, draft, strategy, how, step, processors):
    with pytest.raises(ValueError, match=rf"^every token was masked at step {step} by the logit processors {processors}"):
        run(tiny, strategy, draft, max_new_tokens=6, **how)


def test_cli_nothing_left_mid_stream_ends_the_text_line_then_names_the_step(capsys, folders):
    allowed = [0, 11, 13]  # "!", ",", ".": none in the prompt, and no token may repeat
    suppressed = ",".join(str(t) for t in range(50257) if t not in allowed)
    code, out, err = cli(capsys, "generate", "hi", "--model", folders["text"], "--max-new-tokens", "6",
                         "--suppress-tokens", suppressed, "--no-repeat-ngram-size", "1")
    assert out.startswith("hi") and out.endswith("\n") and sorted(out[2:-1]) == sorted(",.!")
    assert_one_line_error(code, err, "every token was masked at step 4", "(--no-repeat-ngram-size, --suppress-tokens)")


def test_beam_search_goes_on_while_one_beam_has_tokens(tiny):
    """After 7 neither 7 nor 8 may come, so a beam ending in 7 has no continuation; the search must go
    on with the others rather than stop or raise."""
    options = dict(suppress_tokens=[t for t in range(V) if t not in (7, 8)], bad_words_ids=[[7, 7], [7, 8]])
    for strategy in ("beam", "beam-sample", "diverse-beam"):
        out = run(tiny, strategy, max_new_tokens=5, num_return_sequences=2, **options)
        for tokens, score in zip(out.sequences, out.scores):
            assert math.isfinite(score) and set(tokens) <= {7, 8}
            assert all(a != 7 for a, _ in zip(tokens, tokens[1:]))  # 7 is never followed by anything


@pytest.mark.parametrize("strategy", ["greedy", "sample", "contrastive"])
def test_a_finished_row_left_without_tokens_does_not_stop_the_batch(tiny, strategy):
    """Row [7] may only end (7 is seen, no repeats): it ends at step 1, and from step 2 on its padding
    leaves it nothing at all. Row [1] goes on: that must not raise."""
    eos = 63
    options = dict(suppress_tokens=[t for t in range(V) if t not in (7, eos)], no_repeat_ngram_size=1,
                   logit_bias={eos: -50.0}, eos_token_id=eos, max_new_tokens=3)
    extra = {"sample": {"seed": 0}, "contrastive": {"penalty_alpha": 0.0}}.get(strategy, {})
    out = minigpt.generate(tiny, [[7], [1]], strategy, **extra, **options)
    assert out.sequences == [[eos], [7, eos]]


# ----------------------------------------------------------------------------- ties and temperatures


@pytest.mark.parametrize("strategy", ["greedy", "beam", "diverse-beam", "contrastive", "speculative"])
def test_exact_ties_go_to_the_lowest_id(folders, strategy):
    model = minigpt.load(folders["tie"])
    only = dict(suppress_tokens=[t for t in range(V) if t not in (5, 9)])
    traced = run(model, "greedy", trace_top=2, **only).steps[0][0].candidates
    assert [c.id for c in traced] == [5, 9] and traced[0].p == traced[1].p == 0.5  # an exact tie
    out = run(model, strategy, draft=model, max_new_tokens=4, **only)
    assert out.sequences[0] == [5, 5, 5, 5]


def test_torch_argmax_also_takes_the_first_of_equal_maxima():
    torch = pytest.importorskip("torch")
    assert int(torch.tensor([0.0, 2.0, 1.0, 2.0]).argmax()) == int(np.argmax([0.0, 2.0, 1.0, 2.0])) == 1


@pytest.mark.parametrize("prompt", [[1, 2, 3], [40], [9, 9, 9, 9]])
def test_temperature_near_zero_is_greedy(tiny, draft, prompt):
    greedy = run(tiny, "greedy", prompt=prompt, max_new_tokens=6).sequences
    assert run(tiny, "sample", prompt=prompt, max_new_tokens=6, temperature=1e-6).sequences == greedy
    assert run(tiny, "speculative", draft, prompt=prompt, max_new_tokens=6, temperature=1e-6, do_sample=True,
               seed=0).sequences == greedy
    beam = run(tiny, "beam", prompt=prompt, max_new_tokens=6).sequences
    assert run(tiny, "beam-sample", prompt=prompt, max_new_tokens=6, temperature=1e-20, top_k=3).sequences == beam


def test_temperature_huge_is_uniform_and_finite(tiny):
    out = run(tiny, "sample", max_new_tokens=3, temperature=1e6, trace_top=V)
    for step in out.steps[0]:
        probs = np.array([c.p for c in step.candidates])
        assert len(probs) == V and np.isfinite(probs).all()
        np.testing.assert_allclose(probs, 1 / V, rtol=1e-3)
    out = run(tiny, "sample", max_new_tokens=3, temperature=1e20, trace_top=V)
    assert all(0 <= t < V for t in out.sequences[0])


@pytest.mark.parametrize("t", [0, -1, 1e-21, 1e21])
def test_temperatures_beyond_the_range_are_refused(t):
    with pytest.raises(OptionError, match=r"^temperature must be a number in \[1e-20, 1e20\]"):
        build_options("sample", temperature=t)


# ----------------------------------------------------------------------------- a user's logit bias


def test_minus_inf_bias_bans_the_token(tiny):
    free = run(tiny, "greedy", max_new_tokens=6).sequences[0]
    favourite = free[0]
    banned = run(tiny, "greedy", max_new_tokens=6, logit_bias={favourite: -math.inf}).sequences[0]
    assert favourite not in banned


@pytest.mark.parametrize("bias", [math.nan, math.inf, np.float32(np.nan)], ids=repr)
def test_nan_and_plus_inf_bias_are_refused_when_the_options_are_built(bias):
    with pytest.raises(OptionError, match="logit_bias for token 3 must be a number in .* or -inf to ban the token"):
        build_options("greedy", logit_bias={3: bias})


def test_the_largest_bias_and_penalties_together_stay_finite(tiny):
    """The extremes of every scale together (bias 1e9, penalty 1e-3, temperature 1e-20) cause no overflow."""
    out = run(tiny, "beam-sample", max_new_tokens=4, logit_bias={5: 1e9, 6: -1e9}, repetition_penalty=1e-3,
              temperature=1e-20, trace_top=3)
    assert out.sequences[0] == [5, 5, 5, 5] and math.isfinite(out.scores[0])
