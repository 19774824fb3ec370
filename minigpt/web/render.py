"""What the web renderer draws, as JSON, and the report: one HTML file with the renderer and its data inside.

The page of `minigpt explore` and the file of `minigpt report` are drawn by the same script,
minigpt/web/render.js, from the same JSON built here:

    tokens_table      id -> its text, its text made visible (␣ ↵) and its bytes in hex, for every id shown
    generation_data   a GenerationOutput as views/text.generation_json gives it (steps included: candidates
                      before and after the chain, the chain's state), plus the settings and the token table
    beam_tree_json    inspection.beam_tree's nodes, hypotheses and scores
    lens_json         inspection.logit_lens: each layer's top token and probability at each position

report_html puts the stylesheet, render.js and report.js inline and the data in a <script
type="application/json"> tag, so the file needs no server and makes no request. Without JavaScript it
still shows the text, the chain and the settings as plain HTML.

What this module is not: it computes nothing (call/generate.py and inspection/ do) and serves
nothing (server.py).
"""

import html
import json
import math
from pathlib import Path

from ..core.tokenizer import Tokenizer
from ..inspection.compare import measure
from ..views.labels import token_label
from ..views.text import generation_json, step_json

WEB = Path(__file__).parent  # the renderer: package data, read at run time, no build step


def tokens_table(tok: Tokenizer, ids) -> dict[str, dict]:
    """Every distinct id -> {"text", "shown", "bytes"}: the text as it reads, made visible, and in hex."""
    table = {}
    for i in dict.fromkeys(int(i) for i in ids):
        known = 0 <= i < tok.n_vocab
        table[str(i)] = {"text": tok.token_texts[i] if known else f"#{i}", "shown": token_label(tok, i),
                         "bytes": tok.token_bytes(i).hex(" ") if known else ""}
    return table


def ids_in_steps(steps: list[dict]) -> list[int]:
    """Every token id a list of views/text.step_json entries mentions: the chosen tokens and all candidates."""
    return [i for s in steps for i in [s["token"], *(c["id"] for c in s["candidates"] + s["raw_candidates"])]]


def measures(tokens: list[int], logprobs: list[float], eos: int) -> dict:
    """compare.measure's log p and distinct-n of the tokens (end-of-text left out), as JSON holds them."""
    total, distinct = measure(tokens, logprobs, eos)
    return {"logprob": total, "mean_logprob": total / len(logprobs) if logprobs else None,
            "distinct": {str(n): value for n, value in distinct.items()}}


def generation_data(tok: Tokenizer, out, prompt_ids: list[int], options: dict, model_name: str = "",
                    tree=None) -> dict:
    """One prompt's GenerationOutput with every step, the settings, and the token table; the beam tree too
    when given (beam strategies). prompt_ids: the text shown as the prompt (the page's, before its steps)."""
    data = generation_json(out, with_steps=True) | {"prompt_tokens": list(prompt_ids)}
    data["prompt_text"] = tok.decode(t for t in prompt_ids if t < tok.n_vocab)
    data["options"] = {name: setting(value) for name, value in options.items()}
    data["model"] = model_name
    ids = list(prompt_ids)
    for sequence, tokens in zip(data["sequences"], out.sequences):
        ids += tokens + ids_in_steps(sequence["steps"])
        sequence["measures"] = measures(tokens, [s["logprob"] for s in sequence["steps"]], tok.eot)
    if tree is not None:
        data["beam_tree"] = beam_tree_json(tree)
        ids += [n["token"] for n in data["beam_tree"]["nodes"] if n["token"] is not None]
    data["tokens"] = tokens_table(tok, ids)
    return data


def trimmed_step(step, top: int) -> dict:
    """A traced step as JSON (views/text.step_json) with only its `top` first candidates before and after the chain,
    and the probability those hold."""
    entry = step_json(step)
    for key, mass in (("candidates", "shown_mass"), ("raw_candidates", "raw_shown_mass")):
        entry[key] = entry[key][:top]
        entry[mass] = sum(c["p"] for c in entry[key])
    return entry


def branch_steps(tok: Tokenizer, branch, have: int, upto: int, top: int) -> dict:
    """The steps [have, upto) of a live branch (web/runs.py): its first row's, each other row's, and the token table
    of every id they mention. `total`: how many steps of the first row the page then holds."""
    first = [trimmed_step(s, top) for s in branch.steps[have:upto]]
    rows = [[trimmed_step(s, top) for s in steps[have:upto]] for steps in branch.live.steps[1:]]
    return {"have": have, "steps": first, "rows": rows, "total": have + len(first),
            "tokens": tokens_table(tok, ids_in_steps(first + [s for row in rows for s in row]))}


def stages_json(stages, top: int) -> dict:
    """inspection.stages.ChainStages as the page's panels draw them: the listed stages' `top` tokens, each with p,
    its score there and its logit; every link with its survivors and the share it kept; which link removed what."""
    listed = [i for i, stage in enumerate(stages.stages) if stage.tokens]
    panels = [{"stage": i, "after": stage.after, "survivors": stage.survivors,
               "candidates": [{"id": t, "p": p, "score": x, "logit": stages.logits[t]} for t, p, x in
                              zip(stage.tokens[:top], stage.probs[:top], stage.scores[:top])]} for i, stage in
              ((i, stages.stages[i]) for i in listed)]
    for panel in panels:
        panel["mass"] = sum(c["p"] for c in panel["candidates"])
    links = [{"stage": i, "link": stage.after, "survivors": stage.survivors, "kept_mass": stage.kept_mass}
             for i, stage in enumerate(stages.stages) if i > 0]
    ids = sorted({c["id"] for panel in panels for c in panel["candidates"]})
    return {"panels": panels, "links": links, "removed_by": {str(t): stages.removed_by[t] for t in ids
                                                             if t in stages.removed_by},
            "cutoffs_from": stages.cutoffs_from, "last": len(stages.stages) - 1, "ids": ids}


def plain(value):
    """Data as strict JSON can hold it: a float that is not finite (a -inf bias or log p) as the text "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def setting(value):
    """An option's value as JSON can hold it (tuples as lists, a model as its class name)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): setting(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [setting(v) for v in value]
    return type(value).__name__


def beam_tree_json(tree) -> dict:
    """inspection.BeamTree as JSON: nodes (parent first), the returned sequences best first, their scores."""
    nodes = [{"id": n.id, "parent": n.parent, "token": n.token, "tokens": list(n.tokens), "step": n.step,
              "prob": n.prob, "score": n.score, "status": n.status, "group": n.group, "result": n.result}
             for n in tree.nodes]
    return {"prompt": tree.prompt, "nodes": nodes, "sequences": tree.sequences, "scores": tree.scores,
            "strategy": tree.strategy}


def lens_json(lens) -> dict:
    """inspection.LogitLens as JSON: rows are the embeddings, then each block's output, labelled as the pictures
    label them."""
    return {"tokens": lens.tokens, "top_tokens": lens.top_tokens.tolist(), "top_probs": lens.top_probs.tolist(),
            "rows": list(lens.row_labels)}


# ----------------------------------------------------------------------------- the report file


def asset(name: str) -> str:
    return (WEB / name).read_text(encoding="utf-8")


def script_json(data) -> str:
    """JSON that can sit inside a <script> element: no "</" (which would end it) and no "<!--"."""
    text = json.dumps(plain(data), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def inline_script(source: str) -> str:
    return "<script>\n" + source.replace("</script", "<\\/script") + "\n</script>"


def static_view(data: dict) -> str:
    """What the report shows without JavaScript: the prompt and continuation, the chain and the settings."""
    first = data["sequences"][0] if data["sequences"] else {"text": ""}
    settings = ", ".join(f"{k}={v}" for k, v in data["options"].items()) or "defaults"
    chain = " -> ".join(data["chain"]) or "none: the model's own distribution"
    return (f'<div id="static"><p class="text"><b>{html.escape(data["prompt_text"])}</b>{html.escape(first["text"])}'
            f'</p><p>strategy {html.escape(data["strategy"])} ({html.escape(settings)})</p>'
            f"<p>chain: {html.escape(chain)}</p></div>")


def report_html(data: dict, title: str = "minigpt report") -> str:
    """One self-contained HTML page: the style, render.js and report.js inline, `data` as embedded JSON."""
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # the file may load nothing from outside itself: no CDN, no font service, no request at all
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{html.escape(title)}</title>", f"<style>\n{asset('style.css')}\n</style>", "</head>",
        '<body class="report"><header><h1>minigpt report</h1></header><main id="report">', static_view(data), "</main>",
        f'<script type="application/json" id="minigpt-data">{script_json(data)}</script>',
        inline_script(asset("render.js")), inline_script(asset("report.js")), "</body></html>", ""])
