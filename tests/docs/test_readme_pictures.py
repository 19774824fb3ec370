"""The documentation's pictures: each one in docs/images/ is shown, in README.md or a page of docs/, under the
command that makes it, and that command, run here offline on the shipped tiny model, draws the same picture again.
The screenshots of the explore page are taken in a browser by `python -m scripts.docs.screenshots`, which the page
that shows them names, and whose docstring lists them."""

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

IMAGES = CHECKOUT / "docs" / "images"
PAGES = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
# The script's place after scripts/ was sorted into folders, or before.
SCREENSHOTS_SCRIPT = CHECKOUT / "scripts" / "docs" / "screenshots.py"
SCREENSHOTS = sorted(re.findall(r"^    (explore-[\w-]+\.png) ", SCREENSHOTS_SCRIPT.read_text(), re.M))


def shown(page: Path) -> list[tuple[int, str]]:
    """(line, file name) of each picture of docs/images/ that the page shows, in the page's order."""
    text = page.read_text()
    found = []
    for match in re.finditer(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
        path = (page.parent / match[1]).resolve()
        if path.parent == IMAGES.resolve():
            found.append((text.count("\n", 0, match.start()), path.name))
    return found


def drawn(page: Path) -> list[tuple[int, str, list[str]]]:
    """(line, file name, argv) of each `minigpt plot ... --out FILE` command written in the page."""
    return [(number, Path(line.split("--out ")[1].split()[0]).name, shlex.split(line, comments=True)[1:])
            for number, line in enumerate(page.read_text().splitlines())
            if line.startswith("minigpt plot ") and "--out " in line]


PICTURE_PAGES = [page for page in PAGES if shown(page)]
COMMANDS = sorted({(name, tuple(argv)) for page in PICTURE_PAGES for _, name, argv in drawn(page)})


@pytest.mark.parametrize("page", PICTURE_PAGES, ids=lambda page: page.name)
def test_each_picture_is_shown_under_the_command_that_draws_it(page):
    pictures, commands = shown(page), drawn(page)
    for line, name in pictures:
        if name in SCREENSHOTS:
            assert "python -m scripts.docs.screenshots" in page.read_text(), f"{page.name} shows {name}"
        else:
            assert any(at < line and drew == name for at, drew, _ in commands), f"{page.name}: {name} has no command"
    for line, name, _ in commands:
        assert any(at > line and picture == name for at, picture in pictures), f"{page.name}: {name} is not shown"


def test_every_picture_has_its_command_and_every_command_its_picture():
    pictures = {name for page in PICTURE_PAGES for _, name in shown(page)}
    commands = {name for name, _ in COMMANDS}
    assert pictures and sorted(pictures) == sorted({*commands, *SCREENSHOTS})
    assert sorted(path.name for path in IMAGES.glob("*.png")) == sorted({*commands, *SCREENSHOTS})
    assert SCREENSHOTS and not commands & set(SCREENSHOTS)


@pytest.mark.parametrize("name, argv", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_the_command_beside_a_picture_draws_it_again_offline(name, argv, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("the documentation's picture commands must not reach the hub")

    monkeypatch.setattr(hub, "_ask_sizes", no_network)
    monkeypatch.setattr(hub, "_download_file", no_network)
    monkeypatch.chdir(tmp_path)  # the pictures land here, and no ./tiny folder can stand in for the model
    argv = list(argv)
    assert argv[argv.index("--model") + 1] == "tiny"
    assert main(argv) == 0, capsys.readouterr().err
    drawn_now, shown_there = imread(tmp_path / name), imread(IMAGES / name)
    assert drawn_now.shape == shown_there.shape
    # The matplotlib that drew the documentation's picture names itself in the PNG. The same release draws the
    # same pixels (a digit of a probability may round otherwise on another CPU); another one may anti-alias a
    # glyph's edge differently, never by 1% of the picture.
    with Image.open(IMAGES / name) as png:
        same_release = f"version{matplotlib.__version__}," in png.info["Software"]
    assert np.abs(drawn_now - shown_there).mean() < (0.001 if same_release else 0.01)
