"""README's pictures: each one in docs/images/ is shown under the command that makes it, and that command,
run here offline on the shipped tiny model, draws the same picture again. The screenshots of the explore page
are taken in a browser by scripts/docs/screenshots.py, which the README names and whose docstring lists them."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from minigpt.cli.main import main
from minigpt.weights import hub

matplotlib = pytest.importorskip("matplotlib")  # the optional plots extra; Pillow comes with it
from helpers import CHECKOUT
from matplotlib.image import imread  # noqa: E402
from PIL import Image  # noqa: E402

README = (CHECKOUT / "README.md").read_text()
SHOWN = re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+\.png)\)", README)
COMMANDS = {Path(line.split("--out ")[1].split()[0]).name: shlex.split(line)[1:]
            for line in README.splitlines() if line.startswith("minigpt plot ") and "--out " in line}
SCREENSHOTS_SCRIPT = CHECKOUT / "scripts" / "docs" / "screenshots.py"
SCREENSHOTS = sorted(re.findall(r"^    (explore-[\w-]+\.png) ", SCREENSHOTS_SCRIPT.read_text(), re.M))


def test_every_picture_has_its_command_and_every_command_its_picture():
    assert SHOWN and sorted(Path(path).name for path in SHOWN) == sorted([*COMMANDS, *SCREENSHOTS])
    assert sorted(path.name for path in (CHECKOUT / "docs" / "images").glob("*.png")) == sorted([*COMMANDS, *SCREENSHOTS])
    assert SCREENSHOTS and "python scripts/screenshots.py" in README


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_beside_a_picture_draws_it_again_offline(name, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("the README's picture commands must not reach the hub")

    monkeypatch.setattr(hub, "_ask_sizes", no_network)
    monkeypatch.setattr(hub, "_download_file", no_network)
    monkeypatch.chdir(tmp_path)  # the pictures land here, and no ./tiny folder can stand in for the model
    argv = COMMANDS[name]
    assert argv[argv.index("--model") + 1] == "tiny"
    assert main(argv) == 0, capsys.readouterr().err
    drawn, shown = imread(tmp_path / name), imread(CHECKOUT / "docs" / "images" / name)
    assert drawn.shape == shown.shape
    # The matplotlib that drew the README's picture names itself in the PNG. The same release draws the same
    # pixels (a digit of a probability may round otherwise on another CPU); another one may anti-alias a
    # glyph's edge differently, never by 1% of the picture.
    with Image.open(CHECKOUT / "docs" / "images" / name) as png:
        same_release = f"version{matplotlib.__version__}," in png.info["Software"]
    assert np.abs(drawn - shown).mean() < (0.001 if same_release else 0.01)
