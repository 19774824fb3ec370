"""The folder tree is the reading order: a core that imports nothing outside itself, and rings around it, each
importing only the core and the rings inside it. No import cycle, nothing imported lazily, under TYPE_CHECKING
or through importlib; short files, short functions, short lines; at most 8 modules at the top of the package
and at most 12 in a folder; and one greedy step below generate() passes through the few modules the README
names."""

import ast
import re
import sys
from pathlib import Path

from helpers import CHECKOUT, fixture_model

import minigpt

PACKAGE = Path(minigpt.__file__).parent
README = (CHECKOUT / "README.md").read_text()
# The rings, from the inside out. The rule: a module imports only modules of its own ring and of rings before it.
RINGS = ["core", "weights", "links", "sources", "strategies", "call", "inspection", "views", "web", "cli"]
FACE = ("", "__main__")  # the package's __init__ and `python -m minigpt`: they may import every ring
CORE_LINES = 1500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def ring(name: str) -> int:
    """The ring of a module by its folder: 0 for the core (and for version.py, which imports nothing)."""
    top = name.split(".")[0]
    return RINGS.index(top) if top in RINGS else 0


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


def test_the_core_imports_nothing_outside_the_core():
    for name, path in modules().items():
        if name.split(".")[0] == "core":
            outside = [m for m in imports_of(name, path)[0] if m.split(".")[0] != "core"]
            assert not outside, f"{name} is in the core but imports {outside}"


def test_each_ring_imports_only_the_core_and_the_rings_inside_it():
    for name, path in modules().items():
        if name in FACE:
            continue
        outer = [m for m in imports_of(name, path)[0] if ring(m) > ring(name)]
        assert not outer, f"{name} (ring {RINGS[ring(name)]}) imports {outer}, of rings outside its own"


def test_every_folder_is_a_ring_and_the_tree_is_small_at_each_level():
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, f"the package's top holds {len(top)} modules: {[p.name for p in top]}"
    assert {p.stem for p in top} <= {"__init__", "__main__", "version"}
    for folder in (p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists()):
        assert folder.relative_to(PACKAGE).parts[0] in RINGS, f"{folder.name}/ is not a ring: {RINGS}"
        assert len(list(folder.glob("*.py"))) <= 12, f"{folder} holds more than 12 modules"


def test_the_core_reads_in_one_sitting():
    lines = sum(p.read_text().count("\n") for p in (PACKAGE / "core").glob("*.py"))
    assert lines <= CORE_LINES, f"the core has {lines} lines, more than {CORE_LINES}"


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
    """Below generate(): the strategy's loop, the score source, the model, the chain with its chooser, the run's
    trace, plus the helpers every layer shares (numerics.py and checks.py) and the tokenizer, which gives the
    traced tokens their text. generate() (call/generate.py) is not among them: its LiveRun resumes the strategy's
    paused loop, and the step runs inside the loop."""
    shared = {"core.numerics", "core.checks", "core.tokenizer"}
    executed = set(modules_of_one_greedy_step(fixture_model("tiny-hub"))) - shared
    assert executed == {"strategies.tokenwise", "sources.model_scores", "core.model", "core.chain", "links.chain",
                        "strategies.run"}
    section = README[README.index("## Reading the code") :]
    section = section[: section.index("\n## ", 3)]
    for module in executed:
        assert f"{module.replace('.', '/')}.py" in section, f"README's reading order does not name {module}.py"


def test_the_readme_reads_the_rings_in_their_order():
    section = README[README.index("## Reading the code") :]
    section = section[: section.index("\n## ", 3)]
    folders = re.findall(r"`minigpt/(\w+)/`", section)
    assert [f for f in dict.fromkeys(folders) if f in RINGS] == RINGS


def test_no_two_test_files_share_a_name():
    """pytest imports each test file by its basename (tests/ has no packages), so two files of one name in
    different folders stop the suite's collection."""
    names = [p.name for p in (CHECKOUT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
