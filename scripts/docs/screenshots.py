"""The three pictures of `minigpt explore` in the README, taken in headless Chromium.

    python -m scripts.docs.screenshots                       # tiny; writes docs/images/explore-*.png
    python -m scripts.docs.screenshots --model gpt2 --out-dir /tmp/shots

Needs the browser extra (pip install -e ".[browser]") and Debian's chromium (apt-get install chromium);
Playwright drives it at /usr/bin/chromium and downloads nothing. The server runs in this process on a free
loopback port, exactly as `minigpt explore` serves it.

    explore-step.png    sampling at temperature 1.5 with top-k and top-p: the tokens, the three panels of bars
                        (the model, after temperature with where each cut-off cuts, after the chain), a hover
                        over a generated token of a branch (the branch cards are below the picture's edge)
    explore-inside.png  the logit lens and one layer's attention heads for the current text
    explore-why.png     why the pending token: its logit against the runner-up's, split by head and MLP, and where
                        the head that pushed it most looks
"""

import argparse
import shutil
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

import minigpt
from minigpt.web.explore import Explorer
from minigpt.web.server import ExploreServer

ROOT = Path(__file__).resolve().parents[2]  # the checkout


def settle(page, before: int):
    page.wait_for_function(f"window.explorer && window.explorer.state.rendered > {before} && "
                           "document.body.dataset.busy === '0'", timeout=120_000)


def act(page, action):
    before = page.evaluate("window.explorer ? window.explorer.state.rendered : 0")
    action()
    settle(page, before)


def take(url: str, out_dir: Path, chromium: str):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1360, "height": 1000}, bypass_csp=True,
                                   device_scale_factor=1).new_page()
        page.goto(url)
        settle(page, 0)
        act(page, lambda: page.fill("#prompt", "The stream"))
        act(page, lambda: page.fill("#top", "14"))  # enough bars to show where top-k cuts (the page samples)
        for name, value in (("temperature", "1.5"), ("top_k", "12"), ("top_p", "0.9")):
            act(page, lambda: page.fill(f"#opt-{name}", value))
        for _ in range(4):
            act(page, lambda: page.click("#next"))
        act(page, lambda: page.click("#bars-after .bar-row >> nth=1"))  # a branch from the second candidate
        for _ in range(2):
            act(page, lambda: page.click("#next"))
        page.hover("#text .gtok >> nth=2")
        page.wait_for_selector("#tip", state="visible")
        page.screenshot(path=str(out_dir / "explore-step.png"))
        page.mouse.move(5, 5)
        page.click("#inside summary")
        page.wait_for_selector("#lens td")
        page.wait_for_function("document.body.dataset.busy === '0'")
        page.select_option("#head", "all")
        page.locator("#inside").scroll_into_view_if_needed()
        page.locator("#inside").screenshot(path=str(out_dir / "explore-inside.png"))
        page.click("#why summary")
        page.wait_for_selector(".why-row")
        page.select_option("#why-against", "runner-up")
        page.wait_for_function("document.querySelector('#why-sum').textContent.includes('runner-up')")
        page.wait_for_function("document.body.dataset.busy === '0'")
        page.locator("#why").scroll_into_view_if_needed()
        page.locator("#why").screenshot(path=str(out_dir / "explore-why.png"))
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--out-dir", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    server = ExploreServer(Explorer(minigpt.load(args.model), minigpt.Tokenizer(), name=args.model), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        take(server.url, out_dir, args.chromium)
    finally:
        server.shutdown()
        server.server_close()
    for name in ("explore-step.png", "explore-inside.png", "explore-why.png"):
        print(out_dir / name)


if __name__ == "__main__":
    main()
