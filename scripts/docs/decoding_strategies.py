"""The classic study of decoding strategies, walked through on "I have a dream".

    python -m scripts.docs.decoding_strategies                               # gpt2; figures into figures/
    python -m scripts.docs.decoding_strategies --model gpt2-medium --out-dir /tmp/figures
    python -m scripts.docs.decoding_strategies --model tests/fixtures/fullvocab   # any GPT-2 checkpoint runs

The study is Patrick von Platen's "How to generate text: using different decoding methods for language
generation with Transformers" (Hugging Face blog, 2020). One prompt goes through greedy search, beam
search (plain, then with repeated bigrams blocked), pure sampling, sampling with a temperature, top-k
sampling (Fan et al. 2018) and nucleus sampling (Holtzman et al. 2020). Each section prints the text
with its log-probability under the model and its distinct-n (minigpt/inspection/compare.py), and draws the
figure that explains it (minigpt/views/plots/): the next-token distribution, the beam tree, temperature,
the top-k and top-p cut-offs; then the logit lens and the attention of the first layer, to show where
the distribution comes from. The numbers differ from the blog's: a different seed and random generator.

Figures need matplotlib (pip install -e ".[plots]"); without it the text is still printed.
The same lesson with its pictures inline, and the samplers it leaves out: docs/decoding_strategies.ipynb.
"""

import argparse
import sys
from pathlib import Path

import minigpt
from minigpt import inspection
from minigpt.inspection.compare import CLASSIC, RunSpec, compare
from minigpt.views import plots
from minigpt.views.labels import token_label, visible
from minigpt.views.text import comparison_block, comparison_table

# The sections, in the study's order: (heading, what to notice, the run).
SECTIONS = [
    ("Greedy search", "the most probable token at every step: fluent at first, then it repeats itself.",
     CLASSIC["greedy"]),
    ("Beam search",
     "keeps the 5 most probable sequences rather than tokens: more probable text, repeating all the same.",
     RunSpec("beam", {"num_beams": 5, "early_stopping": True}, "beam")),
    ("Beam search, no repeated bigram", "the same search, but no 2-gram may occur twice (no_repeat_ngram_size=2).",
     RunSpec("beam", {"num_beams": 5, "early_stopping": True, "no_repeat_ngram_size": 2}, "beam, no repeat")),
    ("Sampling", "draws each token from the full distribution: varied, and often incoherent.",
     RunSpec("sample", {}, "sample")),
    ("Temperature", "softmax(logits / 0.7) sharpens the distribution before drawing: likely tokens get likelier.",
     CLASSIC["temperature"]),
    ("Top-k sampling", "draws from the 50 most probable tokens only (Fan et al. 2018).",
     CLASSIC["top-k"]),
    ("Top-p (nucleus) sampling",
     "draws from the smallest set of tokens holding 92% of the probability (Holtzman et al. 2020).",
     CLASSIC["top-p"]),
]


def arguments(argv=None):
    p = argparse.ArgumentParser(description="The classic study of decoding strategies on one prompt.")
    p.add_argument("--model", default="gpt2",
                   help="a GPT-2 name, hub repo id, folder or .safetensors file (default gpt2)")
    p.add_argument("--prompt", default="I have a dream")
    p.add_argument("--out-dir", default="figures", help="where the figures go (default figures/)")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="for the sampling runs (default 0)")
    p.add_argument("--no-figures", action="store_true", help="print the text only")
    return p.parse_args(argv)


def distribution_lines(tok, data) -> list[str]:
    """The top of a next-token distribution (inspection.NextTokenDistribution) at its first temperature."""
    return [f"  {rank + 1:>3}  {plots.token_text(tok, int(t), 16):<16} {p:.4f}"
            for rank, (t, p) in enumerate(zip(data.tokens, data.probs[0]))]


def figures(model, tok, ids, out_dir: Path, seed: int) -> list[Path]:
    """Every figure of the walkthrough, written into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prompt = visible(tok.decode(ids))
    written = []

    def write(name, draw, *args):
        path = out_dir / name
        draw(*args, path)
        written.append(path)

    write("next_token.png", plots.plot_probs, inspection.next_token_distribution(model, ids, top=20),
          f"p(next token | {prompt!r}): greedy search takes the highest bar")
    write("beam_tree.png", plots.plot_beam_tree, inspection.beam_tree(model, ids, num_beams=3, max_new_tokens=4),
          f"beam search, 3 beams, 4 steps, after {prompt!r}")
    write("temperature.png", plots.plot_probs,
          inspection.next_token_distribution(model, ids, temperatures=(0.7, 1.0, 1.5), top=20, seed=seed),
          "temperature: below 1 sharpens the distribution, above 1 flattens it")
    write("top_k.png", plots.plot_probs, inspection.next_token_distribution(model, ids, top_k=10, top=25, seed=seed),
          "top-k sampling, k = 10: only the 10 most probable tokens can be drawn")
    write("top_p.png", plots.plot_probs, inspection.next_token_distribution(model, ids, top_p=0.92, top=30, seed=seed),
          "top-p sampling, p = 0.92: the fewest tokens that hold 92% of the probability")
    write("logit_lens.png", plots.plot_lens, inspection.logit_lens(model, ids), tok,
          "logit lens: what each layer would predict")
    write("attention.png", plots.plot_attention, inspection.attention_patterns(model, ids).weights, 0, None,
          [token_label(tok, i) for i in ids], "attention of every head in layer 0")
    return written


def main(argv=None) -> int:
    args = arguments(argv)
    try:
        model = minigpt.load(args.model)
    except (ValueError, OSError) as e:  # missing weights (DownloadError is a FileNotFoundError), a bad checkpoint
        print(f"decoding_strategies: error: {e}".splitlines()[0], file=sys.stderr)
        return 1
    tok = minigpt.Tokenizer()
    ids = tok.encode(args.prompt)

    print(f"Prompt: {args.prompt!r} = tokens {ids}, model {args.model}\n")
    print("The model's next-token distribution, from which every strategy chooses:")
    print("\n".join(distribution_lines(tok, inspection.next_token_distribution(model, ids, top=10))) + "\n")

    results = compare(model, ids, [run for _, _, run in SECTIONS], max_new_tokens=args.max_new_tokens, seed=args.seed,
                      tokenizer=tok)
    for (heading, notice, _), result in zip(SECTIONS, results):
        print(f"{heading}: {notice}")
        print("\n".join(comparison_block(args.prompt, result)) + "\n")
    print("Side by side: the searches score high log p and repeat (low distinct-n); sampling trades one for the other.")
    print("\n".join(comparison_table(results)) + "\n")

    if args.no_figures:
        return 0
    try:
        plots.require_matplotlib()
    except ImportError as e:
        print(f"figures skipped: {e}")
        return 0
    for path in figures(model, tok, ids, Path(args.out_dir), args.seed):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
