"""Train a tiny GPT-2 on English prose found on this machine, for the README's pictures.

    pip install -e '.[reference]'                       # torch + transformers
    python scripts/train_tiny.py                        # ~10 minutes on one CPU thread -> weights/tiny-trained/
    minigpt plot lens "The server emits an event" --model weights/tiny-trained

The real GPT-2 weights are not always at hand, and a random checkpoint's pictures show noise. This
model is small (4 layers, 4 heads, n_embd 128, GPT-2's full vocabulary of 50257 tokens, a context of
128) and sees a few million tokens at most, so it learns English only roughly: frequent words, grammar
that holds for a few tokens, the vocabulary of its text. That is enough for the logit lens and the
attention maps to show structure.

The text: the prose of the Node.js API documentation (Debian's nodejs package, /usr/share/doc/nodejs/api/*.md;
MIT licence, "Copyright Node.js contributors"), code blocks, HTML comments, link lists and the marks of
inline code and emphasis removed, hard-wrapped lines joined into paragraphs. Any other plain-text files can be given instead.

Most of the 50257 tokens never occur in the text, and the output layer over all of them would be ~90%
of the work. So the tokens that never occur get the embedding 0 (tied: their logit is then 0 whatever the
context), and the loss is the full-vocabulary cross-entropy written with them as one term:
log p(y) = l_y - log(sum over occurring tokens v of exp(l_v) + n_absent * exp(0)). The saved model
computes exactly the distribution that was trained, at a third of the cost.

Seeded, one thread, a fixed time budget: the checkpoint is saved with save_pretrained (safetensors)
into weights/tiny-trained/, which git ignores. It is not a fixture and no test depends on it.
"""

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from minigpt.tokenizer import Tokenizer  # noqa: E402

DEFAULT_TEXTS = sorted(Path("/usr/share/doc/nodejs/api").glob("*.md"))


def prose(markdown: str) -> str:
    """The paragraphs of a Markdown file as plain lines: no fenced code, HTML comments, tables, link lists."""
    markdown = re.sub(r"```.*?```", "", markdown, flags=re.S)
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    paragraphs = []
    for block in re.split(r"\n\s*\n", markdown):
        lines = [line.strip() for line in block.splitlines()]
        lines = [line for line in lines if line and not line.startswith(("|", "[", ">", "* [", "<"))]
        text = " ".join(line.lstrip("#* ").strip() for line in lines)
        text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)  # [text][ref] -> text
        text = text.replace("`", "")  # `code` -> code: inline-code marks would be most of what it learns
        text = re.sub(r"(?<!\w)_([^_]+)_(?!\w)", r"\1", text)  # _emphasis_ -> emphasis
        if len(text.split()) >= 4:
            paragraphs.append(text)
    return "\n\n".join(paragraphs)


def corpus(paths, tok: Tokenizer) -> np.ndarray:
    """Every file's prose as token ids, files separated by <|endoftext|>."""
    ids = []
    for path in paths:
        ids += tok.encode(prose(Path(path).read_text(encoding="utf-8", errors="replace"))) + [tok.eot]
    return np.array(ids, dtype=np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*", default=DEFAULT_TEXTS, help="text or Markdown files (default: Node.js API docs)")
    parser.add_argument("--out", default=str(ROOT / "weights" / "tiny-trained"))
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    tok = Tokenizer()
    ids = corpus(args.texts, tok)
    split = int(len(ids) * 0.98)
    train, valid = ids[:split], ids[split:]
    print(f"{len(args.texts)} files, {len(ids):,} tokens ({len(valid):,} held out)", flush=True)

    config = GPT2Config(vocab_size=tok.n_vocab, n_positions=args.context, n_embd=128, n_layer=4, n_head=4,
                        bos_token_id=tok.eot, eos_token_id=tok.eot, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    present = torch.from_numpy(np.unique(ids))  # [K] the tokens that occur
    absent = torch.ones(tok.n_vocab, dtype=torch.bool)
    absent[present] = False
    with torch.no_grad():
        model.transformer.wte.weight[absent] = 0.0  # logit 0 for every absent token, in training and after
    to_present = torch.full((tok.n_vocab,), -1, dtype=torch.long)
    to_present[present] = torch.arange(len(present))
    log_absent = math.log(int(absent.sum()))
    print(f"{len(present):,} distinct tokens occur; {int(absent.sum()):,} never do", flush=True)

    def loss_of(x):
        """Mean -log p(x[t+1] | x[..t]) over the full vocabulary, with the absent tokens' logits (0) as one term."""
        hidden = model.transformer(x).last_hidden_state[:, :-1]  # [B, T-1, C], after ln_f
        logits = hidden @ model.transformer.wte.weight[present].T  # [B, T-1, K]
        zeros = torch.full(logits.shape[:-1] + (1,), log_absent)  # log(n_absent * exp(0))
        normaliser = torch.logsumexp(torch.cat([logits, zeros], dim=-1), dim=-1)  # [B, T-1]
        target = logits.gather(-1, to_present[x[:, 1:]].unsqueeze(-1)).squeeze(-1)
        return (normaliser - target).mean()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)

    def batch(data):
        starts = rng.integers(0, len(data) - args.context, size=args.batch)
        x = np.stack([data[s : s + args.context] for s in starts])
        return torch.from_numpy(x)

    with torch.no_grad():  # the loss above is transformers' full-vocabulary loss, only cheaper
        x = batch(valid)
        ours, theirs = loss_of(x).item(), model(x, labels=x).loss.item()
        assert abs(ours - theirs) < 1e-4, f"loss_of gives {ours}, transformers {theirs}"

    budget, start, step = args.minutes * 60, time.time(), 0
    warmup = 50
    while (elapsed := time.time() - start) < budget:
        progress = elapsed / budget  # the learning rate decays with time, as the budget is in minutes
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_of(batch(train))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step:5d}  {elapsed:6.0f} s  lr {lr:.2e}  loss {loss.item():.3f}", flush=True)
        step += 1

    model.eval()
    losses = []
    with torch.no_grad():
        for _ in range(8):
            x = batch(valid)
            losses.append(model(x, labels=x).loss.item())  # transformers' own loss: checks the trick above
    print(f"{step} steps; held-out loss {np.mean(losses):.3f} (perplexity {math.exp(np.mean(losses)):.1f})", flush=True)
    model.save_pretrained(args.out, safe_serialization=True)
    (Path(args.out) / "SOURCE.txt").write_text(
        "Trained by scripts/train_tiny.py on the prose of the Node.js API documentation "
        "(MIT licence, Copyright Node.js contributors).\n", encoding="utf-8")
    print(f"saved to {args.out}", flush=True)


if __name__ == "__main__":
    main()
