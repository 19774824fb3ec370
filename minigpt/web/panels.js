// The bars of the pending step in `minigpt explore` ("the next token, link by link"): the model's distribution,
// the one the cut-offs start from (after the penalties and temperature) and the one the token is drawn from, all on
// one 0-1 scale (or log), each saying how much probability its bars hold and how many tokens survive. explore.js
// calls render() with its state after each step; render.js draws the bars.
"use strict";
const MinigptPanels = (() => {
  const R = MinigptRender, $ = (id) => document.getElementById(id);

  // The bars of the pending step on one 0-1 scale (or log): the model's distribution, the one the cut-offs
  // start from (after the penalties and temperature), and what the token is drawn from.
  function render(S, pending, stages, force) {
    const panels = { before: null, tempered: null, after: null };
    const detail = (c) => "logit " + R.fmt(c.logit, 3) + (c.score !== c.logit ? `; here ${R.fmt(c.score, 3)}` +
      (temperature(S) ? ` (logit/T = ${R.fmt(c.logit / temperature(S), 3)} at T = ${temperature(S)})` : "") : "");
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
        summary(S, key, panel.heading, panel.note, panel.data.mass, panel.data.survivors);
      }
    } else { // the strategies that choose by rules of their own: the step's trace, before and after the chain
      const raw = pending ? pending.raw_candidates : [], after = pending ? pending.candidates : [];
      R.renderBars($("bars-before"), raw, S.table, { chosen, scale, onPick: pick });
      R.renderBars($("bars-after"), after, S.table, { chosen, scale, onPick: pick });
      summary(S, "before", "the model", "softmax of the logits", pending ? pending.raw_shown_mass : 0, null);
      summary(S, "after", "after the chain", `the chain's output, from which ${S.strategy} chooses by a rule of its ` +
        "own", pending ? pending.shown_mass : 0, pending ? pending.survivors : null);
      panels.before = panels.after = true;
    }
    $("panel-tempered").hidden = !panels.tempered;
  }
  const temperature = (S) => (S.registry.options.some((o) => o.name === "temperature" && o.strategies.includes(
    S.strategy)) && S.values.temperature && S.values.temperature !== 1 ? S.values.temperature : null);
  function summary(S, key, heading, note, mass, survivors) {
    $("head-" + key).textContent = heading;
    $("sum-" + key).textContent = `${note}. These bars hold ${R.fmt(100 * mass, 1)}% of the probability` +
      (survivors === null ? "." : survivors === S.registry.vocab_size ? "; every token of the vocabulary is possible."
        : `; ${survivors.toLocaleString()} ${survivors === 1 ? "token survives" : "tokens survive"} (p > 0).`);
  }

  return { render };
})();
