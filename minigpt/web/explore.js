// The page of `minigpt explore`: controls built from the options registry (GET /api/options), stepping and
// branching through POST /api/step, the model's inside through /api/inspect and /api/beam-tree. The drawing
// is render.js's. Every request goes to the server that served the page; nothing else is loaded.
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
      if (o.name === "draft_model") continue;
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
    if (o.name === "draft_model") {
      input = el("input", { id, type: "text", disabled: true, value: S.registry.draft_model || "",
        placeholder: "--draft-model at launch" });
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
      node.querySelectorAll("input").forEach((input) => { input.disabled = !used || o.name === "draft_model"; });
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
    if ($("inside").open) inspect();
    if (beams()) beamTree();
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
    if (!beams()) renderPanels(pending, d.stages);
    R.renderChain($("chain"), d.chain);
    $("measures").textContent = measuresText(d.measures);
    renderBranches();
    S.rendered += 1;
  }
  const measuresText = (m) => `log p ${R.fmt(m.logprob, 2)} under the model (the sum over the tokens after the ` +
    `prompt; per token ${m.mean_logprob === null ? "-" : R.fmt(m.mean_logprob, 2)}); distinct-n: the share of ` +
    `n-grams that are new: ` + Object.entries(m.distinct).map(([n, v]) => `d${n} ${v === null ? "-" : R.fmt(v, 2)}`)
    .join(" ");

  // The bars of the pending step on one 0-1 scale (or log): the model's distribution, the one the cut-offs
  // start from (after the penalties and temperature), and what the token is drawn from.
  function renderPanels(pending, stages) {
    const panels = { before: null, tempered: null, after: null };
    const detail = (c) => "logit " + R.fmt(c.logit, 3) + (c.score !== c.logit ? `; here ${R.fmt(c.score, 3)}` +
      (temperature() ? ` (logit/T = ${R.fmt(c.logit / temperature(), 3)} at T = ${temperature()})` : "") : "");
    const pick = pending ? force : null, scale = S.scale, chosen = pending && pending.token;
    if (stages) {
      const byStage = Object.fromEntries(stages.panels.map((p) => [p.stage, p]));
      const linkOf = (stage) => stages.links[stage - 1].link;
      const cut = {};
      for (const [id, stage] of Object.entries(stages.removed_by)) cut[id] = `removed by ${linkOf(stage)}`;
      panels.before = { data: byStage[0], heading: "the model", note: "softmax of the logits" };
      if (stages.cutoffs_from > 0 && stages.cutoffs_from < stages.last) {
        panels.tempered = { data: byStage[stages.cutoffs_from], heading: "after " + stages.links
          .slice(0, stages.cutoffs_from).map((l) => l.link.split("(")[0]).join(" → "), note: "what the cut-offs " +
          "start from; ✂ where each cuts, measured on what reached it" };
      }
      panels.after = { data: byStage[stages.last], heading: "after the chain", note: "what the token is drawn from" };
      const start = panels.tempered ? stages.cutoffs_from : 0, lines = {}, below = [];
      for (const link of stages.links.filter((l) => l.stage > start)) {
        const shown = (panels.tempered || panels.before).data.candidates.find((c) => stages.removed_by[c.id] ===
          link.stage);
        const words = `✂ ${link.link}: keeps ${link.survivors.toLocaleString()} tokens, ` +
          `${R.fmt(100 * link.kept_mass, 1)}% of what reached it`;
        if (shown) (lines[shown.id] = lines[shown.id] || []).push(words); else below.push(words + " (below the bars)");
      }
      for (const [key, panel] of Object.entries(panels)) {
        if (!panel) continue;
        const cuts = key === "before" || key === "tempered";
        R.renderBars($("bars-" + key), panel.data.candidates, S.table, { chosen, scale, detail, onPick: pick,
          cut: cuts ? cut : null, lines: key === (panels.tempered ? "tempered" : "before") ? lines : null,
          after: key === (panels.tempered ? "tempered" : "before") ? below : null });
        summary(key, panel.heading, panel.note, panel.data.mass, panel.data.survivors);
      }
    } else { // the strategies that choose by rules of their own: the step's trace, before and after the chain
      const raw = pending ? pending.raw_candidates : [], after = pending ? pending.candidates : [];
      R.renderBars($("bars-before"), raw, S.table, { chosen, scale, onPick: pick });
      R.renderBars($("bars-after"), after, S.table, { chosen, scale, onPick: pick });
      summary("before", "the model", "softmax of the logits", pending ? pending.raw_shown_mass : 0, null);
      summary("after", "after the chain", `the chain's output, from which ${S.strategy} chooses by a rule of its ` +
        "own", pending ? pending.shown_mass : 0, pending ? pending.survivors : null);
      panels.before = panels.after = true;
    }
    $("panel-tempered").hidden = !panels.tempered;
  }
  const temperature = () => (S.registry.options.some((o) => o.name === "temperature" && o.strategies.includes(
    S.strategy)) && S.values.temperature && S.values.temperature !== 1 ? S.values.temperature : null);
  function summary(key, heading, note, mass, survivors) {
    $("head-" + key).textContent = heading;
    $("sum-" + key).textContent = `${note}. These bars hold ${R.fmt(100 * mass, 1)}% of the probability` +
      (survivors === null ? "." : survivors === S.registry.vocab_size ? "; every token of the vocabulary is possible."
        : `; ${survivors.toLocaleString()} ${survivors === 1 ? "token survives" : "tokens survive"} (p > 0).`);
  }
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

  // ------------------------------------------------------------ inside the model
  async function inspect() {
    const ids = [...S.promptTokens.map((t) => t.id), ...textOf(branch())];
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
    S.registry = await request("/api/options");
    if (!S.registry) return;
    $("model").textContent = `model ${S.registry.model}`;
    $("run").textContent = `Run ${runLength()}`;
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
    $("scale").addEventListener("change", () => { S.scale = $("scale").checked ? "log" : "linear"; render(); });
    await tokenize();
  }
  window.explorer = { state: S, refresh, next, undo, force, inspect };
  start();
})();
