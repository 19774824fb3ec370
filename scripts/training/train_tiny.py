"""Train the tiny GPT-2 that ships in minigpt/data/tiny/, for learners without the real weights.

    pip install -e '.[reference]'                 # torch + transformers, for training only
    python -m scripts.training.train_tiny         # about 20-40 minutes on 2 CPU threads -> minigpt/data/tiny/
    minigpt generate "The stream" --model tiny

The model: GPT-2's architecture and GPT-2's full tokenizer (50257 tokens), but small: 4 layers, 4 heads,
n_embd 128, a context of 256 tokens; stored in float16 (14.5 MB; minigpt reads it as float32).

The text: Python's own documentation, taken from the Python installation that runs this script, so any
fresh machine has it, offline (scripts/training/tiny_corpus.py builds it): the Python Language Reference's topics in
pydoc_data/topics.py and the docstrings of the standard library's modules, classes and functions, read
with ast from their .py files. Both are part of CPython, under the Python Software Foundation License
(PSF-2.0), Copyright (c) 2001 Python Software Foundation. Only prose paragraphs are kept; every 20th
document is held out. Other Python versions ship other text, so the model's README records the Python
version and the SHA-256 of the text it learned from, and the held-out perplexity as minigpt computes it.

Most of the 50257 tokens never occur in the text (39,702 of them in Python 3.11's). Such a token is never a
target and never an input, so its row of the embedding (tied: it is also the output layer's row) gets one
gradient only, through the softmax's normaliser: p(token) times the hidden state, which lowers its logit in
every context. Trained over the full vocabulary, that is how a GPT-2 gives the tokens its text lacks a very low
probability. All those rows start equal (at 0), so they get the same gradient at every step and stay equal:
the loss computes their one logit l_u once and counts it n_unseen times,
log p(y) = l_y - log(sum over occurring tokens v of exp(l_v) + n_unseen * exp(l_u)),
and a hook on the embedding's gradient gives each unseen row its equal share of what that one row received.
That is transformers' full-vocabulary loss and its gradient, up to float32's rounding (checked below before
training, and by tests/scripts/test_train_tiny.py against a few steps of training the full output layer), at a
fraction of its cost. The saved model gives every unseen token the same embedding, one that training pushed down.

(An earlier tiny kept those rows at 0, so every unseen token had the logit 0 in every context: 2% of the
probability at T = 1 and 30% at T = 1.5 on "If the file is not found,", enough to turn a lesson on temperature
upside down.)

Reproducible: seeded (torch, NumPy), a fixed number of steps rather than a time budget, a fixed number of
threads (2) and torch's deterministic algorithms; the same Python, torch and CPU give the same weights.
"""

import argparse
import hashlib
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

import minigpt
from minigpt.core.config import GPTConfig
from minigpt.core.tokenizer import Tokenizer
from minigpt.weights.layout import expected_shapes

from . import tiny_corpus

ROOT = Path(__file__).resolve().parents[2]  # the checkout

SHAPE = {"n_embd": 128, "n_layer": 4, "n_head": 4}
SAMPLE_PROMPT = "The stream"


def arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "minigpt" / "data" / "tiny"), help="default minigpt/data/tiny/")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2, help="torch's threads: fixed, for identical sums")
    return p.parse_args(argv)


def make_deterministic(threads: int):
    """The same sums in the same order on every run: fixed threads, deterministic algorithms, seed 0."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


class UnseenSharedLoss:
    """transformers' full-vocabulary loss, with the rows of the tokens the text never contains computed once."""

    def __init__(self, model, train_ids: np.ndarray, vocab: int):
        self.model = model
        self.present = torch.from_numpy(np.unique(train_ids))  # [K] the tokens that occur
        unseen = torch.ones(vocab, dtype=torch.bool)
        unseen[self.present] = False
        self.unseen = torch.nonzero(unseen).squeeze(1)  # [U] the tokens that never occur
        self.first = int(self.unseen[0])  # the row that stands for all of them in the loss
        self.n_unseen = len(self.unseen)
        self.to_present = torch.full((vocab,), -1, dtype=torch.long)
        self.to_present[self.present] = torch.arange(len(self.present))
        wte = model.transformer.wte.weight
        with torch.no_grad():
            wte[self.unseen] = 0.0  # one start for all of them: then they get the same update at every step
        wte.register_hook(self.shared_out)

    def shared_out(self, grad):
        """Each unseen row's gradient in the full-vocabulary loss: the first one's, which the loss counted
        n_unseen times over, shared out equally (they all have the same logit, so the same gradient)."""
        grad = grad.clone()
        grad[self.unseen] = grad[self.first] / self.n_unseen
        return grad

    def __call__(self, x):
        """Mean -log p(x[t+1] | x[..t]) over the full vocabulary, the unseen tokens' equal logits as one term."""
        wte = self.model.transformer.wte.weight
        hidden = self.model.transformer(x).last_hidden_state[:, :-1]  # [B, T-1, C], after ln_f
        logits = hidden @ wte[self.present].T  # [B, T-1, K]
        unseen = hidden @ wte[self.first]  # [B, T-1]: the logit of every unseen token
        normaliser = torch.logsumexp(torch.cat([logits, (unseen + math.log(self.n_unseen)).unsqueeze(-1)], dim=-1),
                                     dim=-1)  # [B, T-1]: log(sum over occurring exp(l_v) + n_unseen * exp(l_unseen))
        index = self.to_present[x[:, 1:]]  # [B, T-1], -1 for a token absent from the training text
        target = logits.gather(-1, index.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        target = torch.where(index >= 0, target, unseen)  # a held-out text may hold an unseen token
        return (normaliser - target).mean()


def check_loss(model, loss_of, x):
    """The loss above is transformers' full-vocabulary loss, only cheaper: on held-out windows (which hold unseen
    tokens), before training and after."""
    model.eval()
    with torch.no_grad():
        ours, theirs = loss_of(x).item(), model(x, labels=x).loss.item()
    assert abs(ours - theirs) < 1e-4, f"UnseenSharedLoss gives {ours}, transformers {theirs}"
    model.train()


def learning_rate(args, step: int) -> float:
    """Linear warm-up over 100 steps, then a cosine decay to a tenth."""
    warmup = min(1.0, (step + 1) / 100)
    return args.lr * warmup * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))


def windows(ids: np.ndarray, context: int) -> torch.Tensor:
    """The ids cut into consecutive windows of `context` tokens (the rest dropped): [N, context]."""
    n = len(ids) // context
    return torch.from_numpy(ids[: n * context].reshape(n, context))


def train(args, model, loss_of, train_ids, held_ids):
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    held = windows(held_ids, args.context)[:16]
    start = time.time()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        starts = rng.integers(0, len(train_ids) - args.context, size=args.batch)
        loss = loss_of(torch.from_numpy(np.stack([train_ids[s : s + args.context] for s in starts])))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            model.eval()
            with torch.no_grad():
                held_loss = loss_of(held).item()
            model.train()
            print(f"step {step:5d}  {time.time() - start:6.0f} s  lr {learning_rate(args, step):.2e}  "
                  f"loss {loss.item():.3f}  held-out {held_loss:.3f}", flush=True)
    return time.time() - start


def save(model, out: Path, context: int):
    """config.json and model.safetensors (float16, the hub's tensor names, no lm_head: it is wte)."""
    out.mkdir(parents=True, exist_ok=True)
    config = GPTConfig(vocab_size=model.config.vocab_size, n_positions=context, **SHAPE)
    names = expected_shapes(config)
    tensors = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}
    save_file({name: tensors[name].detach().to(torch.float16).contiguous() for name in names},
              out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
        "n_positions": context, "n_ctx": context, **SHAPE, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "bos_token_id": 50256, "eos_token_id": 50256, "torch_dtype": "float16",
    }, indent=2) + "\n", encoding="utf-8")


def check_against_torch(model, out: Path, ids: np.ndarray):
    """minigpt's logits from the saved float16 file equal torch's from the same float16-rounded weights."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
        theirs = model(torch.from_numpy(ids[None])).logits[0].numpy()
    ours = minigpt.load(str(out))(ids)
    error = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert error < 1e-4, f"minigpt and transformers disagree on the saved model: {error:.2e}"
    return error


README = """# tiny: a small GPT-2 trained on Python's documentation

The model that `--model tiny` and `minigpt.load("tiny")` load, for when the real GPT-2 weights are not at
hand (`minigpt generate "The stream" --model tiny`), and the one that drew the pictures in minigpt's README.
It is made by `python -m scripts.training.train_tiny --steps {steps}`.

It has GPT-2's architecture and GPT-2's full tokenizer (vocabulary {vocab}), at a small size:
{n_layer} layers, {n_head} heads, n_embd {n_embd}, a context of {context} tokens: {params:,} parameters,
stored in float16 (minigpt reads them as float32). It learned English only roughly, from a few hundred
thousand tokens: frequent words, grammar that holds for a few tokens, the vocabulary of Python's docs.

## The text it learned from

Python's own documentation, from the installation that ran the training script: the Python Language
Reference's topics (`pydoc_data/topics.py`) and the docstrings of the standard library's modules, classes
and functions, read with `ast` from their `.py` files. Both are part of CPython, under the Python Software
Foundation License (PSF-2.0), Copyright (c) 2001 Python Software Foundation. Only prose paragraphs are kept
(`scripts/training/tiny_corpus.py` says which); every {every}th document is held out and never trained on.
Other Python versions ship other text:

| what | value |
| --- | --- |
| Python | {python} |
| documents (training / held out) | {n_train} / {n_held} |
| tokens (training / held out) | {train_tokens:,} / {held_tokens:,} |
| SHA-256 of the training text | {train_sha} |
| SHA-256 of the held-out text | {held_sha} |
| distinct tokens in the training text | {present:,} (the other {absent:,} share one embedding, trained) |
| held-out tokens that the training text never contains | {held_unseen:,} |
| held-out perplexity (minigpt, these float16 weights) | {perplexity:.2f} |
| probability of the {absent:,} unseen tokens together, mean over the held-out positions | {unseen_share:.2e} |

The held-out perplexity is exp(mean -log p) over the held-out tokens, scored by minigpt in consecutive
windows of {context} tokens (`tests/weights/test_tiny_model.py` recomputes it, and the unseen tokens' share, when its
Python matches the one above).

The tokens that the training text never contains are never a target, so training pushes their probability
down: all {absent:,} of them start from one embedding and get the same gradient at every step, so they end with
one embedding, whose logit is low in every context (`scripts/training/train_tiny.py` says how this trains the
full vocabulary at a fraction of its cost). A GPT-2 treats the tokens its text lacks the same way. The
{held_unseen:,} held-out tokens that the training text lacks get that low probability too, and weigh on the
perplexity.

## Training

{steps} steps of {batch} windows of {context} tokens (AdamW, learning rate {lr} with warm-up and cosine
decay, dropout {dropout}, weight decay 0.1), seeded, on {threads} CPU threads with torch's deterministic
algorithms: torch {torch}, transformers {transformers}, {minutes:.0f} minutes on {cpu}.
The same Python, torch and CPU make the same file: model.safetensors has the SHA-256 {digest}.

```
pip install -e ".[reference]" && python -m scripts.training.train_tiny --steps {steps}
```

Greedy, from "{prompt}":

```
{sample}
```
"""


def write_readme(out: Path, fields: dict):
    (out / "README.md").write_text(README.format(**fields), encoding="utf-8")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{names[0]} ({len(names)} CPUs)" if names else platform.machine()


def sample(out: Path) -> str:
    model, tok = minigpt.load(str(out)), Tokenizer()
    ids = tok.encode(SAMPLE_PROMPT)
    return SAMPLE_PROMPT + tok.decode(minigpt.generate(model, ids, max_new_tokens=40).sequences[0])


def main(argv=None):
    args = arguments(argv)
    torch.set_num_interop_threads(1)  # once per process, before any work
    make_deterministic(args.threads)
    tok, out = Tokenizer(), Path(args.out)
    train_docs, held_docs = tiny_corpus.split(tiny_corpus.documents())
    train_ids = np.array(tiny_corpus.token_ids(train_docs, tok), dtype=np.int64)
    held_ids = np.array(tiny_corpus.token_ids(held_docs, tok), dtype=np.int64)
    print(f"Python {platform.python_version()}: {len(train_ids):,} training tokens, {len(held_ids):,} held out",
          flush=True)

    config = GPT2Config(vocab_size=tok.n_vocab, n_positions=args.context, **SHAPE, bos_token_id=tok.eot,
                        eos_token_id=tok.eot, resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                        attn_pdrop=args.dropout)
    model = GPT2LMHeadModel(config)
    loss_of = UnseenSharedLoss(model, train_ids, tok.n_vocab)
    check_loss(model, loss_of, windows(held_ids, args.context)[:4])
    seconds = train(args, model, loss_of, train_ids, held_ids)
    check_loss(model, loss_of, windows(held_ids, args.context)[:4])
    model.eval()
    save(model, out, args.context)
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    error = check_against_torch(model, out, held_ids[: args.context])
    perplexity = tiny_corpus.held_out_perplexity(minigpt.load(str(out)), held_ids.tolist())
    unseen = tiny_corpus.unseen_share(minigpt.load(str(out)), held_ids.tolist(), loss_of.unseen.numpy())
    print(f"minigpt = transformers within {error:.1e}; held-out perplexity {perplexity:.2f}; the unseen tokens hold "
          f"{unseen:.2e} of the probability", flush=True)
    write_readme(out, dict(
        vocab=tok.n_vocab, **SHAPE, context=args.context, params=sum(p.numel() for p in model.parameters()),
        every=tiny_corpus.HELD_OUT_EVERY, python=platform.python_version(), n_train=len(train_docs),
        n_held=len(held_docs), train_tokens=len(train_ids), held_tokens=len(held_ids),
        train_sha=tiny_corpus.sha256(train_docs), held_sha=tiny_corpus.sha256(held_docs),
        present=len(loss_of.present), absent=loss_of.n_unseen, perplexity=perplexity, unseen_share=unseen,
        held_unseen=int(np.isin(held_ids, loss_of.unseen.numpy()).sum()), steps=args.steps,
        batch=args.batch, lr=args.lr, dropout=args.dropout, threads=args.threads, torch=torch.__version__,
        transformers=transformers.__version__, minutes=seconds / 60, cpu=cpu_name(), digest=digest,
        prompt=SAMPLE_PROMPT, sample=sample(out)))
    print(f"saved to {out} (model.safetensors SHA-256 {digest})", flush=True)


if __name__ == "__main__":
    main()
