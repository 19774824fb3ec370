"""The small trained GPT-2 that ships in minigpt/data/tiny/ (made by scripts/training/train_tiny.py): its files,
that it loads offline and generates, that the tokens its text never contains are unlikely, and that its README's
held-out perplexity is what minigpt computes."""

import json
import platform
import re
import shlex
import socket
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest
from helpers import CHECKOUT, program_env, run_program

import minigpt
from minigpt.core.numerics import softmax
from minigpt.weights.header import read_header
from scripts.training import tiny_corpus

TINY = Path(minigpt.__file__).parent / "data" / "tiny"
FILES = ("config.json", "model.safetensors", "README.md")
README = CHECKOUT / "README.md"


def readme_value(what: str) -> str:
    """The value of a row of the README's table: | what | value |."""
    match = re.search(rf"^\| {re.escape(what)} \| ([^|]+) \|$", (TINY / "README.md").read_text(), re.M)
    assert match, f"README.md has no row '{what}'"
    return match[1].strip()


def test_the_shipped_files_exist_and_fit_in_16_mb():
    sizes = [(TINY / name).stat().st_size for name in FILES]
    assert sum(sizes) <= 16_000_000


def test_it_is_gpt2_with_gpt2s_vocabulary_stored_in_float16():
    config = json.loads((TINY / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["vocab_size"] == minigpt.Tokenizer().n_vocab == 50257
    header, _ = read_header(TINY / "model.safetensors")
    assert {info["dtype"] for name, info in header.items() if name != "__metadata__"} == {"F16"}


def words(text: str) -> list[str]:
    return [word.lower() for word in re.findall(r"[A-Za-z]+", text)]


def readme_command_without_the_hub() -> list[str]:
    """The command that README's "Two commands" section gives a machine that cannot reach the hub."""
    section = README.read_text().split("## Two commands")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("minigpt ") and "--model tiny" in line]
    assert len(lines) == 1, "README's Two commands section names one command with --model tiny"
    return shlex.split(lines[0])


def test_minigpt_generate_model_tiny_writes_words_of_pythons_docs_without_network(tmp_path):
    """README's command for a machine without the hub: by name, from any folder, with the hub unreachable."""
    assert readme_command_without_the_hub() == ["minigpt", "generate", "The stream", "--model", "tiny"]
    with socket.create_server(("127.0.0.1", 0)) as probe:  # a port nothing listens on once closed
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = program_env(HF_ENDPOINT=closed, MINIGPT_WEIGHTS=str(tmp_path / "weights"), PYTHONWARNINGS="error")
    done = run_program(*readme_command_without_the_hub()[1:], env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    greedy = minigpt.generate(model, tok.encode("The stream"))  # the command line and the library share a default
    assert done.stdout == "The stream" + tok.decode(greedy.sequences[0]) + "\n"
    documented = set(words(" ".join(topics.values())))  # pydoc's topics: part of what tiny was trained on
    written = words(done.stdout)
    assert len(written) >= 8 and sum(word in documented for word in written) >= 0.9 * len(written), done.stdout
    assert not (tmp_path / "weights").exists()


def unseen_tokens(model) -> np.ndarray:
    """[V] bool: the tokens whose embedding is the one that the tokens absent from the training text share (training
    keeps their rows equal, scripts/training/train_tiny.py): the rows equal to the most common row."""
    wte = model.params["wte"]["weight"]  # [V, C]
    rows, counts = np.unique(wte, axis=0, return_counts=True)
    return (wte == rows[counts.argmax()]).all(axis=1)


def test_the_tokens_absent_from_its_text_share_one_trained_embedding():
    model = minigpt.load(str(TINY))
    unseen = unseen_tokens(model)
    present = int(readme_value("distinct tokens in the training text").split()[0].replace(",", ""))
    assert unseen.sum() == 50257 - present
    assert np.abs(model.params["wte"]["weight"][unseen]).max() > 0  # trained, not left at 0


# The prompts tiny is shown with: the notebook's (docs/decoding_strategies.ipynb, when it runs on tiny), the
# command of README's "Two commands", and the pictures' (docs/pictures.md).
SHOWN_PROMPTS = ["If the file is not found,", "The stream", "This function returns", "This method returns a",
                 "If the file is not found, an exception is raised."]


def test_the_prompts_tiny_is_shown_with_are_those_above():
    notebook = json.loads((CHECKOUT / "docs" / "decoding_strategies.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    assert any(f'PROMPT = "I have a dream" if MODEL == "gpt2" else "{SHOWN_PROMPTS[0]}"' in s for s in sources)
    pictures = (CHECKOUT / "docs" / "pictures.md").read_text()
    assert set(re.findall(r'^minigpt plot \w+(?:-\w+)? "([^"]+)" --model tiny', pictures, re.M)) == set(SHOWN_PROMPTS[2:])
    assert readme_command_without_the_hub()[2] == SHOWN_PROMPTS[1]


@pytest.mark.parametrize("prompt", SHOWN_PROMPTS)
def test_the_tokens_absent_from_its_text_hold_under_1_percent_at_t_1(prompt):
    """As in a GPT-2, the tokens its text never contains are unlikely: together under 1% of p(next token), at
    every position of the prompt and of the greedy text that follows it (what the notebook's lesson stands on)."""
    model, tok = minigpt.load(str(TINY)), minigpt.Tokenizer()
    ids = tok.encode(prompt)
    text = ids + minigpt.generate(model, ids, max_new_tokens=40).sequences[0]
    p = softmax(model(text))  # [T, V]: p(next token) after every position, at T = 1
    share = p[:, unseen_tokens(model)].sum(axis=1)  # [T]
    assert share.max() < 0.01, f"the unseen tokens hold {share.max():.2%} after {tok.decode(text[:share.argmax() + 1])!r}"


def test_the_readmes_held_out_perplexity_is_what_minigpt_computes():
    python = readme_value("Python")
    if platform.python_version() != python:
        pytest.skip(f"the held-out text comes from Python {python}'s own files; this is {platform.python_version()}")
    _, held = tiny_corpus.split(tiny_corpus.documents())
    if tiny_corpus.sha256(held) != readme_value("SHA-256 of the held-out text"):
        pytest.skip(f"this Python {python} installation's files give another held-out text than the README's")
    ids = tiny_corpus.token_ids(held, minigpt.Tokenizer())
    assert f"{len(ids):,}" == readme_value("tokens (training / held out)").split(" / ")[1]
    recorded = float(readme_value("held-out perplexity (minigpt, these float16 weights)"))
    model = minigpt.load(str(TINY))
    assert tiny_corpus.held_out_perplexity(model, ids) == pytest.approx(recorded, abs=0.006)
    train, _ = tiny_corpus.split(tiny_corpus.documents())
    unseen = np.setdiff1d(np.arange(50257), tiny_corpus.token_ids(train, minigpt.Tokenizer()))
    assert (unseen_tokens(model) == np.isin(np.arange(50257), unseen)).all()  # the rows shared are those tokens'
    assert f"{int(np.isin(ids, unseen).sum()):,}" == readme_value("held-out tokens that the training text never contains")
    share = readme_value(f"probability of the {len(unseen):,} unseen tokens together, mean over the held-out positions")
    assert tiny_corpus.unseen_share(model, ids, unseen) == pytest.approx(float(share), rel=0.006)
