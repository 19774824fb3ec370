"""What pip installs: a wheel holds the package with all its data (the BPE ranks, tiny, the page's files), and an
editable install (pip install -e ., as the README says) is found from any folder, the one that holds the checkout
included: a checkout cloned as ~/minigpt and used from ~ must not be taken for a namespace package.

The wheels are built here with the packaging backend's own API (hatchling, in the test extra): no network, no
install."""

import importlib.metadata
import json
import subprocess
import sys
import zipfile

import pytest
from helpers import CHECKOUT, program_env

WEB_FILES = [path.name for path in (CHECKOUT / "minigpt" / "web").iterdir() if path.suffix in (".html", ".css", ".js")]


@pytest.fixture(scope="module")
def wheel_builder():
    builders = pytest.importorskip("hatchling.builders.wheel", reason="the test extra's hatchling builds the wheels")
    return builders.WheelBuilder(str(CHECKOUT))


def built(wheel_builder, tmp_path, version: str) -> zipfile.ZipFile:
    [path] = list(wheel_builder.build(directory=str(tmp_path), versions=[version]))
    return zipfile.ZipFile(path)


def test_a_non_editable_install_ships_the_renderer_and_the_data(wheel_builder, tmp_path):
    """The wheel holds every file of minigpt/web/ that is not Python (the page and the report's assets), the BPE
    ranks and tiny, and nothing of the checkout but the package."""
    names = set(built(wheel_builder, tmp_path, "standard").namelist())
    for name in WEB_FILES:
        assert f"minigpt/web/{name}" in names, f"minigpt/web/{name} is not in the wheel"
    for data in ("gpt2.tiktoken", "tiny/config.json", "tiny/model.safetensors", "tiny/README.md"):
        assert f"minigpt/data/{data}" in names, data
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "scripts/", "weights/"))]


def test_an_editable_install_puts_the_checkout_on_the_path(wheel_builder, tmp_path):
    """The editable wheel adds the checkout's folder to sys.path (a .pth file), where Python's own finder sees
    minigpt/__init__.py; an import hook would come after the namespace package of a folder named minigpt/."""
    wheel = built(wheel_builder, tmp_path, "editable")
    [pth] = [n for n in wheel.namelist() if n.endswith(".pth")]
    assert wheel.read(pth).decode().split() == [str(CHECKOUT)]
    assert not [n for n in wheel.namelist() if n.endswith(".py")]  # no finder module: nothing but the path


def test_the_editable_install_is_found_from_the_folder_that_holds_the_checkout(tmp_path):
    """`python -c "import minigpt; minigpt.load('tiny')"` run from a folder holding the checkout as minigpt/."""
    url = json.loads(importlib.metadata.distribution("minigpt").read_text("direct_url.json") or "{}")
    if url.get("url") != CHECKOUT.as_uri() or not url.get("dir_info", {}).get("editable"):
        pytest.skip("this checkout is not the one pip installed in editable mode (pip install -e .)")
    (tmp_path / "minigpt").symlink_to(CHECKOUT, target_is_directory=True)
    env = {k: v for k, v in program_env().items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", "import minigpt; print(minigpt.load('tiny').config.n_layer)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "4\n", done.stderr
