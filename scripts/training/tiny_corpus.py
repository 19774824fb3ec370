"""The text the shipped tiny model learns from, rebuilt from this machine's own Python installation.

Any fresh machine with Python has it, offline. Two sources, both part of CPython and under the Python
Software Foundation License (PSF-2.0; "Copyright (c) 2001 Python Software Foundation; All Rights Reserved"):

- `pydoc_data/topics.py`: the topics of the Python Language Reference that `help("for")` shows, as
  plain text (about 465,000 characters in Python 3.11);
- the docstrings of the standard library's modules, classes and functions, read from its `.py` files with
  `ast` (nothing is imported or run), in path order; tests, idlelib, lib2to3, turtledemo and
  site-packages are left out.

Only prose is kept: a paragraph (a block between blank lines) whose lines are not indented (code
examples, grammar rules, argument tables), holds no `>>>` and has at least five words, its hard-wrapped
lines joined into one. Heading underlines go, and a paragraph met before is dropped the second time
("Return self==value." would otherwise be a tenth of what the model learns). Each topic, and each
module's docstrings together, is one document; documents end with <|endoftext|>. Every 20th document is
held out: the model never trains on it, and its perplexity is measured on it.

Other Python versions ship other text: the model's README records the version and the SHA-256 of the text.
No torch here: the tests rebuild the held-out text with this module and score it with minigpt.
"""

import ast
import hashlib
import re
import sysconfig
from pathlib import Path

import numpy as np

from minigpt.core.numerics import softmax
from minigpt.inspection import perplexity_of, token_logprobs

SKIPPED = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages"}  # folders of the stdlib left out
HELD_OUT_EVERY = 20  # documents 19, 39, 59, ... are held out: 5% of them
END = "<|endoftext|>"  # how the text marks the end of a document (encoded as the token 50256)
UNDERLINE = re.compile(r"([*=\-~^\"#])\1{2,}")  # a heading's underline: ***** or ===== or -----


def stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def paragraphs(text: str) -> list[str]:
    """The prose paragraphs of plain text, each as one line."""
    kept = []
    for block in re.split(r"\n[ \t]*\n", text.expandtabs()):
        lines = [line.rstrip() for line in block.strip("\n").splitlines() if not UNDERLINE.fullmatch(line.strip())]
        if not lines or any(line[:1].isspace() or ">>>" in line for line in lines):
            continue  # indented: code, grammar, a table; or an interactive session
        paragraph = " ".join(line.strip() for line in lines)
        if len(paragraph.split()) >= 5:
            kept.append(paragraph)
    return kept


def topics(root: Path) -> list[str]:
    """The reference manual's topics, by name: the dict literal `topics = {...}`, read without running it."""
    tree = ast.parse((root / "pydoc_data" / "topics.py").read_text(encoding="utf-8"))
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "topics" for t in node.targets))
    found = ast.literal_eval(table)
    return [found[name] for name in sorted(found)]


def docstrings(tree: ast.AST) -> list[str]:
    """The docstrings of a module, then of its classes and functions, in the order they appear in the source."""
    found = []
    if isinstance(tree, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        text = ast.get_docstring(tree)
        if text:
            found.append(text)
    for node in ast.iter_child_nodes(tree):
        found += docstrings(node)
    return found


def modules(root: Path) -> list[str]:
    """Each standard-library module's docstrings, as one text per module, in path order."""
    texts = []
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        if SKIPPED & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue  # a file kept as a bad example (there are a few in the stdlib)
        texts.append("\n\n".join(docstrings(tree)))
    return texts


def documents(root: Path | None = None) -> list[str]:
    """The prose documents, topics first, each paragraph only at its first appearance."""
    root = root or stdlib()
    seen, docs = set(), []
    for text in topics(root) + modules(root):
        fresh = [p for p in paragraphs(text) if not (p in seen or seen.add(p))]
        if fresh:
            docs.append("\n\n".join(fresh))
    return docs


def split(docs: list[str]) -> tuple[list[str], list[str]]:
    """(training documents, held-out documents): every HELD_OUT_EVERY-th document is held out."""
    held = [i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 for i in range(len(docs))]
    return [d for d, h in zip(docs, held) if not h], [d for d, h in zip(docs, held) if h]


def joined(docs: list[str]) -> str:
    """The documents as one text, each followed by <|endoftext|>: what the SHA-256 is taken of."""
    return "".join(doc + END for doc in docs)


def sha256(docs: list[str]) -> str:
    return hashlib.sha256(joined(docs).encode("utf-8")).hexdigest()


def token_ids(docs: list[str], tok) -> list[int]:
    """Every document's tokens, each document followed by the end-of-text token."""
    ids = []
    for doc in docs:
        ids += tok.encode(doc) + [tok.eot]
    return ids


def held_out_perplexity(model, ids: list[int]) -> float:
    """exp(mean -log p) of the ids, scored by minigpt in consecutive windows of the model's context
    (the first token of each window is context only, as `minigpt score` scores a text)."""
    window = model.config.n_positions
    logprobs = []
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        if len(chunk) > 1:
            logprobs += token_logprobs(model, chunk)
    return perplexity_of(logprobs)


def unseen_share(model, ids: list[int], unseen: np.ndarray) -> float:
    """The probability the model gives the tokens `unseen` together, as the next token, averaged over the positions
    that held_out_perplexity scores (consecutive windows of the model's context, each but its last position)."""
    window, shares = model.config.n_positions, []
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        if len(chunk) > 1:
            p = softmax(model(chunk)[:-1])  # [T-1, V]
            shares += p[:, unseen].sum(axis=1).tolist()
    return float(np.mean(shares))
