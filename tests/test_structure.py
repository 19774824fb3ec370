"""The code as a path a reader can walk: modules in pipeline order with no import cycle, nothing imported
lazily or under TYPE_CHECKING or through importlib, short files, short functions, short lines, and one
greedy step passing through the few modules the README's reading order names."""

import ast
import re
import sys
from pathlib import Path

import minigpt
from helpers import fixture_model

PACKAGE = Path(minigpt.__file__).parent
README = (PACKAGE.parent / "README.md").read_text()

# The reading order, bottom up: a module may import only from modules before it.
ORDER = [
    "tokenizer", "checks", "numerics", "markup", "config",  # 1: text, the helpers, the notebook's HTML, shapes
    "model", "memory", "prompts", "folders", "hub", "safetensors_header", "checkpoint",  # 2: the forward pass, what
    # a call holds, its input, where its weights are, their files
    "sampling.link", "sampling.processors", "sampling.penalties", "sampling.llama_samplers",  # 3: the links
    "sampling.mirostat", "sampling.chain",  # 4: the chain, its chooser last
    "sampling.options",  # 5: the registry of options
    "sampling.run",  # 6: one call's context, trace and stop strings
    "sampling.scores", "sampling.guidance", "sampling.dola",  # 7: where the scores come from
    "sampling.tokenwise", "sampling.beam", "sampling.contrastive", "sampling.speculative",  # 8: the strategies
    "sampling", "generate", "batch",  # 9: the call, and a file of prompts
    "inspection", "perplexity", "compare", "views", "canvas", "plots_probs", "plots_beam", "plots_maps",
    "plots",  # 10: looking at it, whole texts, pictures
    "render", "explore", "server",  # 11: the web renderer's data, the explorer's endpoints, its HTTP service
    "version", "cli_args", "cli_plot", "cli_score", "cli_batch", "cli_web", "cli", "__main__", "",  # 12: the shell
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> tuple[set[str], list[str]]:
    """The package's modules that `name` imports at its top level, and any import made elsewhere (lazily)."""
    tree = ast.parse(path.read_text())
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    known, found, lazy = modules(), set(), []
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}".strip(".") if f"{base}.{a.name}".strip(".") in known else base
                           for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minigpt"):
                targets = [node.module.removeprefix("minigpt").strip(".")]
            elif isinstance(node, ast.Import):
                targets = [a.name.removeprefix("minigpt").strip(".") for a in node.names if a.name.startswith("minigpt")]
            if id(node) not in top_level and (targets or "importlib" in ast.dump(node)):
                lazy.append(f"{name}:{node.lineno}")
            found.update(targets)
    return found, lazy


def test_the_reading_order_names_every_module():
    assert sorted(ORDER) == sorted(modules())


def test_modules_import_only_what_comes_before_them():
    for name, path in modules().items():
        found, _ = imports_of(name, path)
        later = [m for m in found if ORDER.index(m) >= ORDER.index(name)]
        assert not later, f"{name or 'minigpt'} imports {later}, which come after it in the reading order"


def test_no_import_cycle():
    graph = {name: imports_of(name, path)[0] for name, path in modules().items()}
    state = {}

    def visit(node, trail):
        if state.get(node) == "open":
            raise AssertionError(f"import cycle: {' -> '.join(trail + [node])}")
        if state.get(node) != "done":
            state[node] = "open"
            for dep in graph[node]:
                visit(dep, trail + [node])
            state[node] = "done"

    for name in graph:
        visit(name, [])


def test_nothing_imports_lazily_or_for_type_checking_only():
    for name, path in modules().items():
        source = path.read_text()
        assert "TYPE_CHECKING" not in source and "importlib" not in source, name
        _, lazy = imports_of(name, path)
        assert not lazy, f"imports inside functions: {lazy}"


def test_files_functions_and_lines_are_short():
    for name, path in modules().items():
        source = path.read_text()
        tree = ast.parse(source)
        assert source.count("\n") <= 400, f"{path.name} has {source.count(chr(10))} lines"
        long_lines = [i + 1 for i, line in enumerate(source.splitlines()) if len(line) > 120]
        assert not long_lines, f"{path.name}: lines over 120 characters: {long_lines}"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 60, f"{path.name}: {node.name} has over 60 lines"
        docstring = ast.get_docstring(tree)
        assert docstring, f"{path.name} has no module docstring"
        assert len(docstring.splitlines()) + 2 <= 25, f"{path.name}'s docstring is longer than a screen"


def modules_of_one_greedy_step(model) -> list[str]:
    """The package's modules whose functions run between the first streamed token and the second."""
    seen, recording = [], []

    def profile(frame, event, arg):
        if event == "call" and recording:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("minigpt.") and module not in seen:
                seen.append(module)

    def on_token(row, token):
        recording.append(True)
        if len(recording) == 2:
            sys.setprofile(None)

    sys.setprofile(profile)
    try:
        minigpt.generate(model, [464, 290], max_new_tokens=3, on_token=on_token, trace_top=3)
    finally:
        sys.setprofile(None)
    return [m.removeprefix("minigpt.") for m in seen]


def test_one_greedy_step_passes_through_the_modules_the_readme_names():
    """Below generate(): the strategy's loop, the score source, the model, the chain (processors and the
    chooser) and the run's trace, plus the helpers every layer shares (numerics.py and checks.py) and the
    tokenizer, which gives the traced tokens their text."""
    shared = {"numerics", "checks", "tokenizer"}  # the helpers, and the tokenizer giving the trace its text
    executed = set(modules_of_one_greedy_step(fixture_model("tiny-hub"))) - shared
    assert executed == {"sampling.tokenwise", "sampling.scores", "model", "sampling.chain", "sampling.run"}
    section = README[README.index("## Reading the code") :]
    section = section[: section.index("\n## ", 3)]
    for module in executed | {"generate", "cli", "tokenizer", "numerics", "checks"}:
        assert f"{module.replace('.', '/')}.py" in section, f"README's reading order does not name {module}.py"


def test_the_readme_table_lists_the_modules_in_the_reading_order():
    section = README[README.index("## Reading the code") :]
    rows = [line for line in section[: section.index("\n## ", 3)].splitlines() if line.startswith("| ")][2:]
    listed = []
    for row in rows:
        folder = ""
        for path in re.findall(r"`(minigpt/[\w/]+\.py|[\w]+\.py)`", row.split("|")[2]):
            folder = path.rsplit("/", 1)[0] + "/" if "/" in path else folder
            listed.append(module_name(PACKAGE.parent / (path if "/" in path else folder + path)))
    assert sorted(listed) == sorted(m for m in ORDER if m not in ("", "__main__", "sampling"))
    assert [ORDER.index(m) for m in listed] == sorted(ORDER.index(m) for m in listed)
