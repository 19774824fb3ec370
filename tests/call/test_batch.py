"""A file of prompts (minigpt/batch.py, `minigpt generate --input --output`): batched yet equal to each prompt
run alone, in input order, bad lines named by number, and an interrupted or killed run finished by running
it again, with no line lost or written twice."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import load_model, reference
from helpers import program_env, run_cli

import minigpt
from minigpt.call import batch
from minigpt.call.batch import run_prompt_file

MODEL = str(reference("fullvocab").folder)
LINES = [
    {"prompt": "The dog"},
    {"prompt": "Hello, my dog is a little"},
    {"prompt": "Today, I"},
    {"prompt": "The quick brown fox", "max_new_tokens": 3},
    {"prompt": "Once upon a time", "strategy": "sample", "seed": 3, "temperature": 0.8},
    {"prompt": "Once upon a time", "strategy": "sample", "seed": 3, "temperature": 0.8},
    {"prompt": "", "strategy": "beam", "num_beams": 2, "num_return_sequences": 2},
    {"prompt": "I have a dream"},
]


def write_lines(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def alone(line: dict, max_new_tokens=6) -> dict:
    """generate() on this one prompt, as the file's line asks."""
    tok, options = minigpt.Tokenizer(), {k: v for k, v in line.items() if k not in ("prompt", "strategy")}
    out = minigpt.generate(load_model("fullvocab"), tok.encode(line["prompt"]), line.get("strategy", "greedy"),
                           **{"max_new_tokens": max_new_tokens, **options})
    return {"text": out.texts[0], "tokens": out.sequences[0], "finish_reason": out.finish_reasons[0],
            "prompt_tokens": out.prompt_tokens[0]}


def read_results(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_line_equals_its_prompt_run_alone_in_input_order(tmp_path, monkeypatch):
    calls = []
    generate = batch.generate
    monkeypatch.setattr(batch, "generate", lambda model, prompts, *a, **k: calls.append(len(prompts)) or
                        generate(model, prompts, *a, **k))
    out = tmp_path / "results.jsonl"
    assert run_prompt_file(load_model("fullvocab"), write_lines(tmp_path / "in.jsonl", LINES), out,
                           options={"max_new_tokens": 6}) == len(LINES)
    results = read_results(out)
    assert [r["line"] for r in results] == list(range(1, len(LINES) + 1))
    for line, result in zip(LINES, results):
        assert {k: result[k] for k in ("text", "tokens", "finish_reason", "prompt_tokens")} == alone(line)
    assert calls == [3, 1, 1, 1, 1, 1]  # the first three share their options; sampling lines run alone
    assert len(results[6]["sequences"]) == 2  # beam's two returned sequences, best first


def test_an_interrupted_run_finishes_when_run_again(tmp_path):
    source, out = write_lines(tmp_path / "in.jsonl", LINES), tmp_path / "results.jsonl"
    model = load_model("fullvocab")
    whole = tmp_path / "whole.jsonl"
    run_prompt_file(model, source, whole, options={"max_new_tokens": 6})

    def ctrl_c_after_the_first_batch(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_prompt_file(model, source, out, options={"max_new_tokens": 6}, progress=ctrl_c_after_the_first_batch)
    assert len(read_results(out)) == 3
    with open(out, "a") as f:
        f.write('{"line": 4, "text": " cut sh')  # a crash in the middle of writing a line
    assert run_prompt_file(model, source, out, options={"max_new_tokens": 6}) == len(LINES) - 3
    assert out.read_text() == whole.read_text()


def test_a_killed_process_loses_no_line_and_doubles_none(tmp_path):
    lines = [{"prompt": f"Line number {i} says"} for i in range(40)]
    source, out = write_lines(tmp_path / "in.jsonl", lines), tmp_path / "results.jsonl"
    argv = [sys.executable, "-m", "minigpt", "generate", "--input", str(source), "--output", str(out), "--model",
            MODEL, "--max-new-tokens", "8", "--batch-size", "1"]
    proc = subprocess.Popen(argv, env=program_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a hang guard, never reached
    while (not out.exists() or out.read_text().count("\n") < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(out)
    assert 3 <= len(partial) < len(lines)
    done = subprocess.run(argv, env=program_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = read_results(out)
    assert [r["line"] for r in results] == list(range(1, len(lines) + 1))
    assert results[: len(partial)] == partial
    assert results[-1]["tokens"] == alone(lines[-1], max_new_tokens=8)["tokens"]


def test_a_bad_line_is_named_and_refused_before_any_work_unless_skipped(tmp_path, capsys):
    source = write_lines(tmp_path / "in.jsonl", [LINES[0], "not json", {"prompt": "x", "top_k": -1},
                                                  {"prompt": "y", "colour": "red"}, LINES[1]])
    out = tmp_path / "results.jsonl"
    code, _, err = run_cli(capsys, "generate", "--input", source, "--output", out, "--model", MODEL)
    assert code == 1 and err.count("\n") == 1 and f"line 2 of {source} cannot run: it is not JSON" in err
    assert "--skip-bad-lines" in err and not out.exists()
    code, _, err = run_cli(capsys, "generate", "--input", source, "--output", out, "--model", MODEL,
                           "--skip-bad-lines", "--max-new-tokens", "6")
    assert code == 0
    results = read_results(out)
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5]
    assert results[1]["error"].startswith("it is not JSON")
    assert "top_k" in results[2]["error"] and "'colour' is neither prompt" in results[3]["error"]
    assert results[4]["tokens"] == alone(LINES[1])["tokens"]  # the lines around a bad one run as ever


@pytest.mark.parametrize("argv, says", [
    (["--input", "in.jsonl"], "--input and --output go together"),
    (["hello", "--input", "in.jsonl", "--output", "out.jsonl"], "give a prompt or --input FILE.jsonl, not both"),
    (["--input", "in.jsonl", "--output", "out.jsonl", "--json"], "with --input every result goes to --output"),
    (["--input", "in.jsonl", "--output", "no/such/folder/out.jsonl"], "the folder no/such/folder does not exist"),
    ([], "give a prompt to continue, or --input FILE.jsonl --output FILE.jsonl"),
])
def test_the_command_line_refuses_what_does_not_fit_together(argv, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "in.jsonl", LINES[:1])
    code, _, err = run_cli(capsys, "generate", *argv, "--model", MODEL)
    assert code == 1 and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize("command", [["generate", "--input", "{f}", "--output", "{out}"], ["score", "--file", "{f}"]])
def test_a_file_that_is_not_utf8_text_is_named_in_one_line(command, tmp_path, capsys):
    bad, out = tmp_path / "latin1.txt", tmp_path / "out.jsonl"
    bad.write_bytes("café\n".encode("latin-1"))
    argv = [a.format(f=bad, out=out) for a in command]
    code, _, err = run_cli(capsys, *argv, "--model", MODEL)
    assert code == 1 and err.count("\n") == 1 and f"{bad}: it is not UTF-8 text; give a UTF-8 " in err
