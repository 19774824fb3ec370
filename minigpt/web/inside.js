// Inside the model, for the text of `minigpt explore`: the logit lens and one layer's attention (/api/inspect),
// and "why this token" (/api/why): the pending token's logit split into what each head, MLP and embedding wrote
// into the last position's residual stream. explore.js announces each new text with the event "minigpt:text";
// a closed panel asks nothing of the server.
"use strict";
(() => {
  const R = MinigptRender, el = R.el, $ = (id) => document.getElementById(id);
  const E = () => window.explorer;
  const TOP = 16; // the parts shown; the others are summed in one line

  // ------------------------------------------------------------ the logit lens and attention
  async function inspect() {
    const ids = E().text();
    if (!ids.length) return;
    const data = await E().request("/api/inspect", { ids, layer: Number($("layer").value) });
    if (!data) return;
    Object.assign(E().state.table, data.tokens);
    E().state.inspected = data;
    R.renderLens($("lens"), data.lens, E().state.table);
    drawAttention();
  }
  function drawAttention() {
    const d = E().state.inspected, head = $("head").value;
    if (d) R.renderAttention($("attention"), d.attention, d.ids, E().state.table, head === "all" ? "all" : Number(head));
  }
  function showHead(layer, head) { // the whole pattern of one head, in the panel above
    $("layer").value = String(layer);
    $("head").value = String(head);
    $("inside").open = true;
    inspect();
    $("inside").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // ------------------------------------------------------------ why this token
  async function why() {
    const pending = E().pendingStep(), ids = E().text();
    if (!pending || !ids.length) {
      $("why-sum").textContent = "no pending token: take a step with a strategy that chooses one token at a time.";
      $("why-bars").replaceChildren(); $("why-looks").replaceChildren();
      return;
    }
    const data = await E().request("/api/why", { ids, token: pending.token, against: $("why-against").value,
      by: $("why-by").value, fold_value_biases: $("why-fold").checked, top: TOP });
    if (!data) return;
    Object.assign(E().state.table, data.tokens);
    renderWhy(data, E().state.table);
  }
  function measured(d, table) {
    const tok = R.shown(table, d.token);
    return d.versus !== null ? `logit(${tok}) − logit(${R.shown(table, d.versus)})`
      : d.centered ? `logit(${tok}) − the mean logit` : `logit(${tok})`;
  }
  function renderWhy(d, table) {
    const position = R.shown(table, d.ids[d.position]);
    $("why-sum").textContent = `After ${position}, ${measured(d, table)}` + (d.versus !== null ? " (the runner-up's)" : "")
      + ` = ${R.fmt(d.logit, 3)}: the sum of ` +
      `${d.n_parts} parts (the ${d.parts.length} largest below, the others add ${R.fmt(d.rest, 3)}) and ln_f's ` +
      `bias, ${R.fmt(d.leftover, 3)}. Each part is what it wrote into the residual stream, through ln_f's scale ` +
      "frozen at its value here, read on the token's column of the output matrix.";
    const largest = Math.max(1e-9, ...d.parts.map((p) => Math.abs(p.contribution)));
    $("why-bars").replaceChildren(...d.parts.map((p) => {
      const share = Math.abs(p.contribution) / largest, sign = p.contribution >= 0 ? "up" : "down";
      const bar = el("span", { class: "fill " + sign, style: `width:${(50 * share).toFixed(2)}%;` +
        (sign === "up" ? "left:50%" : `right:50%`) });
      const row = el("div", { class: "why-row" + (p.looks ? " pick" : ""), dataset: { label: p.label,
        contribution: String(p.contribution) } }, el("span", { class: "label" }, p.label),
      el("span", { class: "track" }, el("span", { class: "zero" }), bar),
      el("span", { class: "p" }, (p.contribution >= 0 ? "+" : "") + R.fmt(p.contribution, 3)));
      R.hover(row, () => el("div", {}, el("b", {}, p.label), " " + partWords(p) + `; pushes ${measured(d, table)} ` +
        `${sign} by ${R.fmt(Math.abs(p.contribution), 3)}` + (p.looks ? ". Click: where it looks" : "")));
      if (p.looks) row.addEventListener("click", () => drawLooks(p, d, table, row));
      return row;
    }));
    const first = d.parts.find((p) => p.looks);
    const kept = first && document.querySelector(`.why-row[data-label="${$("why-looks").dataset.label}"]`);
    if (kept) drawLooks(d.parts.find((p) => p.label === kept.dataset.label), d, table, kept);
    else if (first) drawLooks(first, d, table, document.querySelector(`.why-row[data-label="${first.label}"]`));
    else $("why-looks").replaceChildren(el("div", { class: "hint" }, "by layer: choose by head to see where a head looks"));
  }
  function partWords(p) {
    if (p.looks) return `layer ${p.layer}, head ${p.head}: what this head wrote at this position`;
    if (p.label === "embed") return "the token's own embedding";
    if (p.label === "pos_embed") return "the position's embedding";
    if (p.label === "bias") return "the attention layers' output biases (and the heads' value biases when folded)";
    const [layer, what] = p.label.split("_");
    return `layer ${layer}'s ${what === "mlp" ? "MLP" : "attention, all heads"}`;
  }
  function drawLooks(p, d, table, row) {
    document.querySelectorAll(".why-row.selected").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
    $("why-looks").dataset.label = p.label;
    const tokens = d.ids.map((id, i) => {
      const span = el("span", { class: "tok", dataset: { pos: String(i), weight: String(p.looks[i]) } },
        R.shown(table, id));
      R.paint(span, p.looks[i]);
      R.hover(span, () => el("div", {}, el("b", {}, R.shown(table, id)), ` position ${i}: ${p.label} gives it ` +
        `${R.fmt(100 * p.looks[i], 1)}% of its attention`));
      return span;
    });
    $("why-looks").replaceChildren(el("div", {}, el("b", {}, p.label), ` (layer ${p.layer}, head ${p.head}) at ` +
      `position ${d.position}: where its attention goes, coloured by weight on the legend's scale. `,
    el("button", { onclick: () => showHead(p.layer, p.head) }, "its whole pattern")), el("div", { class: "tokens" },
      tokens));
  }

  // ------------------------------------------------------------ wiring
  document.addEventListener("minigpt:registry", () => {
    const S = E().state;
    for (let l = 0; l < S.registry.n_layer; l++) $("layer").append(el("option", { value: l }, `layer ${l}`));
    $("head").append(el("option", { value: "all" }, "every head"));
    for (let h = 0; h < S.registry.n_head; h++) $("head").append(el("option", { value: h }, `head ${h}`));
    $("layer").addEventListener("change", inspect);
    $("head").addEventListener("change", drawAttention);
    $("inside").addEventListener("toggle", () => { if ($("inside").open) inspect(); });
    $("why").addEventListener("toggle", () => { if ($("why").open) why(); });
    ["why-against", "why-by", "why-fold"].forEach((id) => $(id).addEventListener("change", why));
  });
  document.addEventListener("minigpt:text", () => {
    if ($("inside").open) inspect();
    if ($("why").open) why();
  });
  window.inside = { inspect, why };
})();
