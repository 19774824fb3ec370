// `minigpt report`: draws the JSON embedded in the file (id minigpt-data) with render.js. No request.
"use strict";
(() => {
  const R = MinigptRender, el = R.el;
  const data = JSON.parse(document.getElementById("minigpt-data").textContent);
  document.body.classList.add("js");
  const main = document.getElementById("report");
  const beams = Boolean(data.beam_tree); // the beam strategies rank by a score of their own
  const sequences = data.sequences.map((seq, i) => {
    const m = seq.measures, box = el("div", { class: "tokens", dataset: { sequence: String(i) } });
    R.renderText(box, data.prompt_text, seq.steps, data.tokens);
    const distinct = Object.entries(m.distinct).map(([n, d]) => `distinct-${n} ${d === null ? "-" : R.fmt(d, 3)}`);
    const score = beams ? `; score ${R.fmt(seq.score, 4)}, what beam search ranks by: the sum of the tokens' ` +
      "log-probabilities after the chain, divided by length^length_penalty" : "";
    return el("section", {}, el("h2", {}, data.sequences.length > 1 ? `sequence ${i + 1}` : "the text"), box,
      el("div", { class: "hint" }, `log p ${R.fmt(m.logprob, 3)}: the sum of the tokens' log-probabilities under ` +
        `the model; ${distinct.join(", ")} (the share of n-grams that are new)${score}; ended by ` +
        `${seq.finish_reason}`));
  });
  const chain = el("div"), settings = el("div");
  R.renderChain(chain, data.chain);
  R.renderSettings(settings, data.strategy, data.options);
  const parts = [
    el("p", { class: "hint" }, `model ${data.model || "?"}. Each token is coloured by its probability under the ` +
      "model; hover it for the candidates before and after the chain, and the sampler's state at that step."),
    el("span", { class: "legend" }, "p under the model: 0", el("span", { class: "swatch" }), "1"),
    ...sequences,
    el("section", {}, el("div", { class: "cols" }, el("div", {}, el("h2", {}, "the chain, in order"), chain),
      el("div", {}, el("h2", {}, "the settings"), settings))),
  ];
  if (data.beam_tree) {
    const tree = el("div");
    R.renderBeamTree(tree, data.beam_tree, data.tokens);
    parts.push(el("section", {}, el("h2", {}, "the beam tree"), tree));
  }
  main.append(...parts);
})();
