"""minigpt explore's endpoints over HTTP, and minigpt report's file, against the library computed here.

The browser's view of the same page is tests/test_browser.py."""

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
from helpers import CHECKOUT, fixture_model, program_env
from web_helpers import call, running_server

from minigpt import Tokenizer, generate
from minigpt.call.strategies import build_options
from minigpt.core.numerics import draw, softmax
from minigpt.inspection import attention_patterns, logit_lens, token_logprobs
from minigpt.links.chain import build_chain
from minigpt.strategies.options import REGISTRY
from minigpt.views.text import step_json
from minigpt.web.runs import LIVE_RUNS
from minigpt.web.server import MAX_BODY, own_addresses

PROMPT = "Hello, my dog is a little"


@pytest.fixture(scope="module")
def model():
    return fixture_model("fullvocab")


@pytest.fixture(scope="module")
def server(model):
    with running_server(model) as s:
        yield s


def roundtrip(data):
    return json.loads(json.dumps(data))


def walk(server, payload: dict, n: int) -> tuple[list, list]:
    """Next clicked n times, as the page clicks it: each request says how many steps the page holds. -> every step
    the page was sent, in order, and every answer."""
    steps, answers = [], []
    for accepted in range(n + 1):
        status, data = call(server, "POST", "/api/step", payload | {"accepted": accepted, "have": len(steps)})
        assert status == 200, data
        assert data["have"] == len(steps) and data["total"] == len(steps) + len(data["steps"])
        steps += data["steps"]
        answers.append(data)
    return steps, answers


def traced(out, row: int = 0):
    return roundtrip([step_json(s) for s in out.steps[row]])


@pytest.mark.parametrize("strategy, options", [
    ("greedy", {}), ("sample", {"temperature": 0.7, "top_k": 5, "seed": 3}), ("sample", {"mirostat": 2, "seed": 1}),
    ("sample", {"num_return_sequences": 2, "top_p": 0.9, "seed": 5}), ("contrastive", {"top_k": 3}),
])
def test_n_nexts_give_generates_n_tokens_each_costing_one_step(server, model, strategy, options):
    """Each Next continues the branch's paused run: its steps are generate()'s, seeded draws and mirostat's mu
    included, and each answer sends only the step the page lacks (the pending one)."""
    payload = {"prompt": PROMPT, "strategy": strategy, "options": options}
    steps, answers = walk(server, payload, 6)
    out = generate(model, Tokenizer().encode(PROMPT), strategy, max_new_tokens=7, trace_top=10, **options)
    assert steps == traced(out)
    assert all(len(a["steps"]) == 1 and a["pending"] == a["accepted"] for a in answers)
    assert answers[-1]["chain"] == out.chain and answers[-1]["seed"] == out.seed
    for row in range(1, options.get("num_return_sequences", 1)):  # every sequence is sent, step by step
        assert [s for a in answers for s in a["rows"][row - 1]] == traced(out, row)


def test_an_answer_does_not_grow_with_the_text(server):
    """Old answers resent the whole history (4 KB after 0 tokens, 300 KB after 100); now a Next sends one step."""
    _, answers = walk(server, {"prompt": PROMPT, "strategy": "sample", "options": {"seed": 0}}, 40)
    sizes = [len(json.dumps(a)) for a in answers[1:]]
    assert max(sizes[20:]) < 1.5 * max(sizes[:5]), sizes


def test_the_same_text_at_the_same_step_has_the_same_pending_token_on_every_branch(server, model):
    """Force a token (a branch), then undo it: the parent's pending token comes back, not a new draw. The branch
    goes on with the parent's stream of draws: its next token is the one the parent's generator gives at that
    step, drawn from the branch's own distribution (computed here from the model and the chain, independently)."""
    options = {"seed": 0, "temperature": 1.3}
    payload = {"prompt": PROMPT, "strategy": "sample", "options": options}
    parent, _ = walk(server, payload, 3)
    x = next(c["id"] for c in parent[3]["candidates"] if c["id"] != parent[3]["token"])
    status, forked = call(server, "POST", "/api/step", payload | {"forced": [[3, x]], "accepted": 4, "have": 3})
    assert status == 200 and [s["token"] for s in forked["steps"]][0] == x and forked["pending"] == 4
    status, undone = call(server, "POST", "/api/step", payload | {"forced": [], "accepted": 3, "have": 3})
    assert status == 200 and undone["steps"] == [parent[3]]  # the parent's pending step, the same draw
    ids = Tokenizer().encode(PROMPT) + [s["token"] for s in parent[:3]] + [x]
    rng = np.random.default_rng(0)
    for _ in range(4):  # the draws of steps 0 to 3, the forced one's included
        rng.random()
    chain = build_chain(sampling=True, prompt_length=len(Tokenizer().encode(PROMPT)), eos_token_id=50256,
                        vocab_size=model.config.vocab_size, temperature=1.3)
    logits = model.forward(np.array([ids]), model.new_cache(1, len(ids)), last_only=True).logits[:, -1]
    assert forked["steps"][1]["token"] == draw(softmax(chain(logits, np.array([ids])))[0], rng)


def test_forcing_a_token_into_a_strategy_with_rules_of_its_own_is_refused_in_one_sentence(server):
    status, data = call(server, "POST", "/api/step", {"prompt": PROMPT, "strategy": "contrastive",
                                                      "forced": [[0, 13]], "accepted": 1})
    assert status == 400 and "cannot be forced into its run" in data["error"]


def test_run_n_streams_each_step_as_it_is_taken(server, model):
    """With "stream": true the answer is one JSON line per step, sent when that step is taken (the callback gets
    the first step while the run holds one step), and the whole answer last."""
    explorer = server.explorer
    payload = {"prompt": "Run N streams", "strategy": "sample", "options": {"seed": 4}, "accepted": 8}
    held = []
    explorer.step(payload, send=lambda part: held.append((len(part["steps"]), explorer.runs.branches[
        next(reversed(explorer.runs.branches))].steps.__len__())))
    assert held[0] == (1, 1) and len(held) == 8
    status, raw = call(server, "POST", "/api/step", payload | {"prompt": "Run N streams too", "stream": True})
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    out = generate(model, Tokenizer().encode("Run N streams too"), "sample", seed=4, max_new_tokens=9, trace_top=10)
    assert status == 200 and len(lines) == 9 and "accepted" in lines[-1]
    assert [s for line in lines for s in line["steps"]] == traced(out)


def test_a_prefix_continues_as_generate_from_it(server, model):
    """A setting changed with "keep the text" (or a token forced into contrastive) makes the text a prefix."""
    ids = Tokenizer().encode(PROMPT)
    first = generate(model, ids, max_new_tokens=1, trace_top=10).steps[0][0]
    forced = first.candidates[1].id
    status, data = call(server, "POST", "/api/step", {"prompt": PROMPT, "prefix": [forced], "accepted": 3,
                                                      "strategy": "greedy"})
    assert status == 200
    tokens = [s["token"] for s in data["steps"][:3]]
    assert tokens == generate(model, ids + [forced], max_new_tokens=3).sequences[0]
    assert data["prefix_logprobs"] == pytest.approx(token_logprobs(model, ids + [forced])[-1:], abs=1e-6)
    logprob = data["prefix_logprobs"][0] + sum(s["logprob"] for s in data["steps"][:3])
    assert data["measures"]["logprob"] == pytest.approx(logprob)
    assert data["measures"]["distinct"]["1"] == len({forced, *tokens}) / 4


def test_the_stages_show_each_link_on_the_distribution_it_cuts(server, model):
    """At T = 0.5 and top_k 3: the panels are the model, after temperature (what top-k cuts) and after the chain;
    top-k keeps 3 tokens, which hold the share it reports of the tempered distribution."""
    ids = Tokenizer().encode(PROMPT)
    status, data = call(server, "POST", "/api/step", {"prompt": PROMPT, "strategy": "sample",
                                                      "options": {"top_k": 3, "temperature": 0.5}})
    stages = data["stages"]
    assert status == 200 and [link["link"].split("(")[0] for link in stages["links"]] == ["temperature", "top_k"]
    assert [p["stage"] for p in stages["panels"]] == [0, 1, 2] and stages["cutoffs_from"] == 1
    logits = model.forward(np.array([ids]), model.new_cache(1, len(ids)), last_only=True).logits[0, -1]
    model_p, tempered = softmax(logits), softmax(logits / np.float32(0.5))
    order = np.argsort(-tempered, kind="stable")
    first, second, last = stages["panels"]
    assert [c["id"] for c in first["candidates"]] == list(np.argsort(-model_p, kind="stable")[:10])
    np.testing.assert_allclose([c["p"] for c in second["candidates"]], tempered[order[:10]], rtol=1e-5)
    np.testing.assert_allclose([c["score"] for c in second["candidates"]], logits[order[:10]] / 0.5, rtol=1e-5)
    assert [c["logit"] for c in second["candidates"]] == pytest.approx(logits[order[:10]].tolist(), rel=1e-6)
    assert stages["links"][1]["survivors"] == 3 and last["survivors"] == 3
    assert stages["links"][1]["kept_mass"] == pytest.approx(tempered[order[:3]].sum(), rel=1e-5)
    assert {int(i) for i, stage in stages["removed_by"].items()} == {int(i) for i in order[3:10]} | {
        c["id"] for c in first["candidates"] if c["id"] not in order[:3]}
    assert set(stages["removed_by"].values()) == {2}


@pytest.mark.parametrize("strategy", ["beam", "beam-sample", "diverse-beam"])
def test_every_beam_strategy_runs_from_its_defaults_and_returns_every_sequence(server, model, strategy):
    payload = {"prompt": PROMPT, "strategy": strategy, "options": {"seed": 0} if strategy == "beam-sample" else {},
               "accepted": 3}
    status, data = call(server, "POST", "/api/step", payload)
    options = build_options(strategy, **payload["options"])
    out = generate(model, Tokenizer().encode(PROMPT), strategy, max_new_tokens=3, **payload["options"])
    assert status == 200 and data["rerun"] and options.num_beams == 4
    assert [s["tokens"] for s in data["sequences"]] == out.sequences and len(out.sequences) == 1


def test_the_live_runs_are_bounded_and_a_run_let_go_is_replayed_exactly(model):
    """More branches than LIVE_RUNS: the least recently used go; asked for again, it is started again and replayed
    to where the page is, with the same steps."""
    with running_server(model) as server:
        first, _ = walk(server, {"prompt": "branch 0", "strategy": "sample", "options": {"seed": 2}}, 3)
        for i in range(1, LIVE_RUNS + 2):
            assert call(server, "POST", "/api/step", {"prompt": f"branch {i}"})[0] == 200
        assert len(server.explorer.runs.branches) == LIVE_RUNS
        status, again = call(server, "POST", "/api/step", {"prompt": "branch 0", "strategy": "sample",
                                                           "options": {"seed": 2}, "accepted": 3})
        assert status == 200 and again["steps"] == first


def test_inspect_equals_the_library(server, model):
    ids = Tokenizer().encode(PROMPT)
    status, data = call(server, "POST", "/api/inspect", {"ids": ids, "layer": 1})
    lens = logit_lens(model, ids)
    assert status == 200
    assert data["lens"]["top_tokens"] == lens.top_tokens.tolist()
    np.testing.assert_allclose(data["lens"]["top_probs"], lens.top_probs, atol=1e-6)
    assert data["lens"]["rows"] == list(lens.row_labels)  # "embeddings", "after layer 0", ...: as the pictures say
    np.testing.assert_allclose(data["attention"], attention_patterns(model, ids).weights[1], atol=1e-6)


def test_the_beam_tree_returns_beam_searchs_hypotheses(server, model):
    ids = Tokenizer().encode(PROMPT)
    status, data = call(server, "POST", "/api/beam-tree", {"prompt": PROMPT, "strategy": "beam",
                                                           "options": {"num_beams": 3}, "max_new_tokens": 4})
    out = generate(model, ids, "beam", num_beams=3, num_return_sequences=3, max_new_tokens=4)
    assert status == 200 and data["beam_tree"]["sequences"] == out.sequences


def test_tokenize_gives_the_tokenizers_tokens_and_merges(server):
    tok = Tokenizer()
    status, data = call(server, "POST", "/api/tokenize", {"text": PROMPT})
    assert status == 200 and [t["id"] for t in data["tokens"]] == tok.encode(PROMPT)
    assert [m["rank"] for m in data["tokens"][1]["merges"]] == [m.rank for m in tok.merges(tok.encode(PROMPT)[1])]


def test_the_options_are_the_registry(server):
    status, data = call(server, "GET", "/api/options")
    assert status == 200 and [o["name"] for o in data["options"]] == [o.name for o in REGISTRY]
    assert {o["group"] for o in data["options"]} == {g["name"] for g in data["groups"]}


def library_sentence(strategy, **options):
    with pytest.raises(ValueError) as e:
        build_options(strategy, **options)
    return str(e.value)


@pytest.mark.parametrize("headers, body, status, sentence", [
    ({"Host": "evil.example:80"}, None, 403, "answers only requests addressed to"),
    ({"Host": "127.0.0.1.evil.example"}, None, 403, "answers only requests addressed to"),
    ({"Origin": "http://evil.example"}, {"text": "a"}, 403, "answers only its own page"),
    ({}, b"{not json", 400, "is not valid JSON"),
    ({}, b"[1, 2]", 400, "must be a JSON object"),
    ({}, b"x" * (MAX_BODY + 1), 413, "more than the 65536 this server reads"),
    ({"Content-Type": "text/plain"}, b"{}", 415, "Content-Type: application/json"),
])
def test_bad_requests_get_a_4xx_and_one_sentence(server, headers, body, status, sentence):
    method = "GET" if body is None else "POST"
    got, data = call(server, method, "/api/tokenize" if body is not None else "/", body, headers)
    assert got == status and sentence in data["error"] and "Traceback" not in data["error"]


@pytest.mark.parametrize("strategy, options", [("sample", {"temperature": -1}), ("sample", {"top_p": 2}),
                                               ("greedy", {"top_k": 5}), ("sample", {"nonsense": 1})])
def test_a_bad_option_gets_the_librarys_sentence(server, strategy, options):
    status, data = call(server, "POST", "/api/step", {"prompt": "a", "strategy": strategy, "options": options})
    assert status == 400 and data["error"] == library_sentence(strategy, **options)


@pytest.mark.parametrize("payload, sentence", [
    ({"prompt": "a", "accepted": 10_000}, "accepted must be an integer in [0, 256]"),
    ({"prompt": "a", "options": {"draft_model": "/etc/passwd"}}, "draft_model cannot be given in a request"),
    ({"prompt": "a", "options": {"max_new_tokens": 5}}, "max_new_tokens cannot be given"),
    ({"prompt": "a", "strategy": "beam", "options": {"num_beams": 1000}}, "num_beams must be at most 16"),
    ({"prompt": "a", "prefix": [10 ** 9]}, "prefix must be a list of at most"),
    ({"prompt": "a " * 2000}, "exceed the model's context"),
    ({"prompt": "a", "forced": [[0, 10 ** 9]]}, "forced must be a list of [step, token id] pairs"),
    ({"prompt": "a", "have": -1}, "have must be how many steps of this branch the page holds"),
])
def test_the_explorers_own_limits(server, payload, sentence):
    status, data = call(server, "POST", "/api/step", payload)
    assert status == 400 and sentence in data["error"], data


def test_unknown_paths_and_methods(server):
    assert call(server, "GET", "/etc/passwd")[0] == 404
    assert call(server, "GET", "/static/../server.py")[0] == 404
    assert call(server, "GET", "/api/step")[0] == 405
    assert call(server, "DELETE", "/")[0] == 405


def test_200_requests_at_once_all_get_answers_and_the_server_stays_up(server):
    results, errors = [], []

    def one(i):
        try:
            path, body = ("/api/step", {"prompt": "a", "accepted": i % 3}) if i % 2 else ("/api/tokenize", {"text": "a"})
            results.append(call(server, "POST", path, body, timeout=120)[0])
        except Exception as e:  # noqa: BLE001 -- any failure to get an answer is what this test looks for
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 200
    assert set(results) <= {200, 503} and results.count(200) >= 100  # 503: more than MAX_WAITING waited for the model
    assert call(server, "POST", "/api/step", {"prompt": "a"})[0] == 200


def test_report_embeds_exactly_the_steps(tmp_path, model):
    out_file = tmp_path / "run.html"
    prompt = "</script><b>x</b> <!-- &"
    code = subprocess.run([sys.executable, "-m", "minigpt", "report", prompt, "--model", str(CHECKOUT / "tests" /
                           "fixtures" / "fullvocab"), "--strategy", "sample", "--seed", "2", "--top-k", "8",
                           "--max-new-tokens", "6", "--out", str(out_file)], env=program_env(), capture_output=True,
                          text=True, timeout=120)
    assert code.returncode == 0, code.stderr
    page = out_file.read_text()
    embedded = re.search(r'<script type="application/json" id="minigpt-data">(.*?)</script>', page, re.S).group(1)
    data = json.loads(embedded)
    out = generate(model, Tokenizer().encode(prompt), "sample", seed=2, top_k=8, max_new_tokens=6, trace_top=10)
    assert data["sequences"][0]["steps"] == roundtrip([step_json(s) for s in out.steps[0]])
    assert data["prompt_text"] == prompt and data["chain"] == out.chain
    namespaces = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"}  # names, never fetched
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= namespaces  # no address to fetch


def test_explore_serves_until_ctrl_c_and_stops_cleanly():
    """The child starts with SIGINT at its default, whatever the test process inherited: a shell starts a background
    job (`pytest &`) with SIGINT ignored, which a child inherits, and then Python raises no KeyboardInterrupt and
    the server never stops (this test failed in such runs only)."""
    process = subprocess.Popen([sys.executable, "-m", "minigpt", "explore", "--model", "tiny", "--port", "0"],
                               env=program_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = err = ""
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never the caller's http_proxy
        with opener.open(url + "api/options", timeout=60) as response:
            assert json.loads(response.read())["model"] == "tiny"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in err and "stopped" in err, (process.returncode, out, err)


def test_structured_options_are_read_from_text_as_the_command_line_reads_them(server, model):
    ids = Tokenizer().encode(PROMPT)
    first = generate(model, ids, max_new_tokens=1).sequences[0][0]
    options = {"logit_bias": [f"{first}=-inf"], "stop": ["."], "suppress_tokens": "13,11"}
    status, data = call(server, "POST", "/api/step", {"prompt": PROMPT, "accepted": 2, "options": options})
    out = generate(model, ids, max_new_tokens=3, trace_top=10, logit_bias={first: float("-inf")}, stop=["."],
                   suppress_tokens=[13, 11])
    assert status == 200 and data["steps"] == traced(out)


def test_served_on_every_address_it_answers_the_machines_own_names_and_no_other(model):
    """--host 0.0.0.0 listens on every address: a page opened at this machine's name or one of its addresses is
    this server's; any other Host is refused, and the refusal says how to serve the address the page was opened at."""
    with running_server(model, host="0.0.0.0") as server:
        port = server.server_address[1]
        for name in sorted(own_addresses()):
            status, data = call(server, "GET", "/api/options", headers={"Host": f"{name}:{port}"})
            assert status == 200 and data["model"] == "fixture", name
        status, data = call(server, "GET", "/api/options", headers={"Host": f"evil.example:{port}"})
        assert status == 403 and "start minigpt explore with --host set to the address you open" in data["error"]
