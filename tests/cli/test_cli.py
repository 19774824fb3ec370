"""The command line: output formats, and bad input ending in one line on stderr with no traceback."""

import json
import math
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import program_env
from helpers import run_cli as run
from helpers import run_program, write_checkpoint

import minigpt
from minigpt.cli.main import main
from minigpt.core.checks import OptionError
from minigpt.core.config import GPTConfig

# GPT-2's full vocabulary, so that any text runs end to end; tiny otherwise.
CONFIG = GPTConfig(vocab_size=50257, n_positions=64, n_embd=8, n_layer=1, n_head=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return str(write_checkpoint(tmp_path_factory.mktemp("cli"), CONFIG))


def test_generate_json_matches_the_library(capsys, checkpoint):
    code, out, _ = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "7", "--json")
    assert code == 0
    result = json.loads(out)
    tok = minigpt.Tokenizer()
    want = minigpt.generate(minigpt.load(checkpoint), tok.encode("The dog"), max_new_tokens=7).sequences[0]
    assert result["prompt_tokens"] == [464, 3290]
    assert result["sequences"][0]["tokens"] == want
    assert result["sequences"][0]["text"] == tok.decode(t for t in want if t != tok.eot)


def test_generate_streams_prompt_then_continuation(capsys, checkpoint):
    code, out, _ = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "7")
    tok = minigpt.Tokenizer()
    want = minigpt.generate(minigpt.load(checkpoint), tok.encode("The dog"), max_new_tokens=7).sequences[0]
    assert code == 0 and out == "The dog" + tok.decode(t for t in want if t != tok.eot) + "\n"


def test_generate_names_the_folder_its_weights_come_from(capsys, checkpoint, monkeypatch):
    code, out, err = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "2", "--verbose")
    assert code == 0 and out.startswith("The dog") and err == (f"minigpt: weights from {checkpoint}\n"
                                                                "minigpt: strategy greedy (no --strategy given: the default)\n")
    monkeypatch.chdir(Path(checkpoint).parent)  # a relative path is named absolute, as the folder read
    code, out, err = run(capsys, "generate", "The dog", "--model", Path(checkpoint).name, "--max-new-tokens", "2",
                         "--json")
    result = json.loads(out)
    assert code == 0 and err == "" and next(iter(result)) == "weights" and result["weights"] == checkpoint
    code, out, err = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "2")
    assert code == 0 and err == ""  # without --verbose: nothing said


def test_tokenize_rows(capsys):
    code, out, _ = run(capsys, "tokenize", "Hello, my dog", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [15496, 11, 616, 3290]
    assert rows[3] == {"id": 3290, "bytes": "20 64 6f 67", "text": " dog"}
    code, out, _ = run(capsys, "tokenize", "Hello, my dog")
    assert "␣dog" in out and "15496" in out


def test_score_json(capsys, checkpoint):
    code, out, _ = run(capsys, "score", "--json", "The quick brown fox", "--model", checkpoint)
    result = json.loads(out)
    ids = minigpt.Tokenizer().encode("The quick brown fox")
    logits = minigpt.load(checkpoint)(ids).astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    want = [float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
    assert code == 0 and result["tokens"] == ids and result["logprobs"][0] is None
    np.testing.assert_allclose(result["logprobs"][1:], want, rtol=1e-5, atol=1e-5)
    assert math.isclose(result["perplexity"], math.exp(-sum(want) / len(want)), rel_tol=1e-5)


@pytest.mark.parametrize("argv, needle", [
    (["generate", "hi", "--model", "/no/such/folder"], "/no/such/folder"),
    (["generate", "hi", "--max-new-tokens", "-3", "--model", "CHECKPOINT"], "--max-new-tokens must be"),
    (["generate", "hi " * 70, "--model", "CHECKPOINT"], "n_positions=64"),
    (["score", "", "--model", "CHECKPOINT"], "empty"),
])
def test_bad_input_is_one_line_without_traceback(capsys, checkpoint, argv, needle):
    argv = [checkpoint if a == "CHECKPOINT" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_python_dash_m(checkpoint):
    proc = run_program("generate", "", "--model", checkpoint, "--max-new-tokens", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["prompt_tokens"] == [50256]  # as the model read it: <|endoftext|>


def test_trace_json_lists_each_steps_candidates(capsys, checkpoint):
    code, out, _ = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "4", "--strategy",
                       "sample", "--seed", "3", "--top-k", "5", "--json", "--trace", "--trace-top", "3")
    result = json.loads(out)
    assert code == 0 and result["chain"] == ["top_k(k=5, min_tokens_to_keep=1)"]
    (seq,) = result["sequences"]
    assert [s["token"] for s in seq["steps"]] == seq["tokens"]
    assert math.isclose(seq["score"], sum(s["logprob"] for s in seq["steps"]), rel_tol=1e-6)
    tok = minigpt.Tokenizer()
    for step in seq["steps"]:
        probs = [c["p"] for c in step["candidates"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and all(p > 0 for p in probs)
        assert step["logprob"] < 0
        assert step["text"] == tok.decode([step["token"]])  # every token carries its text beside its id
        for c in step["candidates"] + step["raw_candidates"]:
            assert set(c) == {"id", "p", "text"} and c["text"] == tok.decode([c["id"]])


def test_score_json_gives_each_tokens_text(capsys, checkpoint):
    code, out, _ = run(capsys, "score", "The café is open", "--model", checkpoint, "--json")
    result = json.loads(out)
    tok = minigpt.Tokenizer()
    assert code == 0 and result["texts"] == [tok.decode([t]) for t in result["tokens"]]
    assert "".join(result["texts"]) == "The café is open" and len(result["logprobs"]) == len(result["tokens"])


def test_beam_json_is_best_first(capsys, checkpoint):
    code, out, _ = run(capsys, "generate", "The dog", "--model", checkpoint, "--max-new-tokens", "5", "--strategy",
                       "beam", "--num-beams", "3", "--num-return-sequences", "3", "--json")
    scores = [s["score"] for s in json.loads(out)["sequences"]]
    assert code == 0 and len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_option_the_strategy_cannot_use_is_refused(capsys, checkpoint):
    code, out, err = run(capsys, "generate", "hi", "--model", checkpoint, "--strategy", "greedy", "--top-p", "0.9")
    assert code == 1 and out == "" and "Traceback" not in err
    assert "does not use --top-p" in err and "add --strategy sample" in err


def test_a_sampling_option_without_a_strategy_samples_and_reports_its_seed(capsys, checkpoint):
    """As llama.cpp, Ollama and OpenAI-style APIs read it, --temperature alone means sampling; the seed drawn
    is said, so the text can be had again, and --json carries the strategy and the seed."""
    code, out, err = run(capsys, "generate", "hi", "--model", checkpoint, "--temperature", "0.7", "--json")
    result = json.loads(out)
    assert code == 0 and result["strategy"] == "sample" and isinstance(result["seed"], int)
    assert err == f"minigpt: seed {result['seed']} (--seed {result['seed']} gives this text again)\n"
    code, again, _ = run(capsys, "generate", "hi", "--model", checkpoint, "--temperature", "0.7", "--json", "--seed",
                         str(result["seed"]))
    assert code == 0 and json.loads(again)["sequences"] == result["sequences"]
    ids = minigpt.Tokenizer().encode("hi")
    out = minigpt.generate(minigpt.load(checkpoint), ids, temperature=0.7, max_new_tokens=3)  # Python reads it alike
    assert out.strategy == "sample" and out.seed is not None
    assert minigpt.generate(minigpt.load(checkpoint), ids, max_new_tokens=3).seed is None  # greedy draws nothing


def test_library_warnings_are_one_line(capsys, tmp_path):
    from helpers import random_params

    write_checkpoint(tmp_path, CONFIG, random_params(CONFIG) | {"score.weight": np.zeros((2, 8), np.float32)})
    # Python's default filter, whatever the caller's PYTHONWARNINGS says: the CLI rightly honours
    # PYTHONWARNINGS=ignore (no warning) and =error (an exception), but this test is about the format.
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code, _, err = run(capsys, "score", "hello world", "--model", str(tmp_path))
    assert code == 0 and err.count("\n") == 1 and err.startswith("minigpt: warning:") and "score.weight" in err
    done = run_program("score", "hello world", "--model", str(tmp_path), env=program_env(PYTHONWARNINGS="error"))
    assert done.returncode == 1 and "Traceback" not in done.stderr  # a warning made an error: its one sentence
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("minigpt: error: ") and "score.weight" in done.stderr


def test_bare_command_lists_the_commands_and_version_prints_it(capsys):
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    for command in ("generate", "tokenize", "score", "compare", "plot", "download"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command  # one line each, with what it does
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"minigpt {minigpt.__version__}\n"
    assert minigpt.__version__ == "0.1.0"


def test_a_closed_pipe_ends_quietly():
    """`minigpt tokenize ... | head -c 10`: the reader goes away; no error, and the exit status of SIGPIPE.
    The table (~18,000 rows) is far larger than a pipe's buffer, so the program cannot finish before."""
    argv = [sys.executable, "-m", "minigpt", "tokenize", "hello world " * 9000]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=program_env()) as proc:
        proc.stdout.read(10)
        proc.stdout.close()  # from here on every write fails with EPIPE
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 128 + signal.SIGPIPE and err == b""


def test_score_has_a_header_and_plurals_are_right(capsys, checkpoint):
    code, out, _ = run(capsys, "score", "The quick", "--model", checkpoint)
    assert code == 0 and out.splitlines()[0].split() == ["pos", "id", "log", "p", "text"]
    code, out, _ = run(capsys, "tokenize", "Hello")
    assert code == 0 and out.splitlines()[-1] == "1 token"
    code, out, _ = run(capsys, "tokenize", "Hello world")
    assert out.splitlines()[-1] == "2 tokens"


def test_every_flag_of_generate_says_its_default_and_range(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--top-p P nucleus: keep the fewest most probable tokens whose probability adds up to P (default 1; " \
           "a number in (0, 1])" in help_text
    assert "--max-new-tokens N how many tokens to generate at most (default 20; an integer >= 0)" in help_text
    assert ("--strategy NAME how the next token is chosen (default: greedy, or sample when an option only sampling "
            "uses is given): greedy: the most probable") in help_text


def test_a_refusal_names_python_keywords_in_python_and_flags_on_the_command_line(capsys):
    """One sentence, two readers: the library's words carry no flags, the command line's no keywords, and the
    command line rewrites nothing (the error itself spells its settings for each)."""
    with pytest.raises(OptionError) as err:
        minigpt.generate(minigpt.load("tiny"), [464], "greedy", temperature=0.7)
    assert str(err.value).startswith("strategy 'greedy' does not use temperature; it is an option of: sample")
    assert str(err.value).endswith("to use it, add strategy='sample'.") and "--" not in str(err.value)
    assert err.value.in_flags().startswith("strategy 'greedy' does not use --temperature; it is an option of")
    assert err.value.in_flags().endswith("to use it, add --strategy sample.")
    code, _, stderr = run(capsys, "generate", "hi", "--model", "tiny", "--strategy", "greedy", "--temperature",
                          "0.7")
    assert code == 1 and stderr == f"minigpt: error: {err.value.in_flags()}\n"


def test_plot_temperatures_are_repeated_flags_and_never_swallow_the_prompt(tmp_path, capsys):
    """--temperature took several values, and then the prompt after them as one more (a usage error): a repeated
    flag cannot eat the prompt. The plot's cut-off flags have the help their declarations give."""
    out = tmp_path / "probs.png"
    code, printed, err = run(capsys, "plot", "probs", "--temperature", "0.5", "--temperature", "1.5", "The stream",
                             "--model", "tiny", "--out", out)
    assert code == 0 and printed == f"{out}\n" and out.stat().st_size > 0, err
    with pytest.raises(SystemExit):
        main(["plot", "probs", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--top-p P nucleus: keep the fewest most probable tokens whose probability adds up to P" in help_text
    assert "--min-p P keep tokens at least P times as probable as the most probable one" in help_text


@pytest.mark.parametrize("argv,hint", [
    (["generate", "hi", "--model", "tiny", "--temprature", "0.7"], "(did you mean --temperature?)"),
    (["tokenize", "hi", "--model", "tiny"], "(minigpt tokenize takes no --model)"),
    (["generate", "hello", "world", "--model", "tiny"], "(a text of several words is one argument: put it in quotes)"),
    (["generate", "hi", "-5x"], "(a text that starts with '-' goes last, after '--'"),
    (["report", "hi", "--model", "tiny"], "required: --out; see 'minigpt report --help'"),
])
def test_a_usage_error_hints_only_what_applies(capsys, argv, hint):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and hint in err, err
    assert ("starts with '-'" in err) == (hint.startswith("(a text that starts with '-'"))
