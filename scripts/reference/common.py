"""What the fixture makers share: where the fixtures live, a fixture checkpoint as transformers' GPT2LMHeadModel,
left padding as torch tensors, the sharpening that makes a random GPT-2 look trained, minigpt's option names as
transformers' generate() keywords, GPT-2's tokenizer, and how a maker starts and writes its files.

Needs torch, transformers, safetensors, NumPy and tiktoken; imports nothing of minigpt, so that the makers that
need transformers 4.46 (beam --diverse, contrastive, dola) run in an environment of their own.
"""

import argparse
import json
import re
from pathlib import Path

import tiktoken
import torch
import transformers
from safetensors.numpy import load_file
from tiktoken.load import load_tiktoken_bpe
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[2]  # the checkout
FIXTURES = ROOT / "tests" / "fixtures"
STRATEGIES = FIXTURES / "strategies"  # the decoding strategies' records
EOT = 50256  # GPT-2's <|endoftext|>
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def command_line(doc: str, names=()) -> argparse.Namespace:
    """A maker's command line: --help shows its docstring; with `names`, the fixtures it may remake (default:
    all of them)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if names:
        # no choices=: before Python 3.12, argparse checks an empty nargs="*" list against them and refuses it
        parser.add_argument("names", nargs="*", metavar="NAME",
                            help=f"the fixtures to remake, of: {', '.join(names)} (default: all)")
    args = parser.parse_args()
    unknown = [n for n in getattr(args, "names", []) if n not in names]
    if unknown:
        parser.error(f"no fixture named {', '.join(unknown)}; choose among {', '.join(names)}.")
    return args


def start_torch(seed: int = 0, threads: int | None = 1):
    """How a maker starts: torch seeded, on `threads` threads (None: torch's default, for the makers whose records
    were made so) and transformers quiet (no warning about options that go unused, no progress bar)."""
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# ----------------------------------------------------------------------------- the model


def reference_model(folder) -> GPT2LMHeadModel:
    """tests/fixtures/<name> as a float32 GPT2LMHeadModel, from either key layout: the hub's (no prefix,
    with causal-mask buffers, which are skipped) or save_pretrained's ("transformer."); lm_head tied to wte."""
    folder = Path(folder)
    config = GPT2Config.from_json_file(str(folder / "config.json"))
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config).eval()
    state = {}
    for key, value in load_file(str(folder / "model.safetensors")).items():
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        key = key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key
        state[key] = torch.from_numpy(value).float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise RuntimeError(f"{folder}: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    return model


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> ids [B, T] and attention_mask [B, T], padded on the left (as minigpt.core.model.left_pad)."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, T - len(prompt) :] = torch.tensor(prompt)
        mask[row, T - len(prompt) :] = 1
    return ids, mask


def cut_after(tokens: list[int], eos) -> list[int]:
    """New tokens up to and including the first end-of-text, as minigpt returns them (what follows is padding)."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


# ----------------------------------------------------------------------------- sharpening
# Random GPT-2 weights give nearly flat next-token distributions: argmax ties, and bugs that barely move the
# logits. Sharpening makes a model more like a trained one: random biases and layer-norm parameters (so that a
# dropped bias shows), larger attention and MLP weights (so that softmax and GELU work outside their near-linear
# range), larger block outputs (so that the prediction depends on the context, not only on the last token), and
# a final layer norm scaled so that the top token gets TARGET_TOP_PROB at the median position.

ATTN_SCALE, FC_SCALE, PROJ_SCALE, PARAM_NOISE = 5.0, 5.0, 30.0, 0.1
TARGET_TOP_PROB = 0.5


@torch.no_grad()
def scale_weights(model: GPT2LMHeadModel):
    """Noise on every bias and layer-norm parameter (from torch's generator), attention, MLP and block-output
    weights scaled up."""
    for name, p in model.named_parameters():
        if name.endswith(".bias") or ".ln_" in name:
            p.add_(PARAM_NOISE * torch.randn_like(p))
        if name.endswith(".weight"):
            p.mul_({"c_attn": ATTN_SCALE, "c_fc": FC_SCALE, "c_proj": PROJ_SCALE}.get(name.split(".")[-2], 1.0))


@torch.no_grad()
def fit_final_norm(model: GPT2LMHeadModel, sample: torch.Tensor) -> float:
    """Scale ln_f so that the median top-1 probability over the sample's positions is TARGET_TOP_PROB; returns the
    factor. Scaling ln_f's weight and bias by s scales every logit by s: s is found by bisection."""
    logits = model(sample).logits.double()
    lo, hi = 1e-2, 1e3
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        median_top = torch.softmax(mid * logits, -1).max(-1).values.median()
        lo, hi = (mid, hi) if median_top < TARGET_TOP_PROB else (lo, mid)
    model.transformer.ln_f.weight.mul_(lo)
    model.transformer.ln_f.bias.mul_(lo)
    return lo


def sharpen(model: GPT2LMHeadModel, sample: torch.Tensor) -> float:
    """Make next-token distributions look trained (see above); returns the final layer norm's factor."""
    scale_weights(model)
    return fit_final_norm(model, sample)


# ----------------------------------------------------------------------------- options and text


def sequence_bias(logit_bias) -> list:
    """minigpt's logit_bias ({token: bias}, or [[token, bias], ...] as JSON stores it) as transformers'
    sequence_bias: a list of [[token], bias], one-token sequences."""
    return [[[int(token)], float(bias)] for token, bias in dict(logit_bias).items()]


def generate_options(options: dict) -> dict:
    """minigpt's option names -> transformers' generate() keywords (the same names, but logit_bias)."""
    kwargs = dict(options)
    if "logit_bias" in kwargs:
        kwargs["sequence_bias"] = sequence_bias(kwargs.pop("logit_bias"))
    return kwargs


def gpt2_encoding() -> tiktoken.Encoding:
    """GPT-2's tokenizer from the ranks minigpt ships (minigpt/data/gpt2.tiktoken), without the network."""
    ranks = load_tiktoken_bpe(str(ROOT / "minigpt" / "data" / "gpt2.tiktoken"))
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": EOT})


# ----------------------------------------------------------------------------- fixture files


def versions() -> dict:
    """What a record names as its makers."""
    return {"transformers": transformers.__version__, "torch": torch.__version__}


def write_json(path: Path, record: dict, indent: int | None = 1, flat_lists=False) -> Path:
    """Write a record as JSON (UTF-8, a newline at the end), its folder made if need be; flat_lists: each list of
    numbers on one line, however deep it sits. Returns the path from the checkout's root, for the maker to print."""
    text = json.dumps(record, indent=indent, ensure_ascii=False)
    if flat_lists:
        text = re.sub(r"\[[^\[\]{}]*\]", lambda m: json.dumps(json.loads(m.group(0))), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path.relative_to(ROOT)

