"""Every command written in the documentation runs: each `minigpt ...` line of a code block in README.md and in
docs/*.md, each ```python block, and each `python -m scripts...` command named there.

A command runs as a child `python -m minigpt`, offline (HF_HUB_OFFLINE=1), in a fresh folder, on the shipped tiny
model where it names gpt2 or another real checkpoint, or no model at all (this machine has no real weights), and,
when it asks for no length, for SHORT new tokens rather than 40 (the module then runs in under a minute); the files
it reads (--file, --input) are written for it first. `minigpt download` runs against a FakeHub on 127.0.0.1
(fake_hub.py); `minigpt explore` is asked for its page and for the answers to the pages' curl commands, then
stopped with Ctrl-C. A command ends with exit code 0 and no traceback, unless its line says `# refused:`: then it
ends in one line on stderr and a non-zero exit. The same command written twice runs once. A block of what a
command printed is marked ```text and is not run. A ```python block runs in a child Python, on tiny. The scripts'
commands answer --help, unless they need an optional package that is not installed (the scripts are being sorted
into folders: until `scripts.bench`, `scripts.docs`, ... exist, those tests skip).

The pictures' commands (`minigpt plot ... --out` on a page that shows the picture) are run, and their pictures
compared, by test_readme_pictures.py.
"""

import importlib.util
import json
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_hub import CONFIG, FakeHub, serving, tiny_safetensors
from helpers import CHECKOUT, program_env, run_program

from minigpt.cli.main import parser
from minigpt.weights.places import repo_id

PAGES = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
REAL = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2")  # checkpoints this machine does not have
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
SHORT = 12  # new tokens for a command that asks for no length
SHELL = ("", "bash", "sh", "shell")  # the blocks that hold commands; a block of what a command printed is ```text
TEXT = ("The open() function returns a file object. If the file cannot be opened, an OSError is raised. "
        "A method of the file object reads the stream, and another writes a string to it.\n")


@dataclass(frozen=True)
class Block:
    page: str  # the page's name, README.md or docs/NAME.md
    line: int  # the line of its first line, from 1
    language: str
    text: str


def blocks(page: Path) -> list[Block]:
    """The page's fenced code blocks, each without the indentation of its fence (a block inside a list item)."""
    found, lines, name = [], page.read_text().splitlines(), str(page.relative_to(CHECKOUT))
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if fence:
            indent, start, i = len(fence[1]), i + 1, i + 1
            while not lines[i].strip().startswith("```"):
                i += 1
            found.append(Block(name, start + 1, fence[2], "\n".join(line[indent:] for line in lines[start:i])))
        i += 1
    return found


@dataclass(frozen=True)
class Command:
    where: str  # page:line
    argv: tuple[str, ...]  # as written, after `minigpt`
    refused: bool  # the line is marked `# refused:`


def commands_of(block: Block) -> list[Command]:
    """The `minigpt ...` commands of a block: lines continued by a trailing backslash joined, and the part after
    `&&` of an install-and-run line."""
    found, joined, first = [], "", 0
    for offset, line in enumerate(block.text.splitlines()):
        joined, first = (joined + " " + line.strip(), first) if joined else (line.strip(), offset)
        if joined.endswith("\\"):
            joined = joined[:-1].rstrip()
            continue
        for part in joined.split(" && "):
            if part.startswith("minigpt "):
                found.append(Command(f"{block.page}:{block.line + first}", tuple(shlex.split(part, comments=True)[1:]),
                                     "# refused:" in part))
        joined = ""
    return found


def picture_commands() -> set[tuple[str, ...]]:
    """The commands that draw a picture a page shows: test_readme_pictures.py runs them."""
    drawn = set()
    for page in PAGES:
        text = page.read_text()
        pictures = {Path(p).name for p in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)}
        for line in text.splitlines():
            if line.startswith("minigpt plot ") and "--out " in line:
                if Path(line.split("--out ")[1].split()[0]).name in pictures:
                    drawn.add(tuple(shlex.split(line, comments=True)[1:]))
    return drawn


def documented_commands() -> list[Command]:
    """Every command of every page, the first of each distinct one, less the pictures' commands."""
    seen, found = picture_commands(), []
    for page in PAGES:
        for block in blocks(page):
            if block.language in SHELL:
                for command in commands_of(block):
                    if command.argv not in seen:
                        seen.add(command.argv)
                        found.append(command)
    return found


def curl_requests() -> list[tuple[str, bytes]]:
    """(path, body) of each `curl ... URL -d BODY` command of the pages: requests to explore's endpoints."""
    found = []
    for block in (block for page in PAGES for block in blocks(page) if block.language in SHELL):
        for line in block.text.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                words = shlex.split(line, comments=True)
                url = next(word for word in words if word.startswith("http://127.0.0.1:8000/"))
                found.append((url.removeprefix("http://127.0.0.1:8000/"), words[words.index("-d") + 1].encode()))
    return found


def options_of(argv: tuple[str, ...]) -> set[str]:
    """The flags the (sub)command named by argv takes, from the program's own parser."""
    action = next(a for a in parser()._actions if a.dest == "command")
    command = action.choices[argv[0]]
    if argv[0] == "plot":
        command = next(a for a in command._actions if a.choices).choices[argv[1]]
    return set(command._option_string_actions)


def runnable_here(argv: tuple[str, ...]) -> list[str]:
    """The command with tiny in place of a checkpoint this machine lacks, a free port for explore, and, when it
    asks for no length, SHORT new tokens rather than the default 40: every flag is still read and used."""
    argv, flags = list(argv), options_of(argv)
    if "--model" in flags and "--model" not in argv:
        argv += ["--model", "tiny"]
    if "--max-new-tokens" in flags and not {"--max-new-tokens", "--min-new-tokens", "--input"} & set(argv):
        argv += ["--max-new-tokens", str(SHORT)]
    for flag in ("--model", "--draft-model"):
        if flag in argv and argv[argv.index(flag) + 1] in REAL:
            argv[argv.index(flag) + 1] = "tiny"
    if argv[0] == "explore":
        argv += ["--port", "0"]
    return argv


def write_inputs(argv: list[str], folder: Path):
    """The files a command reads, with a few lines each: prompts for --input, texts for --file."""
    for flag, value in zip(argv, argv[1:]):
        path = folder / value
        if flag == "--input":
            lines = [{"prompt": "The stream"}, {"prompt": "A file object", "max_new_tokens": 8},
                     {"prompt": "This function returns", "strategy": "sample", "seed": 3}]
            path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        elif flag == "--file" and value.endswith(".jsonl"):
            path.write_text("".join(json.dumps({"text": TEXT * n}) + "\n" for n in (1, 2, 3)))
        elif flag == "--file":
            path.write_text(TEXT * 12)


def offline(folder: Path, **settings) -> dict[str, str]:
    return program_env(HF_HUB_OFFLINE="1", HF_HOME=str(folder / "hf-home"), MINIGPT_WEIGHTS=str(folder / "weights"),
                       **settings)


COMMANDS = documented_commands()
EXPLORE = [c for c in COMMANDS if c.argv[0] == "explore"]
DOWNLOAD = [c for c in COMMANDS if c.argv[0] == "download"]
OTHERS = [c for c in COMMANDS if c not in EXPLORE + DOWNLOAD]


def test_the_pages_hold_commands_of_every_kind():
    assert {c.argv[0] for c in COMMANDS} == {"generate", "tokenize", "score", "compare", "plot", "report", "explore",
                                             "download", "attribute", "patch", "heads", "detect-watermark"}
    assert any(c.refused for c in COMMANDS) and EXPLORE and DOWNLOAD and curl_requests()


@pytest.mark.parametrize("command", OTHERS, ids=lambda c: c.where)
def test_the_command_runs(command, tmp_path):
    if command.argv[0] == "plot" and not HAS_MATPLOTLIB:
        pytest.skip("the plots extra (matplotlib) is not installed")
    argv = runnable_here(command.argv)
    write_inputs(argv, tmp_path)
    done = run_program(*argv, env=offline(tmp_path), cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    if command.refused:
        assert done.returncode != 0 and done.stderr.count("\n") == 1, (done.returncode, done.stderr)
        assert done.stderr.startswith("minigpt: error: ")
    else:
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", DOWNLOAD, ids=lambda c: c.where)
def test_the_download_command_fetches_from_a_hub(command, tmp_path):
    safetensors = tiny_safetensors(tmp_path)
    with serving(FakeHub()) as fake:
        fake.repos = {repo_id(name): {"config.json": CONFIG, "model.safetensors": safetensors} for name in REAL}
        env = offline(tmp_path, HF_ENDPOINT=fake.url, HF_HUB_DISABLE_IMPLICIT_TOKEN="1", HF_HUB_DISABLE_TELEMETRY="1")
        del env["HF_HUB_OFFLINE"]
        done = run_program(*command.argv, env=env, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.is_relative_to(tmp_path / "weights") and (folder / "model.safetensors").read_bytes() == safetensors


@pytest.mark.parametrize("command", EXPLORE, ids=lambda c: c.where)
def test_explore_serves_its_page_and_answers_the_curl_commands_until_ctrl_c(command, tmp_path):
    """As tests/web/test_explore.py starts it: SIGINT at its default in the child, whatever the caller inherited."""
    process = subprocess.Popen([sys.executable, "-m", "minigpt", *runnable_here(command.argv)], env=offline(tmp_path),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = err = ""
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline()).group(0)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never the caller's http_proxy
        with opener.open(url, timeout=60) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        for path, body in curl_requests():
            request = urllib.request.Request(url + path, body, {"Content-Type": "application/json"})
            with opener.open(request, timeout=60) as response:
                assert response.status == 200 and json.loads(response.read())
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in err, (process.returncode, out, err)


PYTHON = [block for page in PAGES for block in blocks(page) if block.language == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: f"{b.page}:{b.line}")
def test_the_python_block_runs_on_tiny(block, tmp_path):
    if "plots" in block.text and not HAS_MATPLOTLIB:
        pytest.skip("the plots extra (matplotlib) is not installed")
    code = block.text.replace('minigpt.load("gpt2")', 'minigpt.load("tiny")')
    done = subprocess.run([sys.executable, "-c", code], env=offline(tmp_path, MPLBACKEND="Agg"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


SCRIPTS = sorted({m for page in PAGES for m in re.findall(r"python -m (scripts(?:\.\w+)+)", page.read_text())})
# What a script may need beyond minigpt: the reference, browser, notebook and plots extras, and llama-cpp-python.
OPTIONAL = ("torch", "transformers", "llama_cpp", "playwright", "nbclient", "nbformat", "ipykernel", "matplotlib",
            "transformer_lens")


@pytest.mark.parametrize("module", SCRIPTS)
def test_the_script_answers_help(module):
    assert importlib.util.find_spec(module) is not None, f"the docs name {module}, which does not exist"
    done = subprocess.run([sys.executable, "-m", module, "--help"], env=program_env(), cwd=CHECKOUT,
                          capture_output=True, text=True, timeout=120)
    missing = re.search(r"ModuleNotFoundError: No module named '(\w+)", done.stderr)
    if done.returncode and missing and missing[1] in OPTIONAL:
        pytest.skip(f"{module} needs {missing[1]}, which is not installed here")
    assert done.returncode == 0, done.stderr
