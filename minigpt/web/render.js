// minigpt's renderer: draws the JSON of minigpt/render.py. Used as it is by the page of `minigpt explore`
// and inlined into the file of `minigpt report`. Plain JavaScript, no library, no request of its own.
// Every function takes data and a container; `table` is the JSON's id -> {text, shown, bytes}.
"use strict";
const MinigptRender = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElementNS(
      ["svg", "g", "line", "rect", "circle", "text", "path", "title"].includes(tag)
        ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  const shown = (table, id) => (table[id] ? table[id].shown : "#" + id);
  const text = (table, id) => (table[id] ? table[id].text : "#" + id);
  const fmt = (p, digits = 4) => (typeof p === "number" ? p.toFixed(digits) : String(p));
  // a probability as a background: red (unlikely) through yellow to green (likely)
  const colour = (p) => `hsl(${Math.round(120 * Math.max(0, Math.min(1, p)))}, ${p > 0.5 ? 55 : 75}%, 82%)`;
  const stateText = (state) => Object.entries(state || {}).map(([k, v]) =>
    `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : JSON.stringify(v)}`).join(", ");

  // ---------------------------------------------------------------- the tooltip
  let tip = null;
  function tooltip() {
    if (!tip) { tip = el("div", { id: "tip", role: "tooltip" }); document.body.append(tip); }
    return tip;
  }
  function showTip(event, content) {
    const t = tooltip();
    t.replaceChildren(content);
    t.style.display = "block";
    const x = Math.min(event.clientX + 14, window.innerWidth - t.offsetWidth - 8);
    const y = event.clientY + 18 + t.offsetHeight > window.innerHeight ? event.clientY - t.offsetHeight - 10
      : event.clientY + 18;
    t.style.left = Math.max(4, x) + "px";
    t.style.top = Math.max(4, y) + "px";
  }
  function hideTip() { if (tip) tip.style.display = "none"; }
  function hover(node, content) {
    node.addEventListener("mouseenter", (e) => showTip(e, content()));
    node.addEventListener("mousemove", (e) => showTip(e, content()));
    node.addEventListener("mouseleave", hideTip);
    return node;
  }

  // ---------------------------------------------------------------- one step: why this token
  function stepDetails(step, table, top = 10, heading = "") {
    const before = step.raw_candidates.slice(0, top), after = step.candidates.slice(0, top);
    const rows = [];
    for (let r = 0; r < Math.max(before.length, after.length); r++) {
      const cell = (c) => (c ? [el("td", {}, shown(table, c.id)), el("td", {}, fmt(c.p))] : [el("td"), el("td")]);
      const chosen = (before[r] && before[r].id === step.token) || (after[r] && after[r].id === step.token);
      rows.push(el("tr", { class: chosen ? "chosen" : null }, el("td", {}, String(r + 1)), cell(before[r]),
        cell(after[r])));
    }
    const p = Math.exp(step.logprob);
    return el("div", { class: "step-details" },
      el("div", {}, el("b", {}, heading || `chose ${shown(table, step.token)}`), ` id ${step.token}, ` +
        `p ${fmt(p)} under the model (log p ${fmt(step.logprob, 3)})`),
      step.state ? el("div", { class: "state" }, "state: " + stateText(step.state)) : null,
      rows.length ? el("table", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "before the chain"), el("th"),
        el("th", {}, "after the chain"), el("th")), rows) : el("div", { class: "hint" }, "no candidates traced"));
  }

  // a token of the text, coloured by its probability under the model, its step on hover
  function tokenSpan(table, id, step, attrs = {}) {
    const p = step ? Math.exp(step.logprob) : null;
    const span = el("span", Object.assign({ class: "tok gtok", dataset: { id: String(id) } }, attrs), text(table, id));
    if (p !== null) { span.style.background = colour(p); span.dataset.p = String(p); }
    if (step) hover(span, () => stepDetails(step, table));
    return span;
  }

  function renderText(container, promptText, steps, table, options = {}) {
    const spans = steps.map((s, i) => tokenSpan(table, s.token, s, { dataset: { id: String(s.token), step: String(i) },
      class: "tok gtok" + ((options.forced || []).includes(i) ? " forced" : "") }));
    container.replaceChildren(el("span", { class: "tok prompt" }, promptText), ...spans);
    return spans;
  }

  // ---------------------------------------------------------------- bars: the distribution before and after
  function renderBars(container, candidates, chosen, table, opts = {}) {
    const max = Math.max(1e-9, ...candidates.map((c) => c.p));
    const cutAt = {};
    for (const cut of opts.cutoffs || []) for (const id of cut.cuts) if (!(id in cutAt)) cutAt[id] = cut;
    const rows = [], drawn = new Set();
    candidates.forEach(({ id, p }, r) => {
      const cut = cutAt[id];
      if (cut && !drawn.has(cut.link)) {
        drawn.add(cut.link);
        rows.push(el("div", { class: "cutoff", title: `${cut.link} keeps ${cut.kept} tokens of the vocabulary` },
          `✂ ${cut.link}: keeps ${cut.kept.toLocaleString()}`));
      }
      const row = el("div", { class: "bar-row" + (id === chosen ? " chosen" : "") + (cut ? " cut" : "") +
        (opts.onPick ? " pick" : ""), dataset: { id: String(id), p: String(p), rank: String(r) },
        title: opts.onPick ? "click to force this token and start a branch" : null },
      el("span", { class: "rank" }, id === chosen ? "★" : String(r + 1)), el("span", { class: "label" },
        shown(table, id)), el("span", { class: "track" }, el("span", { class: "fill", style: `width:${100 * p / max}%;` +
        "display:block" })), el("span", { class: "p" }, fmt(p)));
      if (opts.onPick) row.addEventListener("click", () => opts.onPick(id));
      rows.push(row);
    });
    container.replaceChildren(...rows);
  }

  // ---------------------------------------------------------------- the chain and the settings
  function renderChain(container, chain) {
    container.replaceChildren(chain.length ? el("ol", { class: "chain" }, chain.map((c) => el("li", {}, c)))
      : el("div", { class: "hint" }, "no processor: tokens come from the model's own distribution"));
  }
  function renderSettings(container, strategy, options) {
    const rows = [["strategy", strategy], ...Object.entries(options || {}).map(([k, v]) => [k, JSON.stringify(v)])];
    container.replaceChildren(el("table", { class: "settings" }, rows.map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", {}, el("code", {}, v))))));
  }

  // ---------------------------------------------------------------- the beam tree
  function renderBeamTree(container, tree, table) {
    const byStep = {}, pos = {};
    for (const n of tree.nodes.slice(1)) (byStep[n.step] = byStep[n.step] || []).push(n);
    const steps = Object.keys(byStep).map(Number).sort((a, b) => a - b);
    const tall = Math.max(1, ...steps.map((s) => byStep[s].length));
    const W = 130, H = 20, width = 70 + W * steps.length, height = 16 + H * tall;
    pos[0] = [10, height / 2];
    const svg = el("svg", { class: "tree", width, height, viewBox: `0 0 ${width} ${height}` });
    for (const s of steps) byStep[s].forEach((n, i) => { pos[n.id] = [60 + W * s, 14 + H * i]; });
    const edges = el("g"), nodes = el("g");
    const colourOf = (n) => (n.result === 0 ? "#2f5fd0" : n.result !== null ? "#6c8fe0"
      : n.status === "finished" ? "#1b7f3b" : n.status === "running" ? "#333" : "#aab");
    for (const n of tree.nodes.slice(1)) {
      const [x, y] = pos[n.id], [px, py] = pos[n.parent];
      edges.append(el("line", { x1: px + (n.parent ? 56 : 6), y1: py, x2: x - 4, y2: y, stroke: colourOf(n),
        "stroke-width": n.result === 0 ? 2.5 : n.result !== null ? 1.6 : 0.7 }));
      const label = el("text", { x, y: y + 4, fill: colourOf(n), "font-weight": n.result === 0 ? 700 : 400,
        dataset: { node: String(n.id), status: n.status } }, shown(table, n.token).slice(0, 10));
      label.append(el("title", {}, `${shown(table, n.token)}: p ${fmt(n.prob)}, score ${fmt(n.score)}, ${n.status}` +
        (n.result !== null ? `, returned #${n.result + 1}` : "")));
      nodes.append(label);
    }
    svg.append(el("circle", { cx: pos[0][0], cy: pos[0][1], r: 4, fill: "#333" }), edges, nodes);
    const hyps = tree.sequences.map((seq, r) => el("div", { class: "hyp" + (r === 0 ? " best" : ""),
      dataset: { tokens: JSON.stringify(seq), score: String(tree.scores[r]) } },
    `#${r + 1}  score ${fmt(tree.scores[r])}  ` + seq.map((id) => text(table, id)).join("")));
    container.replaceChildren(el("div", { class: "scroll" }, svg), el("h3", {}, "hypotheses, best first"), ...hyps,
      el("div", { class: "hint" }, "blue: the returned hypotheses (bold: the best); green: finished; black: the " +
        "beams kept; grey: weighed and pruned. Hover a token for its p and score."));
  }

  // ---------------------------------------------------------------- inside the model
  function renderLens(container, lens, table) {
    const head = el("tr", {}, el("th", {}, "read out"), lens.tokens.map((id) => el("th", {}, shown(table, id))));
    const rows = lens.top_tokens.map((row, l) => el("tr", {}, el("th", {}, lens.rows[l]),
      row.map((id, t) => {
        const p = lens.top_probs[l][t];
        const cell = el("td", { dataset: { token: String(id), p: String(p), layer: String(l), pos: String(t) } },
          shown(table, id));
        cell.style.background = `rgba(47, 95, 208, ${0.08 + 0.8 * p})`;
        cell.style.color = p > 0.55 ? "#fff" : "";
        return hover(cell, () => el("div", {}, `${lens.rows[l]}, at ${shown(table, lens.tokens[t])}: ` +
          `${shown(table, id)} p ${fmt(p)}`));
      })));
    container.replaceChildren(el("div", { class: "scroll" }, el("table", { class: "lens" }, head, rows.reverse())));
  }

  function attentionCanvas(weights, ids, table, scale) {
    const T = weights.length, canvas = el("canvas", { class: "attention", width: T, height: T });
    canvas.style.width = canvas.style.height = T * scale + "px";
    canvas.weights = weights; // what was drawn, for whoever checks it
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(T, T);
    weights.forEach((row, q) => row.forEach((w, k) => {
      const i = 4 * (q * T + k), v = Math.round(255 * (1 - Math.sqrt(w)));
      image.data.set([v, v, 255, 255], i); // white (0) to blue (1)
    }));
    ctx.putImageData(image, 0, 0);
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect(), q = Math.floor((e.clientY - r.top) / scale),
        k = Math.floor((e.clientX - r.left) / scale);
      if (q >= 0 && q < T && k >= 0 && k < T) showTip(e, el("div", {}, `${shown(table, ids[q])} (position ${q}) ` +
        `attends to ${shown(table, ids[k])} (position ${k}): ${fmt(weights[q][k])}`));
    });
    canvas.addEventListener("mouseleave", hideTip);
    return canvas;
  }

  function renderAttention(container, attention, ids, table, head) {
    const T = ids.length;
    if (head === "all") {
      const scale = Math.max(1, Math.floor(160 / T));
      container.replaceChildren(el("div", { class: "heads" }, attention.map((w, h) =>
        el("figure", { dataset: { head: String(h) } }, attentionCanvas(w, ids, table, scale), el("figcaption", {},
          `head ${h}`)))));
      return;
    }
    const scale = Math.max(2, Math.floor(420 / T));
    container.replaceChildren(el("div", { dataset: { head: String(head) } },
      attentionCanvas(attention[head], ids, table, scale)),
    el("div", { class: "hint" }, "row: the query token; column: the token it attends to; darker is more."));
  }

  return { el, shown, text, fmt, colour, stateText, hover, showTip, hideTip, stepDetails, tokenSpan, renderText,
    renderBars, renderChain, renderSettings, renderBeamTree, renderLens, renderAttention };
})();
