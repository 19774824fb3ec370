"""The text views of the command line: `tokenize --merges` and `generate --show-candidates`, on the
fixture with GPT-2's full vocabulary. The candidates shown after the chain must be the sampler's own
trace; those before it, the softmax of the model's logits, computed here from model(ids) afresh."""

import json

import numpy as np
from conftest import load_model, reference
from helpers import run_cli as run

import minigpt
from minigpt.strategies.run import Candidate, Step
from minigpt.views.labels import WIDTH, token_label
from minigpt.views.text import candidate_lines

tok = minigpt.Tokenizer()
PROMPT = "I have a dream"
# Sampling with a penalty and a cut-off, so that the chain changes the distribution.
SAMPLE = dict(strategy="sample", seed=0, top_k=5, repetition_penalty=1.3, max_new_tokens=5)


def flags(options: dict) -> list[str]:
    return [x for name, value in options.items() for x in ("--" + name.replace("_", "-"), str(value))]


# ----------------------------------------------------------------------------- tokenize --merges


def test_tokenize_merges_table(capsys):
    code, out, _ = run(capsys, "tokenize", "Hello, my dog", "--merges", 3)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["pos", "id", "bytes", "text"]
    assert lines[4].split() == ["3", "3290", "20", "64", "6f", "67", "␣dog"]
    merges = tok.merges(3290)
    at = next(i for i, line in enumerate(lines) if line.startswith("token 3 is 3290 ␣dog"))
    assert f"{len(merges)} merges" in lines[at]
    rows = lines[at + 2 :]
    assert rows[0].split() == ["(bytes)", "␣", "d", "o", "g"]
    assert [int(r.split()[0]) for r in rows[1:]] == [m.rank for m in merges]
    assert rows[-1].split()[-1] == "␣dog" and rows[-1].split()[1:4] == ["␣do", "+", "g"]


def test_tokenize_merges_json(capsys):
    code, out, _ = run(capsys, "tokenize", "Hello, my dog", "--merges", 0, "--json")
    rows = json.loads(out)
    assert code == 0 and all("merges" not in row for row in rows[1:])
    assert rows[0]["merges"] == [{"left": m.left.hex(" "), "right": m.right.hex(" "), "rank": m.rank, "at": m.at}
                                 for m in tok.merges(15496)]
    assert bytes.fromhex(rows[0]["merges"][-1]["left"] + rows[0]["merges"][-1]["right"]) == b"Hello"


def test_tokenize_merges_refusals(capsys):
    code, _, err = run(capsys, "tokenize", "Hello, my dog", "--merges", 4)
    assert code == 1 and "0 to 3" in err and err.count("\n") == 1
    code, _, err = run(capsys, "tokenize", "<|endoftext|>", "--allow-special", "--merges", 0)
    assert code == 1 and "special token" in err


# ----------------------------------------------------------------------------- generate --show-candidates


def model_softmax(model, ids) -> np.ndarray:
    """p(next token | ids) from a full forward pass without the cache, in float64 [V]."""
    logits = model(np.array(ids)).astype(np.float64)[-1]  # [V]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def parse_tables(out: str):
    """The step tables of --show-candidates output: per step (chosen id, before rows, after rows), each
    row (token text, p, marked) read from the table's fixed columns."""
    cell_width = WIDTH + 11

    def cell(text):
        text = text.ljust(cell_width)
        return None if not text.strip() else (text[:WIDTH].rstrip(), float(text[WIDTH + 1 : WIDTH + 9]), text[WIDTH + 10] == "*")

    steps = []
    for line in out.splitlines():
        if line.startswith("step "):
            steps.append((int(line.split()[3]), [], []))
        elif steps and line[2:6].strip().isdigit():
            before, after = cell(line[8 : 8 + cell_width]), cell(line[10 + cell_width :])
            if before:
                steps[-1][1].append(before)
            if after:
                steps[-1][2].append(after)
    return steps


def test_show_candidates_equal_the_trace_and_the_model(capsys):
    folder, model, K = reference("fullvocab").folder, load_model("fullvocab"), 4
    options = {k: v for k, v in SAMPLE.items() if k != "strategy"}
    argv = ["generate", PROMPT, "--model", folder, "--strategy", "sample", *flags(options), "--show-candidates", K]
    code, out, _ = run(capsys, *argv, "--json")
    assert code == 0
    steps = json.loads(out)["sequences"][0]["steps"]
    prompt = tok.encode(PROMPT)
    library = minigpt.generate(model, prompt, "sample", trace_top=K, **options)
    assert [s["token"] for s in steps] == library.sequences[0]
    for t, (shown, traced) in enumerate(zip(steps, library.steps[0])):
        # after the chain: exactly what the sampler traced
        assert [Candidate(**c) for c in shown["candidates"]] == traced.candidates
        # before the chain: the softmax of the model's logits at this step, computed afresh
        p = model_softmax(model, prompt + library.sequences[0][:t])
        best = np.argsort(-p, kind="stable")[:K]
        assert [c["id"] for c in shown["raw_candidates"]] == best.tolist()
        np.testing.assert_allclose([c["p"] for c in shown["raw_candidates"]], p[best], rtol=1e-4)

    code, text, _ = run(capsys, *argv)
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == PROMPT + library.texts[0]
    assert lines[1] == "processor chain, in order: " + " -> ".join(library.chain)
    assert library.chain[0].startswith("repetition_penalty") and library.chain[1].startswith("top_k")
    tables = parse_tables(text)
    assert [chosen for chosen, _, _ in tables] == library.sequences[0]
    for (chosen, before, after), traced in zip(tables, library.steps[0]):
        for rows, candidates in ((before, traced.raw_candidates), (after, traced.candidates)):
            assert [r[0] for r in rows] == [token_label(tok, c.id, WIDTH) for c in candidates]
            assert [r[1] for r in rows] == [round(c.p, 4) for c in candidates]
            assert [r[2] for r in rows] == [c.id == chosen for c in candidates]  # the chosen token is marked


def test_show_candidates_for_beams(capsys):
    folder, model = reference("fullvocab").folder, load_model("fullvocab")
    options = dict(num_beams=3, num_return_sequences=2, no_repeat_ngram_size=2, max_new_tokens=4)
    argv = ["generate", PROMPT, "--model", folder, "--strategy", "beam", *flags(options), "--show-candidates", 3]
    library = minigpt.generate(model, tok.encode(PROMPT), "beam", trace_top=3, **options)
    code, out, _ = run(capsys, *argv, "--json")
    sequences = json.loads(out)["sequences"]
    assert code == 0 and len(sequences) == 2
    for shown, traced in zip(sequences, library.steps):
        assert [[Candidate(**c) for c in s["candidates"]] for s in shown["steps"]] == [s.candidates for s in traced]
        assert [[Candidate(**c) for c in s["raw_candidates"]] for s in shown["steps"]] == [s.raw_candidates for s in traced]
    code, text, _ = run(capsys, *argv)
    assert code == 0 and text.count("processor chain") == 1 and "--- sequence 2" in text
    tables = parse_tables(text)
    assert [chosen for chosen, _, _ in tables] == library.sequences[0] + library.sequences[1]


def test_show_candidates_prints_processor_state():
    step = Step(token=11, logprob=-1.5, candidates=[Candidate(11, 0.75), Candidate(13, 0.25)],
                raw_candidates=[Candidate(13, 0.5), Candidate(11, 0.4)],
                state={"mu": 3.125})
    lines = candidate_lines(tok, 1, step)
    assert lines[0].startswith("step 1: chose 11 ,") and lines[0].endswith("state mu=3.125")
    assert "*" in lines[2][-12:] and "*" in lines[3][8 : 8 + WIDTH + 11]  # after: rank 1; before: rank 2


def test_show_candidates_refuses_a_negative_count(capsys):
    code, _, err = run(capsys, "generate", PROMPT, "--model", reference("fullvocab").folder, "--show-candidates", -1)
    assert code == 1 and "--show-candidates" in err
