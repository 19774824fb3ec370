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
from minigpt.core.links import MinP, TopP
from minigpt.core.numerics import softmax
from minigpt.inspection.compare import RunSpec, compare
from minigpt.links.llama import TopNSigma
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
    """As in a GPT-2, the tokens its text never contains are unlikely: together under 1% of p(next token) after
    the prompt, at T = 1 (the distribution the notebook and the pictures draw)."""
    model, tok = minigpt.load(str(TINY)), minigpt.Tokenizer()
    share = softmax(model(tok.encode(prompt))[-1])[unseen_tokens(model)].sum()
    assert share < 0.01, f"the unseen tokens hold {share:.2%} after {prompt!r}"


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


# The lesson of docs/decoding_strategies.ipynb, computed on tiny: each claim its markdown makes about a strategy, on
# its prompt, with its runs (40 tokens, seed 0, as its side-by-side comparison runs them) and one run at T = 1 more.
LESSON_RUNS = [
    RunSpec("greedy", {}, "greedy"),
    RunSpec("beam", {"num_beams": 4}, "beam"),
    RunSpec("beam", {"num_beams": 4, "no_repeat_ngram_size": 2}, "beam, no repeat"),
    RunSpec("sample", {"temperature": 0.7}, "temperature 0.7"),
    RunSpec("sample", {"top_k": 20}, "top-k 20"),
    RunSpec("sample", {"top_p": 0.9}, "top-p 0.9"),
    RunSpec("sample", {"min_p": 0.1}, "min-p 0.1"),
    RunSpec("greedy", {"repetition_penalty": 1.3}, "repetition penalty"),
    RunSpec("contrastive", {"penalty_alpha": 0.6, "top_k": 4}, "contrastive"),
    RunSpec("sample", {"temperature": 1.5}, "temperature 1.5"),
    RunSpec("sample", {"temperature": 1.5, "top_n_sigma": 1.0}, "top-nσ, T 1.5"),
    RunSpec("sample", {}, "temperature 1"),  # not in the notebook: what temperature and the cut-offs depart from
]
SAMPLED = ["temperature 0.7", "top-k 20", "top-p 0.9", "min-p 0.1", "temperature 1.5", "top-nσ, T 1.5", "temperature 1"]


def test_the_lessons_runs_are_the_notebooks():
    notebook = json.loads((CHECKOUT / "docs" / "decoding_strategies.ipynb").read_text())
    source = "".join(line for cell in notebook["cells"] for line in cell["source"])
    for run in LESSON_RUNS[:-1]:
        assert f'RunSpec("{run.strategy}", {run.options}, "{run.label}")'.replace("'", '"') in source, run


@pytest.fixture(scope="module")
def lesson():
    """(model, prompt ids, the greedy text's logits after each of its positions [40, V], the runs by label)."""
    model, tok = minigpt.load(str(TINY)), minigpt.Tokenizer()
    ids = tok.encode(SHOWN_PROMPTS[0])
    runs = {c.spec.name: c for c in compare(model, ids, LESSON_RUNS, max_new_tokens=40, seed=0, tokenizer=tok)}
    text = ids + runs["greedy"].tokens
    return model, ids, model(text)[len(ids) - 1 : -1], runs


def rank_correlation(a, b) -> float:
    """Spearman's rho: the correlation of the ranks (no ties expected)."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def kept(link, logits) -> np.ndarray:
    """[N, V] logits -> [N]: how many tokens the link leaves in each row."""
    return np.isfinite(link(logits, np.zeros((len(logits), 1), dtype=np.int64))).sum(axis=-1)


def test_the_searches_find_likelier_text_than_sampling_and_repeat_themselves(lesson):
    """ "Over a longer text, beam search finds more probable text than greedy search, and it repeats itself all the
    same"; no_repeat_ngram_size=2 repeats no bigram; "The searches score a high log p and repeat themselves;
    sampling trades likelihood for variety"."""
    *_, runs = lesson
    assert runs["beam"].logprob > runs["greedy"].logprob
    assert runs["greedy"].distinct[2] < 1 and runs["beam"].distinct[2] < 1 and runs["beam, no repeat"].distinct[2] == 1
    assert max(runs[name].distinct[2] for name in ("greedy", "beam")) < min(runs[name].distinct[2] for name in SAMPLED)


def test_the_searches_score_a_higher_log_p_than_every_sampled_run(lesson):
    *_, runs = lesson
    assert min(runs[name].logprob for name in ("greedy", "beam")) > max(runs[name].logprob for name in SAMPLED)


def test_temperature_below_1_makes_the_text_likelier_and_above_1_less_likely(lesson):
    """ "below 1 it sharpens the distribution (the likely get likelier), above 1 it flattens it": as the runs show it."""
    *_, runs = lesson
    assert runs["temperature 0.7"].logprob > runs["temperature 1"].logprob > runs["temperature 1.5"].logprob


def test_the_long_tail_holds_much_of_the_probability(lesson):
    """Sampling is "sometimes incoherent, because the long tail of unlikely tokens holds much of the probability"."""
    model, ids, _, _ = lesson
    p = np.sort(softmax(model(ids)[-1]))[::-1]
    assert p[15:].sum() > 0.25  # the tail beyond the 15 tokens the notebook draws


def test_top_p_keeps_few_tokens_when_the_model_is_sure_and_many_when_not(lesson):
    _, _, logits, _ = lesson
    sure = softmax(logits).max(axis=-1)  # [40] p of the top token after each position of the greedy text
    assert rank_correlation(sure, kept(TopP(0.9), logits)) < -0.5  # the surer, the fewer


def test_min_p_scales_with_confidence_and_holds_up_at_high_temperature(lesson):
    model, ids, logits, _ = lesson
    assert rank_correlation(softmax(logits).max(axis=-1), kept(MinP(0.1), logits)) < -0.5
    hot = model(ids)[-1:] / np.float32(1.5)  # after the prompt, at T = 1.5, as the notebook's picture draws it
    assert kept(MinP(0.1), hot)[0] * 4 < kept(TopP(0.9), hot)[0]


def test_top_n_sigma_keeps_the_same_tokens_at_every_temperature_and_samples_hot(lesson):
    """ "the set it keeps does not grow with the temperature: it samples hot without the tail of nonsense"."""
    _, _, logits, runs = lesson
    at_1 = np.isfinite(TopNSigma(1.0)(logits, None))
    for t in (1.5, 2.0):
        assert (np.isfinite(TopNSigma(1.0)(logits / np.float32(t), None)) == at_1).all()
    assert runs["top-nσ, T 1.5"].logprob > runs["temperature 1.5"].logprob  # without the tail of nonsense
    assert runs["top-nσ, T 1.5"].distinct[2] > runs["greedy"].distinct[2]  # and not greedy search in disguise


def test_top_n_sigma_samples_from_more_than_one_token_at_most_steps(lesson):
    model, ids, *_ = lesson
    run = minigpt.generate(model, ids, "sample", seed=0, temperature=1.5, top_n_sigma=1.0, max_new_tokens=40)
    assert sum(step.survivors > 1 for step in run.steps[0]) > 20


def test_the_repetition_penalty_and_contrastive_search_repeat_less_than_greedy_search(lesson):
    *_, runs = lesson
    for name in ("repetition penalty", "contrastive"):
        assert runs[name].distinct[2] > runs["greedy"].distinct[2], name
