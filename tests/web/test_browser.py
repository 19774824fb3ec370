"""The explore page and the report in a real browser: headless Chromium through Playwright.

Chromium is Debian's (`apt-get install chromium`, as .ci/run does); Playwright drives it at its path and
never downloads a browser. Without Playwright or Chromium these tests are skipped, unless
MINIGPT_REQUIRE_BROWSER=1 (as in CI), when they fail instead. Every number the page shows is compared
with the library computed here."""

import os
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from helpers import CHECKOUT, fixture_model, program_env
from web_helpers import running_server

import minigpt
from minigpt import Tokenizer, generate
from minigpt.call.strategies import build_options
from minigpt.inspection import attention_patterns, logit_lens
from minigpt.views.html import colour
from minigpt.web.render import tokens_table

PROMPT = "Hello, my dog is a little"
REQUIRED = os.environ.get("MINIGPT_REQUIRE_BROWSER") == "1"


def chromium_path() -> str | None:
    return next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if p
                 and os.path.exists(p)), None)


@pytest.fixture(scope="module")
def browser():
    if REQUIRED:
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    path = chromium_path()
    if path is None:
        if REQUIRED:
            pytest.fail("MINIGPT_REQUIRE_BROWSER=1 but no chromium was found; apt-get install -y chromium")
        pytest.skip("no chromium found (apt-get install chromium); the browser tests need it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def model():
    return fixture_model("fullvocab")


@pytest.fixture(scope="module")
def server(model):
    with running_server(model, "fullvocab") as s:
        yield s


class Page:
    """A browser page on the explorer, with every request outside the server counted and refused."""

    def __init__(self, browser, server):
        self.origin = f"127.0.0.1:{server.server_address[1]}"
        self.outside, self.errors = [], []
        # bypass_csp: the server's Content-Security-Policy forbids eval, which Playwright's waits use
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        self.page = self.context.new_page()
        self.page.route("**/*", self.route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"http://{self.origin}/")
        self.settle(0)

    def route(self, route):
        if urlparse(route.request.url).netloc == self.origin:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def rendered(self) -> int:
        return self.page.evaluate("window.explorer ? window.explorer.state.rendered : 0")

    def settle(self, before: int):
        """Wait until the page has drawn an answer after `before` and no request is open."""
        self.page.wait_for_function(f"window.explorer && window.explorer.state.rendered > {before} && "
                                    "document.body.dataset.busy === '0'", timeout=60_000)

    def act(self, action):
        before = self.rendered()
        action()
        self.settle(before)

    def ids(self, selector: str) -> list[int]:
        return [int(i) for i in self.page.eval_on_selector_all(selector, "ns => ns.map(n => n.dataset.id)")]

    def bars(self, which: str) -> list[tuple[int, float]]:
        return [(int(i), float(p)) for i, p in self.page.eval_on_selector_all(
            f"#bars-{which} .bar-row", "ns => ns.map(n => [n.dataset.id, n.dataset.p])")]

    def type_prompt(self, text: str):
        self.act(lambda: self.page.fill("#prompt", text))

    def set_option(self, name: str, value):
        self.act(lambda: self.page.fill(f"#opt-{name}", str(value)))


@pytest.fixture
def page(browser, server):
    p = Page(browser, server)
    yield p
    assert not p.errors, p.errors
    assert not p.outside, f"the page asked for {p.outside}"
    p.context.close()


def test_typing_a_prompt_shows_the_tokenizers_tokens(page):
    page.type_prompt(PROMPT)
    assert page.ids("#prompt-tokens .ptok") == Tokenizer().encode(PROMPT)
    page.page.click("#prompt-tokens .ptok >> nth=2")  # " my": built by one merge
    assert "rank" in page.page.inner_text("#merges")


def test_the_page_opens_sampling_so_that_temperature_acts(page):
    assert page.page.input_value("#strategy") == "sample"
    assert not page.page.is_disabled("#opt-temperature") and page.page.input_value("#opt-seed") == "0"


def test_three_next_clicks_with_greedy_give_generates_tokens(page, model):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.select_option("#strategy", "greedy"))
    for _ in range(3):
        page.act(lambda: page.page.click("#next"))
    expected = generate(model, Tokenizer().encode(PROMPT), max_new_tokens=3).sequences[0]
    assert page.ids("#text .gtok:not(.pending)") == expected


def test_the_bars_are_generates_candidates_and_the_cutoffs_are_drawn_after_temperature(page, model):
    page.type_prompt(PROMPT)
    page.set_option("temperature", 0.7)
    page.set_option("top_k", 5)
    step = generate(model, Tokenizer().encode(PROMPT), "sample", max_new_tokens=1, temperature=0.7, top_k=5, seed=0,
                    trace_top=10).steps[0][0]
    bars = page.bars("after")
    assert [i for i, _ in bars] == [c.id for c in step.candidates]
    # the panels are softmax of each link's scores, the trace exp(score - log-normaliser): float32 apart
    np.testing.assert_allclose([p for _, p in bars], [c.p for c in step.candidates], rtol=1e-5)
    np.testing.assert_allclose([p for _, p in page.bars("before")], [c.p for c in step.raw_candidates], rtol=1e-5)
    assert "top_k(k=5" in page.page.inner_text("#bars-tempered")  # the line where top-k cuts, after temperature
    assert page.page.inner_text("#head-tempered") == "after temperature"


def test_clicking_the_second_candidate_starts_a_branch_equal_to_generate(page, model):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.select_option("#strategy", "greedy"))
    second = page.bars("after")[1][0]
    page.act(lambda: page.page.click("#bars-after .bar-row >> nth=1"))
    page.act(lambda: page.page.click("#next"))
    page.act(lambda: page.page.click("#next"))
    ids = Tokenizer().encode(PROMPT)
    expected = [second] + generate(model, ids + [second], max_new_tokens=2).sequences[0]
    assert page.ids("#text .gtok:not(.pending)") == expected
    cards = page.page.eval_on_selector_all(".branch", "ns => ns.map(n => JSON.parse(n.dataset.tokens))")
    assert len(cards) == 2 and cards[1] == expected


def test_undo_past_a_forced_token_gives_the_parents_pending_token_and_no_twin_card(page):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.click("#next"))
    pending = page.ids("#text .gtok.pending")
    assert len(pending) == 1
    page.act(lambda: page.page.click("#bars-after .bar-row >> nth=3"))  # forced: a branch
    assert page.page.eval_on_selector_all(".branch", "ns => ns.length") == 2
    page.act(lambda: page.page.click("#undo"))
    assert page.ids("#text .gtok.pending") == pending  # the same draw as the parent's, not a new one
    assert page.page.eval_on_selector_all(".branch", "ns => ns.length") == 1


def test_run_n_takes_max_new_tokens_as_generate_does(page, model):
    page.type_prompt(PROMPT)
    assert page.page.inner_text("#run") == "Run 20"  # the registry's max_new_tokens
    page.page.click("details.group:has([data-option=max_new_tokens]) summary")  # the output group opens
    page.page.fill("#opt-max_new_tokens", "6")
    page.act(lambda: page.page.click("#run"))
    out = generate(model, Tokenizer().encode(PROMPT), "sample", seed=0, max_new_tokens=6)
    assert page.ids("#text .gtok:not(.pending)") == out.sequences[0]


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam", "beam-sample", "diverse-beam", "contrastive"])
def test_every_strategy_runs_from_the_pages_defaults(page, strategy):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.select_option("#strategy", strategy))
    page.act(lambda: page.page.click("#next"))
    assert page.page.inner_text("#error") == ""
    assert len(page.ids("#text .gtok")) >= 1
    if strategy in ("beam", "beam-sample", "diverse-beam"):  # the beams, not empty panels
        assert page.page.is_hidden("#panels") and page.page.is_visible("#beam-section")


def test_every_returned_sequence_is_shown(page, model):
    page.type_prompt(PROMPT)
    page.set_option("num_return_sequences", 3)
    page.act(lambda: page.page.click("#next"))
    page.act(lambda: page.page.click("#next"))
    out = generate(model, Tokenizer().encode(PROMPT), "sample", seed=0, num_return_sequences=3, max_new_tokens=2)
    assert page.ids("#text .gtok:not(.pending)") == out.sequences[0]
    for j in (1, 2):
        assert page.ids(f"#rows [data-sequence='{j + 1}'] .gtok") == out.sequences[j]


def test_newlines_spaces_and_byte_tokens_are_drawn_and_can_be_hovered(page):
    tok = Tokenizer()
    byte = next(i for i in range(tok.n_vocab) if tok.token_bytes(i) == b"\xf0")
    ids = [198, 220, byte]  # "\n", " ", the first byte of a four-byte character
    table = tokens_table(tok, ids)
    spans = page.page.evaluate("""([table, ids]) => ids.map((id) => {
        const [span] = MinigptRender.tokenSpan(table, id, {token: id, logprob: -1, candidates: [], raw_candidates: []});
        document.getElementById("text").append(span);
        return [span.textContent, span.getBoundingClientRect().width];
    })""", [table, ids])
    assert [text for text, _ in spans] == ["↵", "␣", "<0xF0>"]
    assert all(width > 4 for _, width in spans)
    page.page.hover("#text .gtok.mark >> nth=0")
    page.page.wait_for_selector("#tip", state="visible")
    assert "↵" in page.page.inner_text("#tip")


def test_a_rare_probability_reads_as_a_number(page):
    assert page.page.evaluate("[MinigptRender.fmt(3.2e-6), MinigptRender.fmt(0.31823)]") == ["3.2e-6", "0.3182"]


def test_the_colour_scale_is_the_notebooks_viridis(page):
    drawn = page.page.evaluate("[0, 0.25, 0.5, 1].map(MinigptRender.colour)")
    assert drawn == [colour(p) for p in (0, 0.25, 0.5, 1)]


def test_the_lens_and_attention_equal_inspection(page, model):
    page.type_prompt(PROMPT)
    ids = Tokenizer().encode(PROMPT)
    page.page.click("#inside summary")
    page.page.wait_for_selector("#lens td")
    page.page.wait_for_function("document.body.dataset.busy === '0'")
    cells = page.page.eval_on_selector_all("#lens td", "ns => ns.map(n => [+n.dataset.layer, +n.dataset.pos, "
                                           "+n.dataset.token, +n.dataset.p])")
    lens = logit_lens(model, ids)
    assert len(cells) == lens.top_tokens.size
    for layer, pos, token, p in cells:
        assert token == lens.top_tokens[layer, pos] and abs(p - lens.top_probs[layer, pos]) < 1e-6
    labels = page.page.eval_on_selector_all("#lens tr th:first-child", "ns => ns.map(n => n.textContent)")
    assert labels[1:] == list(reversed(lens.row_labels))  # the model's prediction on top, the embeddings last
    maps = attention_patterns(model, ids).weights
    drawn = page.page.evaluate("document.querySelector('#attention canvas').weights")
    np.testing.assert_allclose(drawn, maps[0, 0], atol=1e-6)
    page.page.select_option("#layer", "1")
    page.page.wait_for_function("document.body.dataset.busy === '0'")
    page.page.select_option("#head", "all")
    drawn = page.page.evaluate("[...document.querySelectorAll('#attention canvas')].map(c => c.weights)")
    np.testing.assert_allclose(drawn, maps[1], atol=1e-6)


def test_the_beam_tree_shows_beam_searchs_hypotheses(page, model):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.select_option("#strategy", "beam"))
    page.set_option("num_beams", 3)
    for _ in range(3):
        page.act(lambda: page.page.click("#next"))
    page.page.wait_for_function("document.body.dataset.busy === '0'")
    page.page.wait_for_selector("#beam-tree .hyp")
    hyps = page.page.eval_on_selector_all("#beam-tree .hyp", "ns => ns.map(n => JSON.parse(n.dataset.tokens))")
    out = generate(model, Tokenizer().encode(PROMPT), "beam", num_beams=3, num_return_sequences=3, max_new_tokens=3)
    assert hyps == out.sequences
    assert page.ids("#text .gtok") == out.sequences[0]  # the text is the best hypothesis


def test_a_bad_option_shows_the_librarys_sentence_in_the_page(page):
    page.page.fill("#opt-top_p", "2")
    page.page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=60_000)
    with pytest.raises(ValueError) as refusal:
        build_options("sample", top_p=2, seed=0)
    assert page.page.inner_text("#error") == str(refusal.value)


def test_the_report_opens_from_file_and_hovers_with_the_network_blocked(browser, tmp_path):
    out = tmp_path / "run.html"
    done = subprocess.run([sys.executable, "-m", "minigpt", "report", PROMPT, "--model",
                           str(CHECKOUT / "tests" / "fixtures" / "fullvocab"), "--strategy", "beam", "--num-beams", "3",
                           "--max-new-tokens", "4", "--out", str(out)], env=program_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    context = browser.new_context(bypass_csp=True)
    requests = []

    def block(route):
        requests.append(route.request.url)
        route.abort() if not route.request.url.startswith("file://") else route.continue_()

    context.route("**/*", block)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.hover("#report .gtok >> nth=1")
    page.wait_for_selector("#tip", state="visible")
    assert "before the chain" in page.inner_text("#tip")
    assert page.eval_on_selector_all("#report .hyp", "ns => ns.length") == 3
    assert not errors and requests == [out.as_uri()]
    context.close()


def test_undo_takes_a_token_back_and_hover_shows_mirostats_state(page, model):
    page.type_prompt(PROMPT)
    page.page.click("details.group:has([data-option=mirostat]) summary")  # the llama.cpp samplers' group opens
    page.set_option("mirostat", 2)
    page.act(lambda: page.page.click("#next"))
    page.act(lambda: page.page.click("#next"))
    page.act(lambda: page.page.click("#undo"))
    ids = Tokenizer().encode(PROMPT)
    out = generate(model, ids, "sample", mirostat=2, seed=0, max_new_tokens=1, trace_top=10)
    assert page.ids("#text .gtok:not(.pending)") == out.sequences[0]
    page.page.hover("#text .gtok >> nth=0")
    page.page.wait_for_selector("#tip", state="visible")
    shown = re.search(r"mirostat_mu=([-\d.e]+)", page.page.inner_text("#tip")).group(1)
    assert float(shown) == pytest.approx(out.steps[0][0].state["mirostat_mu"], rel=1e-3)  # shown to 4 digits


@pytest.fixture(scope="module")
def tiny_server():
    with running_server(minigpt.load("tiny"), "tiny") as s:
        yield s


def test_at_temperature_2_the_bars_after_the_chain_are_shorter_and_every_panel_says_what_it_holds(browser,
                                                                                                   tiny_server):
    """A trained model (tiny): temperature 2 flattens the distribution. The panels share one 0-1 scale, so the
    after-chain bars are drawn shorter than the model's; each panel states its mass and survivors, as generate()'s
    trace counts them; a bar's hover gives its logit and logit / T."""
    page = Page(browser, tiny_server)
    page.type_prompt("The stream")
    page.set_option("temperature", 2)
    page.set_option("top_p", 0.9)
    width = "n => n.getBoundingClientRect().width"
    before = page.page.eval_on_selector("#bars-before .bar-row .fill", width)
    after = page.page.eval_on_selector("#bars-after .bar-row .fill", width)
    assert after < 0.6 * before, (before, after)
    step = generate(tiny_server.explorer.model, Tokenizer().encode("The stream"), "sample", seed=0, temperature=2,
                    top_p=0.9, max_new_tokens=1).steps[0][0]
    assert f"{step.survivors:,} tokens survive" in page.page.inner_text("#sum-after")
    assert "every token of the vocabulary is possible" in page.page.inner_text("#sum-before")
    for which in ("before", "tempered", "after"):
        held = sum(p for _, p in page.bars(which))
        assert f"These bars hold {100 * held:.1f}% of the probability" in page.page.inner_text(f"#sum-{which}")
    page.page.hover("#bars-tempered .bar-row >> nth=0")
    page.page.wait_for_selector("#tip", state="visible")
    assert "logit/T = " in page.page.inner_text("#tip") and "at T = 2" in page.page.inner_text("#tip")
    assert not page.errors and not page.outside
    page.context.close()


def test_a_changed_setting_reruns_the_text_or_keeps_it_as_the_student_picks(page, model):
    """Re-run (the default): the whole text becomes generate()'s with the new seed. Keep: the text stays, and the
    new settings act from the pending token on, as generate() from the text."""
    ids = Tokenizer().encode(PROMPT)
    page.type_prompt(PROMPT)
    for _ in range(3):
        page.act(lambda: page.page.click("#next"))
    kept = page.ids("#text .gtok:not(.pending)")
    page.set_option("seed", 7)
    assert page.ids("#text .gtok:not(.pending)") == generate(model, ids, "sample", seed=7, max_new_tokens=3).sequences[0]
    assert "re-runs the whole text" in page.page.inner_text("#mode-note")
    page.set_option("seed", 0)
    assert page.ids("#text .gtok:not(.pending)") == kept
    page.act(lambda: page.page.check("#mode-keep"))
    page.set_option("temperature", 0.5)
    assert page.ids("#text .gtok:not(.pending)") == kept
    pending = generate(model, ids + kept, "sample", seed=0, temperature=0.5, max_new_tokens=1).sequences[0]
    assert page.ids("#text .gtok.pending") == pending
    assert "keeps the text and acts from the pending token" in page.page.inner_text("#mode-note")


def test_why_this_token_shows_attribute_and_where_a_head_looks(page, model):
    page.type_prompt(PROMPT)
    page.act(lambda: page.page.select_option("#strategy", "greedy"))
    page.act(lambda: page.page.click("#next"))
    text = Tokenizer().encode(PROMPT) + page.ids("#text .gtok:not(.pending)")
    pending = page.ids("#text .gtok.pending")[0]
    page.page.click("#why summary")
    page.page.wait_for_selector(".why-row")
    page.page.wait_for_function("document.body.dataset.busy === '0'")

    def drawn():
        return [(label, float(c)) for label, c in page.page.eval_on_selector_all(
            ".why-row", "ns => ns.map(n => [n.dataset.label, n.dataset.contribution])")]

    result = minigpt.attribute(model, text, pending)
    assert drawn() == [(label, pytest.approx(value, abs=1e-5)) for label, value in result.top(16)]
    assert f"= {result.logit:.3f}" in page.page.inner_text("#why-sum")
    head = next(label for label, _ in drawn() if label.startswith("L"))
    layer, h = (int(n) for n in head[1:].split("H"))
    page.page.click(f'.why-row[data-label="{head}"]')
    weights = page.page.eval_on_selector_all("#why-looks .tok", "ns => ns.map(n => +n.dataset.weight)")
    np.testing.assert_allclose(weights, attention_patterns(model, text).weights[layer, h, -1], atol=1e-6)

    page.page.select_option("#why-against", "runner-up")
    page.page.wait_for_function("document.body.dataset.busy === '0'")
    page.page.wait_for_function("document.querySelector('#why-sum').textContent.includes('runner-up')")
    logits = model(np.array([text]))[0, -1]
    runner_up = int(next(i for i in np.argsort(-logits) if i != pending))
    versus = minigpt.attribute(model, text, pending, versus=runner_up)
    assert drawn() == [(label, pytest.approx(value, abs=1e-5)) for label, value in versus.top(16)]

    page.page.click("#why-looks button")
    page.page.wait_for_selector("#attention canvas")
    assert page.page.evaluate("document.querySelector('#inside').open")
    assert (page.page.input_value("#layer"), page.page.input_value("#head")) == (str(layer), str(h))


def test_the_inside_panels_work_when_their_script_arrives_after_the_options(browser, server):
    """inside.js listens for the registry; the page must not announce it before that script has run, however late
    the script arrives (under load, /api/options was answered while the parser still waited for inside.js)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()

    def late(route):
        time.sleep(1.5)  # /api/options, not routed here, is answered meanwhile
        route.continue_()

    page.route("**/static/inside.js", late)
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
    page.wait_for_function("window.explorer && window.explorer.state.rendered > 0 && "
                           "document.body.dataset.busy === '0'", timeout=60_000)
    assert page.eval_on_selector_all("#layer option", "ns => ns.length") > 0  # the panel was wired
    page.click("#inside summary")
    page.wait_for_selector("#lens td", timeout=60_000)
    context.close()
