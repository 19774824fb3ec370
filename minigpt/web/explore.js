// The page of `minigpt explore`: controls built from the options registry (GET /api/options), stepping and
// branching through POST /api/step, the beam tree through /api/beam-tree. The bars are panels.js's, the model's
// inside (lens, attention, why this token) inside.js's, the drawing render.js's. Every request goes to the
// server that served the page; nothing else is loaded.
//
// A branch is the server's paused run (web/runs.py): the page holds the steps it was sent and asks only for
// the ones it lacks, so a Next costs one decoding step and its answer does not grow with the text.
"use strict";
(() => {
  const R = MinigptRender, el = R.el, $ = (id) => document.getElementById(id);
  // The page's own starting points: sampling, so that temperature acts from the first drag; a seed, so that
  // every branch can be repeated. Everything else starts at the registry's defaults.
  const PAGE_DEFAULTS = { strategy: "sample", seed: 0 };
  const S = { registry: null, values: {}, strategy: PAGE_DEFAULTS.strategy, prompt: "", promptTokens: [],
    branches: [], current: 0, top: 10, busy: 0, generation: 0, rendered: 0, timers: {}, table: {},
    mode: "rerun", scale: "linear" };
  const branch = () => S.branches[S.current];
  // prefix: tokens the branch starts from (the prompt's continuation kept when settings changed, or a token forced
  // into a strategy that chooses by its own rules); forced {step: token}: tokens forced into the run itself.
  const newBranch = (fields = {}) => Object.assign({ prefix: [], prefixSteps: [], forcedAt: [], forced: {}, steps: [],
    rows: [], accepted: 0, answer: null, settings: null }, fields);
  const keyOf = (b) => JSON.stringify([b.prefix, Object.entries(b.forced).sort((x, y) => x[0] - y[0])]);
  const beams = () => S.registry.beams.includes(S.strategy);
  const chooses = () => S.registry.choosers.includes(S.strategy);

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
  // /api/step with "stream": one JSON line per step as the server takes it (onPart), the whole answer last
  async function streamed(body, onPart) {
    setBusy(1);
    try {
      const response = await fetch("/api/step", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ stream: true }, body)) });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        showError(data.error || `the server answered ${response.status}`);
        return null;
      }
      const reader = response.body.getReader(), decoder = new TextDecoder();
      let buffer = "", answer = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
          const line = JSON.parse(buffer.slice(0, i));
          buffer = buffer.slice(i + 1);
          if (line.error) { showError(line.error); return null; }
          if ("accepted" in line) answer = line; else onPart(line);
        }
      }
      showError("");
      return answer;
    } catch (e) {
      showError("the server cannot be reached; is minigpt explore still running?");
      return null;
    } finally { setBusy(-1); }
  }
  function later(name, fn, ms = 200) { clearTimeout(S.timers[name]); S.timers[name] = setTimeout(fn, ms); }

  // ------------------------------------------------------------ the controls, from the registry
  const optionOf = (name) => S.registry.options.find((o) => o.name === name);
  const defaultOf = (o) => { // the option's default for the strategy in use, then the page's, then the registry's
    const own = (S.registry.strategy_defaults[S.strategy] || {})[o.name];
    return own !== undefined ? own : o.name in PAGE_DEFAULTS ? PAGE_DEFAULTS[o.name] : o.default;
  };
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  function given() { // the options the strategy uses whose value is not the library's default
    const out = {};
    for (const o of S.registry.options) {
      if (!o.strategies.includes(S.strategy) || S.registry.set_by_the_page.includes(o.name)) continue;
      if (o.name === "draft_model" || o.python_only) continue;
      const v = S.values[o.name], library = (S.registry.strategy_defaults[S.strategy] || {})[o.name];
      if (v !== undefined && v !== "" && !same(v, library !== undefined ? library : o.default)) out[o.name] = v;
    }
    return out;
  }
  const settingsKey = () => JSON.stringify([S.strategy, given(), S.top]);
  function control(o) {
    const id = "opt-" + o.name, start = defaultOf(o);
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
  function showValue(o) { // the control shows S.values[o.name]
    const node = document.querySelector(`[data-option="${o.name}"]`), v = S.values[o.name];
    node.querySelectorAll("input").forEach((input) => {
      if (input.type === "checkbox") input.checked = !!v;
      else if (input.type !== "text") input.value = v ?? "";
    });
    node.classList.toggle("changed", v !== undefined && !same(v, defaultOf(o)));
  }
  function set(o, value) {
    S.values[o.name] = value;
    showValue(o);
    if (o.name === "max_new_tokens") $("run").textContent = `Run ${runLength()}`;
    else later("options", refresh);
  }
  const runLength = () => Math.max(1, Number(S.values.max_new_tokens) || optionOf("max_new_tokens").default);
  function useStrategy(name) {
    const before = S.strategy;
    for (const o of S.registry.options) { // an option left at the old strategy's default takes the new one's
      const old = (S.registry.strategy_defaults[before] || {})[o.name];
      const fresh = (S.registry.strategy_defaults[name] || {})[o.name];
      if ((old !== undefined || fresh !== undefined) && same(S.values[o.name], old !== undefined ? old : o.default)) {
        S.values[o.name] = fresh !== undefined ? fresh : o.default;
      }
    }
    S.strategy = name;
    $("strategy").value = name;
    S.registry.options.forEach(showValue);
    markUnused();
  }
  function buildControls() {
    const strategy = el("select", { id: "strategy", title: "how the next token is chosen" },
      S.registry.strategies.map((s) => el("option", { value: s.name, title: s.help }, s.name)));
    strategy.addEventListener("change", () => { useStrategy(strategy.value); refresh(); });
    const groups = S.registry.groups.map((g) => el("details", { class: "group", open: ["strategy", "warpers"]
      .includes(g.name) ? "" : null }, el("summary", { title: g.help }, g.name),
    el("div", { class: "hint" }, g.help), S.registry.options.filter((o) => o.group === g.name).map(control)));
    const top = el("input", { id: "top", type: "number", min: 1, max: S.registry.limits.top, value: S.top });
    top.addEventListener("input", () => { S.top = Number(top.value) || 10; later("options", refresh); });
    const mode = el("div", { class: "control mode", title: "what a changed setting does to the text already " +
      "accepted" }, el("span", {}, "a changed setting"), ...[["rerun", "re-runs the text"], ["keep",
      "keeps the text, acts from the pending token"]].map(([value, words]) => {
      const radio = el("input", { type: "radio", name: "mode", value, id: "mode-" + value,
        checked: S.mode === value ? "" : null });
      radio.addEventListener("change", () => { S.mode = value; render(); });
      return el("label", { for: "mode-" + value }, radio, words);
    }));
    $("controls").replaceChildren(el("div", { class: "control" }, el("label", { for: "strategy" }, "strategy"),
      strategy), mode, el("div", { class: "control" }, el("label", { for: "top", title: "how many candidates the " +
      "bars and the hover show" }, "bars: top N"), top), ...groups);
    useStrategy(S.strategy);
  }
  function markUnused() {
    for (const o of S.registry.options) {
      const node = document.querySelector(`[data-option="${o.name}"]`), used = o.strategies.includes(S.strategy);
      node.classList.toggle("unused", !used);
      node.querySelectorAll("input").forEach((input) => { input.disabled = !used || o.name === "draft_model" ||
        o.python_only; });
      node.title = used ? "" : `${S.strategy} does not use ${o.name}; ${o.strategies.join(", ")} do`;
    }
    $("beam-section").hidden = !beams();
    $("panels").hidden = beams();
  }

  // ------------------------------------------------------------ the prompt and its tokens
  async function tokenize() {
    S.prompt = $("prompt").value;
    const data = await request("/api/tokenize", { text: S.prompt });
    if (!data) return;
    S.promptTokens = data.tokens;
    $("prompt-tokens").replaceChildren(...data.tokens.map((t, i) => {
      const span = el("span", { class: "tok ptok", dataset: { id: String(t.id), pos: String(i) } }, t.shown);
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
  const textOf = (b) => [...b.prefix, ...b.steps.slice(0, b.accepted).map((s) => s.token)];
  function take(b, part) { // steps the page lacked: appended after the `have` it already held
    if (part.rerun) { b.steps = part.steps; b.rows = part.rows; } else {
      b.steps = b.steps.slice(0, part.have).concat(part.steps);
      part.rows.forEach((r, i) => { b.rows[i] = (b.rows[i] || []).slice(0, part.have).concat(r); });
    }
    Object.assign(S.table, part.tokens);
  }
  function settled(b) { // the settings changed since b's steps were computed: re-run them, or keep the text
    const key = settingsKey();
    if (b.settings === key) return;
    if (b.settings !== null && S.mode === "keep" && b.accepted) fold(b);
    b.steps = []; b.rows = []; b.settings = key;
  }
  function fold(b) { // the accepted text becomes the prefix: new settings act from the pending token on
    const kept = b.steps.slice(0, b.accepted);
    b.forcedAt = [...b.forcedAt, ...Object.keys(b.forced).map((k) => b.prefix.length + Number(k))];
    b.prefix = textOf(b); b.prefixSteps = [...b.prefixSteps, ...kept]; b.forced = {}; b.accepted = 0;
  }
  async function refresh(stream = false) {
    const b = branch(), ticket = ++S.generation;
    settled(b);
    const body = { prompt: S.prompt, prefix: b.prefix, accepted: b.accepted, have: b.steps.length,
      forced: Object.entries(b.forced).map(([k, t]) => [Number(k), t]), strategy: S.strategy, options: given(),
      top: S.top };
    const data = stream && !beams() ? await streamed(body, (part) => {
      if (ticket !== S.generation) return;
      take(b, part);
      drawText(Math.min(b.accepted, b.steps.length));
    }) : await request("/api/step", body);
    if (!data || ticket !== S.generation) return;
    take(b, data);
    b.answer = data;
    b.accepted = data.accepted;
    if (data.prefix_logprobs) data.prefix_logprobs.forEach((lp, i) => {
      if (b.prefixSteps[i]) b.prefixSteps[i].logprob = lp; });
    render();
    if (beams()) beamTree();
    document.dispatchEvent(new CustomEvent("minigpt:text")); // inside.js: the lens, attention and why panels
  }
  const next = () => { branch().accepted += 1; refresh(); };
  const runN = () => {
    const b = branch();
    b.accepted = Math.min(b.accepted + runLength(), S.registry.limits.accepted);
    refresh(true);
  };
  function switchTo(b) { // b, or the branch that already holds the same run, at b's place in it: no twin cards
    const twin = S.branches.find((other) => other !== b && keyOf(other) === keyOf(b));
    if (twin) {
      twin.accepted = b.accepted;
      S.branches = S.branches.filter((other) => other !== b);
      S.current = S.branches.indexOf(twin);
    } else {
      if (!S.branches.includes(b)) S.branches.push(b);
      S.current = S.branches.indexOf(b);
    }
  }
  function undo() {
    const b = branch();
    if (b.accepted > 0) {
      b.accepted -= 1;
      if (b.accepted in b.forced) { // back before a forced token: the parent's run, and its pending token
        const forced = Object.assign({}, b.forced);
        delete forced[b.accepted];
        b.forced = forced; b.steps = b.steps.slice(0, b.accepted); b.rows = b.rows.map((r) => r.slice(0, b.accepted));
        switchTo(b);
      }
    } else if (b.prefix.length) {
      b.prefix = b.prefix.slice(0, -1); b.prefixSteps = b.prefixSteps.slice(0, -1);
      b.forcedAt = b.forcedAt.filter((i) => i < b.prefix.length); b.steps = []; b.rows = [];
      switchTo(b);
    }
    refresh();
  }
  function force(id) {
    const b = branch(), k = b.accepted, pending = b.steps[k];
    if (!pending) return;
    if (pending.token === id) { next(); return; } // the run's own choice
    const fresh = chooses() ? newBranch({ prefix: b.prefix, prefixSteps: b.prefixSteps, forcedAt: b.forcedAt,
      forced: Object.assign({}, b.forced, { [k]: id }), steps: b.steps.slice(0, k), rows: b.rows.map((r) => r.slice(0,
        k)), accepted: k + 1, settings: b.settings })
      : newBranch({ prefix: [...textOf(b), id], prefixSteps: [...b.prefixSteps, ...b.steps.slice(0, k),
        Object.assign({}, pending, { token: id })], forcedAt: [...b.forcedAt, b.prefix.length + k],
      settings: b.settings });
    switchTo(fresh);
    refresh();
  }

  // ------------------------------------------------------------ drawing
  function forcedPositions(b) {
    return [...b.forcedAt, ...Object.keys(b.forced).map((k) => b.prefix.length + Number(k))];
  }
  function drawText(accepted) {
    const b = branch(), steps = [...b.prefixSteps, ...b.steps.slice(0, accepted)];
    R.renderText($("text"), S.prompt, steps, S.table, { forced: forcedPositions(b) });
    const pending = b.steps[accepted];
    if (pending && !beams()) {
      $("text").append(...R.tokenSpan(S.table, pending.token, pending, { class: "tok gtok pending" }));
    }
    $("rows").replaceChildren(...b.rows.map((row, i) => {
      const box = el("div", { class: "tokens row", dataset: { sequence: String(i + 2) } },
        el("span", { class: "hint" }, `sequence ${i + 2}: `));
      row.slice(0, accepted).forEach((s) => box.append(...R.tokenSpan(S.table, s.token, s)));
      return box;
    }));
  }
  function render() {
    const b = branch(), d = b.answer;
    if (!d) return;
    drawText(b.accepted);
    const pending = d.pending === null ? null : b.steps[d.pending];
    $("next").disabled = $("run").disabled = !pending && !beams();
    $("undo").disabled = !b.accepted && !b.prefix.length;
    $("pending-note").textContent = pending ? `next: ${R.shown(S.table, pending.token)} (p ${R.fmt(Math.exp(
      pending.logprob))} under the model)` + (pending.state ? `; state ${R.stateText(pending.state)}` : "") +
      (Object.keys(b.forced).length ? "; a forced token takes the place of a draw, so this branch goes on with " +
        "its parent's draws: the same text at the same step gives the same token" : "")
      : beams() ? "beam search settles its sequences when the search ends: each Next runs the search again, " +
        "one token longer" : `the text has ended (${d.ended || "no token"})`;
    $("mode-note").textContent = S.mode === "rerun" ? "a changed setting re-runs the whole text with it"
      : "a changed setting keeps the text and acts from the pending token on (the draws start again from the seed)";
    if (!beams()) MinigptPanels.render(S, pending, d.stages, force);
    R.renderChain($("chain"), d.chain);
    $("measures").textContent = measuresText(d.measures);
    renderBranches();
    S.rendered += 1;
  }
  const measuresText = (m) => `log p ${R.fmt(m.logprob, 2)} under the model (the sum over the tokens after the ` +
    `prompt; per token ${m.mean_logprob === null ? "-" : R.fmt(m.mean_logprob, 2)}); distinct-n: the share of ` +
    `n-grams that are new: ` + Object.entries(m.distinct).map(([n, v]) => `d${n} ${v === null ? "-" : R.fmt(v, 2)}`)
    .join(" ");

  function renderBranches() {
    $("branches").replaceChildren(...S.branches.map((b, i) => {
      const ids = textOf(b);
      const card = el("div", { class: "branch" + (i === S.current ? " current" : ""), dataset: { branch: String(i),
        tokens: JSON.stringify(ids) } }, el("div", { class: "hint" }, i === 0 ? "first run" : `branch ${i}`),
      el("div", { class: "text" }, el("span", { class: "hint" }, S.prompt.slice(-40)), ids.map((id) => R.text(S.table,
        id)).join("")), el("div", { class: "numbers" }, b.answer ? `log p ${R.fmt(b.answer.measures.logprob, 2)}`
        : ""));
      card.addEventListener("click", () => { if (S.current !== i) { S.current = i; refresh(); } });
      return card;
    }));
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
    S.registry = await request("/api/options");
    if (!S.registry) return;
    $("model").textContent = `model ${S.registry.model}`;
    $("run").textContent = `Run ${runLength()}`;
    buildControls();
    document.dispatchEvent(new CustomEvent("minigpt:registry"));
    $("prompt").addEventListener("input", () => later("prompt", tokenize, 250));
    $("next").addEventListener("click", next);
    $("run").addEventListener("click", runN);
    $("undo").addEventListener("click", undo);
    $("reset").addEventListener("click", () => { S.branches = [newBranch()]; S.current = 0; refresh(); });
    $("scale").addEventListener("change", () => { S.scale = $("scale").checked ? "log" : "linear"; render(); });
    await tokenize();
  }
  // The text so far (the prompt's tokens, then the branch's) and its pending step: what inside.js explains.
  const text = () => [...S.promptTokens.map((t) => t.id), ...textOf(branch())];
  const pendingStep = () => { const b = branch(), d = b.answer;
    return d && d.pending !== null && !beams() ? b.steps[d.pending] : null; };
  window.explorer = { state: S, request, text, pendingStep, refresh, next, undo, force };
  // After every script of the page has run (inside.js listens for "minigpt:registry"): a fast answer to
  // /api/options must not arrive while the parser still waits for a later script.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
