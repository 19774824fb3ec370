// minigpt's renderer: draws the JSON of minigpt/web/render.py. Used as it is by the page of `minigpt explore`
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
  // a number to `digits` decimals; a probability below 0.001 as 3.2e-6, so that a rare one still reads
  const fmt = (p, digits = 4) => (typeof p !== "number" ? String(p) : p !== 0 && Math.abs(p) < 1e-3
    ? p.toExponential(1) : p.toFixed(digits));
  // probability as colour: matplotlib's viridis (colour-blind safe, even in grey), the same stops as
  // views/html.py's VIRIDIS, which the notebook uses; the pictures use matplotlib's own
  const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151",
    "#bddf26", "#fde725"];
  function colour(p) {
    const x = 10 * Math.max(0, Math.min(1, p)), i = Math.min(9, Math.floor(x)), f = x - i;
    const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
    const [a, b] = [rgb(VIRIDIS[i]), rgb(VIRIDIS[i + 1])];
    return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(", ")})`;
  }
  const inkOn = (p) => (p < 0.55 ? "#fff" : "#111"); // text that reads on colour(p)
  function paint(node, p) { node.style.background = colour(p); node.style.color = inkOn(p); return node; }
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

  // A token as the text shows it: its own text, except where that cannot be seen or pointed at: a newline
  // (↵, then the line break), a token of spaces or tabs (␣ ⇥), and bytes of a character split across tokens
  // (<0xF0>): those show their label, in the style of `.tok.mark`.
  function tokenFace(table, id) {
    const t = text(table, id), label = shown(table, id);
    if (t.includes("\n")) return { face: label, mark: true, breaks: (t.match(/\n/g) || []).length };
    if (t.trim() === "" || t.includes("\ufffd")) return { face: label, mark: true, breaks: 0 };
    return { face: t, mark: false, breaks: 0 };
  }
  // a token of the text, coloured by its probability under the model, its step on hover
  function tokenSpan(table, id, step, attrs = {}) {
    const p = step ? Math.exp(step.logprob) : null, { face, mark, breaks } = tokenFace(table, id);
    const span = el("span", Object.assign({ class: "tok gtok", dataset: { id: String(id) } }, attrs), face);
    if (mark) span.classList.add("mark");
    if (p !== null) { paint(span, p); span.dataset.p = String(p); }
    if (step) hover(span, () => stepDetails(step, table));
    return breaks ? [span, ...Array.from({ length: breaks }, () => el("br"))] : [span];
  }

  function renderText(container, promptText, steps, table, options = {}) {
    const spans = steps.map((s, i) => tokenSpan(table, s.token, s, { dataset: { id: String(s.token), step: String(i) },
      class: "tok gtok" + ((options.forced || []).includes(i) ? " forced" : "") }));
    container.replaceChildren(el("span", { class: "tok prompt" }, promptText), ...spans.flat());
    return spans;
  }

  // ---------------------------------------------------------------- bars: a distribution on one absolute scale
  const LOG_FLOOR = 1e-6; // the log scale runs from here to 1
  function barWidth(p, scale) {
    if (scale !== "log") return 100 * p;
    return p <= LOG_FLOOR ? 0 : 100 * (Math.log10(p) - Math.log10(LOG_FLOOR)) / -Math.log10(LOG_FLOOR);
  }
  // candidates [{id, p, logit?, score?}], most probable first. opts: chosen (the pending token), scale
  // ("linear" | "log"), lines {id: text} (a ✂ line drawn before that bar), cut {id: why} (bars a link removed),
  // detail(c) -> extra hover text, onPick(id).
  function renderBars(container, candidates, table, opts = {}) {
    const rows = [];
    candidates.forEach((c, r) => {
      if (opts.lines && opts.lines[c.id]) rows.push(...opts.lines[c.id].map((line) => el("div", { class: "cutoff" },
        line)));
      const cut = opts.cut && opts.cut[c.id];
      const row = el("div", { class: "bar-row" + (c.id === opts.chosen ? " chosen" : "") + (cut ? " cut" : "") +
        (opts.onPick ? " pick" : ""), dataset: { id: String(c.id), p: String(c.p), rank: String(r) } },
      el("span", { class: "rank" }, c.id === opts.chosen ? "★" : String(r + 1)),
      el("span", { class: "label" }, shown(table, c.id)),
      el("span", { class: "track" }, el("span", { class: "fill", style: `width:${barWidth(c.p, opts.scale)}%` })),
      el("span", { class: "p" }, fmt(c.p)));
      hover(row, () => el("div", {}, el("b", {}, shown(table, c.id)), ` id ${c.id}, p ${fmt(c.p)}`,
        opts.detail ? el("div", {}, opts.detail(c)) : null, cut ? el("div", { class: "state" }, cut) : null,
        opts.onPick ? el("div", { class: "hint" }, "click to force this token: a new branch") : null));
      if (opts.onPick) row.addEventListener("click", () => opts.onPick(c.id));
      rows.push(row);
    });
    if (opts.after) rows.push(...opts.after.map((line) => el("div", { class: "cutoff below" }, line)));
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
  const oneLine = (table, ids) => ids.map((id) => text(table, id)).join("").replace(/\n/g, "↵");
  function renderBeamTree(container, tree, table) {
    const byStep = {}, pos = {};
    for (const n of tree.nodes.slice(1)) (byStep[n.step] = byStep[n.step] || []).push(n);
    const steps = Object.keys(byStep).map(Number).sort((a, b) => a - b);
    const tall = Math.max(1, ...steps.map((s) => byStep[s].length));
    const W = 130, H = 20, width = 60 + W * steps.length + 90, height = 16 + H * tall; // room for the last labels
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
    el("span", { class: "score" }, `#${r + 1} score ${fmt(tree.scores[r])}`), oneLine(table, seq)));
    container.replaceChildren(el("div", { class: "scroll" }, svg), el("h3", {}, "hypotheses, best first"), ...hyps,
      el("div", { class: "hint" }, "score: what beam search ranks by, the sum of the tokens' log-probabilities " +
        "after the chain divided by length^length_penalty. Blue: the returned hypotheses (bold: the best); " +
        "green: finished; black: the beams kept; grey: weighed and pruned. Hover a token for its p and score; " +
        "↵ is a newline."));
  }

  // ---------------------------------------------------------------- inside the model
  // the lens: each layer's most probable next token at each position; outlined where it is the token that
  // actually came next (lens.tokens[t + 1])
  function renderLens(container, lens, table) {
    const head = el("tr", {}, el("th", {}, "read out"), lens.tokens.map((id) => el("th", {}, shown(table, id))));
    const rows = lens.top_tokens.map((row, l) => el("tr", {}, el("th", {}, lens.rows[l]),
      row.map((id, t) => {
        const p = lens.top_probs[l][t], hit = t + 1 < lens.tokens.length && lens.tokens[t + 1] === id;
        const cell = paint(el("td", { class: hit ? "hit" : null, dataset: { token: String(id), p: String(p),
          layer: String(l), pos: String(t) } }, shown(table, id)), p);
        return hover(cell, () => el("div", {}, `${lens.rows[l]}, at ${shown(table, lens.tokens[t])}: ` +
          `${shown(table, id)} p ${fmt(p)}` + (hit ? " (the token that came next)" : "")));
      })));
    container.replaceChildren(el("div", { class: "scroll" }, el("table", { class: "lens" }, head, rows.reverse())),
      el("div", { class: "hint" }, "colour: p of the top token (the scale of the legend); outlined: the token " +
        "that actually came next."));
  }

  function attentionCanvas(weights, ids, table, scale) {
    const T = weights.length, canvas = el("canvas", { class: "attention", width: T, height: T });
    canvas.style.width = canvas.style.height = T * scale + "px";
    canvas.weights = weights; // what was drawn, for whoever checks it
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(T, T);
    const rgb = (p) => colour(p).slice(4, -1).split(", ").map(Number);
    weights.forEach((row, q) => row.forEach((w, k) => {
      image.data.set(k > q ? [245, 245, 245, 255] : [...rgb(w), 255], 4 * (q * T + k)); // grey: the future
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
  // a grid with its tokens along both sides: queries down the left, keys along the top (written upwards)
  function labelledGrid(weights, ids, table, scale) {
    const T = ids.length, every = Math.max(1, Math.ceil(11 / scale)); // a label where there is room for one
    const label = (i) => (i % every === 0 ? shown(table, ids[i]) : "");
    const keys = el("div", { class: "keys", style: `grid-template-columns: repeat(${T}, ${scale}px)` },
      ids.map((_, i) => el("span", { title: shown(table, ids[i]) }, label(i))));
    const queries = el("div", { class: "queries", style: `grid-template-rows: repeat(${T}, ${scale}px)` },
      ids.map((_, i) => el("span", { title: shown(table, ids[i]) }, label(i))));
    return el("div", { class: "grid" }, el("span"), keys, queries, attentionCanvas(weights, ids, table, scale));
  }

  function renderAttention(container, attention, ids, table, head) {
    const T = ids.length;
    if (head === "all") {
      const scale = Math.max(2, Math.floor(200 / T));
      container.replaceChildren(el("div", { class: "heads" }, attention.map((w, h) =>
        el("figure", { dataset: { head: String(h) } }, labelledGrid(w, ids, table, scale), el("figcaption", {},
          `head ${h}`)))));
      return;
    }
    const scale = Math.max(4, Math.floor(420 / T));
    container.replaceChildren(el("div", { dataset: { head: String(head) } }, labelledGrid(attention[head], ids, table,
      scale)), el("div", { class: "hint" }, "row: the query token; column: the token it attends to; colour: the " +
      "weight, on the legend's scale; grey: later tokens, which it cannot see."));
  }

  return { el, shown, text, fmt, colour, paint, stateText, hover, showTip, hideTip, stepDetails, tokenSpan,
    renderText, renderBars, renderChain, renderSettings, renderBeamTree, renderLens, renderAttention };
})();
