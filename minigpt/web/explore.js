// The page of `minigpt explore`: controls built from the options registry (GET /api/options), stepping and
// branching through POST /api/step, the model's inside through /api/inspect and /api/beam-tree. The drawing
// is render.js's. Every request goes to the server that served the page; nothing else is loaded.
"use strict";
(() => {
  const R = MinigptRender, el = R.el, $ = (id) => document.getElementById(id);
  const PAGE_DEFAULTS = { seed: 0, max_new_tokens: 10 }; // the page's own: a seed so that stepping is reproducible
  const S = { registry: null, values: {}, strategy: "greedy", prompt: "", promptTokens: [], branches: [], current: 0,
    top: 10, busy: 0, generation: 0, rendered: 0, timers: {} };
  const branch = () => S.branches[S.current];
  const newBranch = (prefix = [], prefixSteps = [], forced = []) => ({ prefix, prefixSteps, forced, accepted: 0,
    data: null });

  function setBusy(delta) { S.busy += delta; document.body.dataset.busy = String(S.busy); }
  function showError(sentence) { $("error").textContent = sentence || ""; }
  async function request(path, body) {
    setBusy(1);
    try {
      const response = await fetch(path, body === undefined ? {} : { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      if (!response.ok || data.error) { showError(data.error || `the server answered ${response.status}`); return null; }
      showError("");
      return data;
    } catch (e) {
      showError("the server cannot be reached; is minigpt explore still running?");
      return null;
    } finally { setBusy(-1); }
  }
  function later(name, fn, ms = 200) { clearTimeout(S.timers[name]); S.timers[name] = setTimeout(fn, ms); }

  // ------------------------------------------------------------ the controls, from the registry
  const optionOf = (name) => S.registry.options.find((o) => o.name === name);
  const isDefault = (o, v) => JSON.stringify(v) === JSON.stringify(o.name in PAGE_DEFAULTS ? PAGE_DEFAULTS[o.name]
    : o.default);
  function given() { // the options the strategy uses whose value is not the default; the page sets the others
    const out = {};
    for (const o of S.registry.options) {
      if (!o.strategies.includes(S.strategy) || S.registry.set_by_the_page.includes(o.name)) continue;
      if (o.name === "draft_model" || o.python_only) continue;
      const v = S.values[o.name];
      if (v !== undefined && v !== "" && !(v === o.default)) out[o.name] = v;
    }
    return out;
  }
  function control(o) {
    const id = "opt-" + o.name, start = o.name in PAGE_DEFAULTS ? PAGE_DEFAULTS[o.name] : o.default;
    if (start !== null && typeof start !== "object") S.values[o.name] = start;
    const title = `${o.help}. Takes ${o.accepts}.` + (o.limit ? ` At most ${o.limit} here.` : "");
    const label = el("label", { for: id, title }, o.name);
    let input, slider = null;
    if (o.name === "draft_model" || o.python_only) {
      input = el("input", { id, type: "text", disabled: true, value: o.python_only ? "" : S.registry.draft_model || "",
        placeholder: o.python_only ? "Python only" : "--draft-model at launch" });
    } else if (o.kind === "bool") {
      input = el("input", { id, type: "checkbox", checked: !!start });
      input.addEventListener("change", () => set(o, input.checked));
    } else if (o.kind === "int" || o.kind === "float") {
      const step = o.kind === "int" ? 1 : 0.01;
      input = el("input", { id, type: "number", step: o.kind === "int" ? 1 : "any", min: o.low, max: o.limit ?? o.high,
        value: start ?? "", placeholder: start === null ? "off" : null });
      input.addEventListener("input", () => set(o, input.value === "" ? null : Number(input.value)));
      if (o.kind === "float" && o.low !== null) {
        const top = o.high !== null && o.high <= 10 ? o.high : Math.max(2, 3 * (o.default || 0));
        slider = el("input", { type: "range", min: o.low, max: top, step, value: start, "aria-label": o.name, title });
        slider.addEventListener("input", () => { input.value = slider.value; set(o, Number(slider.value)); });
        input.addEventListener("input", () => { slider.value = input.value; });
      }
    } else {
      input = el("input", { id, type: "text", placeholder: start === null || (Array.isArray(start) && !start.length)
        ? (o.metavar || "off") : JSON.stringify(start) });
      if (o.repeat) input.title = title + " Several: separate them with |.";
      input.addEventListener("input", () => set(o, input.value.trim() === "" ? undefined : o.repeat
        ? input.value.split("|").map((v) => v.trim()).filter((v) => v) : input.value));
    }
    return el("div", { class: "control", dataset: { option: o.name } }, label, input, slider);
  }
  function set(o, value) {
    S.values[o.name] = value;
    if (o.name === "max_new_tokens") $("run").textContent = `Run ${Number(value) || PAGE_DEFAULTS.max_new_tokens}`;
    document.querySelector(`[data-option="${o.name}"]`).classList.toggle("changed", !isDefault(o, value) &&
      value !== undefined);
    if (o.name !== "max_new_tokens") later("options", optionsChanged);
  }
  function buildControls() {
    const strategy = el("select", { id: "strategy", title: "how the next token is chosen" },
      S.registry.strategies.map((s) => el("option", { value: s.name, title: s.help }, s.name)));
    strategy.addEventListener("change", () => { S.strategy = strategy.value; markUnused(); optionsChanged(); });
    const groups = S.registry.groups.map((g) => el("details", { class: "group", open: ["strategy", "warpers"]
      .includes(g.name) ? "" : null }, el("summary", { title: g.help }, g.name),
    el("div", { class: "hint" }, g.help), S.registry.options.filter((o) => o.group === g.name).map(control)));
    const top = el("input", { id: "top", type: "number", min: 1, max: S.registry.limits.top, value: S.top });
    top.addEventListener("input", () => { S.top = Number(top.value) || 10; later("options", refresh); });
    $("controls").replaceChildren(el("div", { class: "control" }, el("label", { for: "strategy" }, "strategy"),
      strategy), el("div", { class: "control" }, el("label", { for: "top", title: "how many candidates the bars " +
      "and the hover show" }, "bars: top N"), top), ...groups);
    markUnused();
  }
  function markUnused() {
    for (const o of S.registry.options) {
      const node = document.querySelector(`[data-option="${o.name}"]`), used = o.strategies.includes(S.strategy);
      node.classList.toggle("unused", !used);
      node.querySelectorAll("input").forEach((input) => { input.disabled = !used || o.name === "draft_model" ||
        o.python_only; });
      node.title = used ? "" : `${S.strategy} does not use ${o.name}; ${o.strategies.join(", ")} do`;
    }
    $("beam-section").hidden = !S.registry.beams.includes(S.strategy);
  }

  // ------------------------------------------------------------ the prompt and its tokens
  async function tokenize() {
    S.prompt = $("prompt").value;
    const data = await request("/api/tokenize", { text: S.prompt });
    if (!data) return;
    S.promptTokens = data.tokens;
    $("prompt-tokens").replaceChildren(...data.tokens.map((t, i) => {
      const span = el("span", { class: "tok ptok", dataset: { id: String(t.id), pos: String(i) } }, t.text);
      span.style.background = `hsl(${(i * 67) % 360}, 70%, 88%)`;
      R.hover(span, () => el("div", {}, el("b", {}, t.shown), ` id ${t.id}, bytes ${t.bytes}; click for its merges`));
      span.addEventListener("click", () => showMerges(i, t, span));
      return span;
    }));
    $("prompt-count").textContent = `${data.tokens.length} tokens`;
    S.branches = [newBranch()];
    S.current = 0;
    refresh();
  }
  function showMerges(pos, t, span) {
    document.querySelectorAll(".ptok.selected").forEach((s) => s.classList.remove("selected"));
    span.classList.add("selected");
    const rows = t.merges.map((m) => el("tr", {}, el("td", {}, String(m.rank)), el("td", {},
      `${m.left_shown} + ${m.right_shown}`)));
    $("merges").replaceChildren(el("div", {}, el("b", {}, `token ${pos}: ${t.shown}`), ` id ${t.id}, bytes ${t.bytes}`),
      t.merges.length ? el("table", { class: "settings" }, el("tr", {}, el("th", {}, "rank"), el("th", {},
        "merge, in the order BPE makes it")), rows) : el("div", { class: "hint" }, "a single byte: no merge builds it"));
  }

  // ------------------------------------------------------------ stepping and branching
  async function refresh() {
    const b = branch(), ticket = ++S.generation;
    const data = await request("/api/step", { prompt: S.prompt, prefix: b.prefix, accepted: b.accepted,
      strategy: S.strategy, options: given(), top: S.top });
    if (!data || ticket !== S.generation) return;
    b.data = data;
    b.accepted = data.accepted.length;
    data.prefix_logprobs.forEach((lp, i) => { if (b.prefixSteps[i]) b.prefixSteps[i].logprob = lp; });
    Object.assign(S.table, data.tokens);
    render();
    if ($("inside").open) inspect();
    if (S.registry.beams.includes(S.strategy)) beamTree();
  }
  function tokensOf(b) { return [...b.prefix, ...(b.data ? b.data.accepted.map((s) => s.token) : [])]; }
  const next = () => { branch().accepted += 1; refresh(); };
  const runN = () => {
    const n = Number(S.values.max_new_tokens) || PAGE_DEFAULTS.max_new_tokens;
    branch().accepted = Math.min(branch().accepted + n, S.registry.limits.accepted);
    refresh();
  };
  function undo() {
    const b = branch();
    if (b.accepted > 0) b.accepted -= 1;
    else if (b.prefix.length) {
      b.prefix = b.prefix.slice(0, -1); b.prefixSteps = b.prefixSteps.slice(0, -1);
      b.forced = b.forced.filter((i) => i < b.prefix.length);
    }
    refresh();
  }
  function fold(b) { // the accepted tokens become history: later steps continue from them with the new settings
    if (!b.data) return;
    b.prefix = tokensOf(b);
    b.prefixSteps = [...b.prefixSteps, ...b.data.accepted];
    b.accepted = 0;
  }
  function optionsChanged() { fold(branch()); refresh(); }
  function force(id) {
    const b = branch(), pending = b.data.pending;
    const step = Object.assign({}, pending, { token: id, state: pending.state, forced: true });
    const prefix = [...tokensOf(b), id];
    S.branches.push(newBranch(prefix, [...b.prefixSteps, ...b.data.accepted, step], [...b.forced, prefix.length - 1]));
    S.current = S.branches.length - 1;
    refresh();
  }

  // ------------------------------------------------------------ drawing
  function render() {
    const b = branch(), d = b.data, table = S.table;
    const steps = [...b.prefixSteps, ...d.accepted];
    R.renderText($("text"), S.prompt, steps, table, { forced: b.forced });
    if (d.pending) {
      const span = R.tokenSpan(table, d.pending.token, d.pending, { class: "tok pending", title: null });
      $("text").append(span);
    }
    const pending = d.pending;
    $("next").disabled = $("run").disabled = !pending && !S.registry.beams.includes(S.strategy);
    $("undo").disabled = !b.accepted && !b.prefix.length;
    $("pending-note").textContent = pending ? `next: ${R.shown(table, pending.token)} (p ${R.fmt(Math.exp(
      pending.logprob))} under the model)` + (pending.state ? `; state ${R.stateText(pending.state)}` : "")
      : S.registry.beams.includes(S.strategy) ? "beam search: each Next runs the search one token longer"
        : `the text has ended (${d.sequences[0] ? d.sequences[0].finish_reason : "no token"})`;
    R.renderBars($("bars-before"), pending ? pending.raw_candidates : [], pending && pending.token, table,
      { cutoffs: d.cutoffs, onPick: pending ? force : null });
    R.renderBars($("bars-after"), pending ? pending.candidates : [], pending && pending.token, table,
      { onPick: pending ? force : null });
    R.renderChain($("chain"), d.chain);
    renderBranches();
    S.rendered += 1;
  }
  function renderBranches() {
    $("branches").replaceChildren(...S.branches.map((b, i) => {
      const m = b.data ? b.data.measures : null, ids = tokensOf(b);
      const distinct = m ? Object.entries(m.distinct).map(([n, v]) => `d${n} ${v === null ? "-" : R.fmt(v, 2)}`) : [];
      const card = el("div", { class: "branch" + (i === S.current ? " current" : ""), dataset: { branch: String(i),
        tokens: JSON.stringify(ids) } }, el("div", { class: "hint" }, i === 0 ? "first run" : `branch ${i}`),
      el("div", { class: "text" }, el("span", { class: "hint" }, S.prompt.slice(-40)), ids.map((id) => R.text(S.table,
        id)).join("")), el("div", { class: "numbers" }, m ? `log p ${R.fmt(m.logprob, 2)} · per token ` +
        `${m.mean_logprob === null ? "-" : R.fmt(m.mean_logprob, 2)} · ${distinct.join(" ")}` : ""));
      card.addEventListener("click", () => { if (S.current !== i) { S.current = i; refresh(); } });
      return card;
    }));
  }

  // ------------------------------------------------------------ inside the model
  async function inspect() {
    const ids = [...S.promptTokens.map((t) => t.id), ...tokensOf(branch())];
    if (!ids.length) return;
    const data = await request("/api/inspect", { ids, layer: Number($("layer").value) });
    if (!data) return;
    Object.assign(S.table, data.tokens);
    S.inspected = data;
    R.renderLens($("lens"), data.lens, S.table);
    drawAttention();
  }
  function drawAttention() {
    const d = S.inspected, head = $("head").value;
    if (d) R.renderAttention($("attention"), d.attention, d.ids, S.table, head === "all" ? "all" : Number(head));
  }
  async function beamTree() {
    const b = branch();
    const data = await request("/api/beam-tree", { prompt: S.prompt, prefix: b.prefix, strategy: S.strategy,
      options: given(), max_new_tokens: Math.max(1, Math.min(b.accepted || 1, 32)) });
    if (!data) return;
    Object.assign(S.table, data.tokens);
    R.renderBeamTree($("beam-tree"), data.beam_tree, S.table);
  }

  async function start() {
    S.table = {};
    S.registry = await request("/api/options");
    if (!S.registry) return;
    $("model").textContent = `model ${S.registry.model}`;
    $("run").textContent = `Run ${PAGE_DEFAULTS.max_new_tokens}`;
    buildControls();
    for (let l = 0; l < S.registry.n_layer; l++) $("layer").append(el("option", { value: l }, `layer ${l}`));
    $("head").append(el("option", { value: "all" }, "every head"));
    for (let h = 0; h < S.registry.n_head; h++) $("head").append(el("option", { value: h }, `head ${h}`));
    $("layer").addEventListener("change", inspect);
    $("head").addEventListener("change", drawAttention);
    $("inside").addEventListener("toggle", () => { if ($("inside").open) inspect(); });
    $("prompt").addEventListener("input", () => later("prompt", tokenize, 250));
    $("next").addEventListener("click", next);
    $("run").addEventListener("click", runN);
    $("undo").addEventListener("click", undo);
    $("reset").addEventListener("click", () => { S.branches = [newBranch()]; S.current = 0; refresh(); });
    await tokenize();
  }
  window.explorer = { state: S, refresh, next, undo, force, inspect };
  start();
})();
