"""What a GPT-2 checkpoint holds: every tensor by its hub name and the shape the config implies, checked before
a byte of data is read; and the config of a bare .safetensors file, inferred from its shapes.

Two key layouts are found in the wild, and both load:
- the hub's files: `wte.weight`, `h.0.attn.c_attn.weight`, ... plus the buffers `h.N.attn.bias`
  (the causal mask) and `h.N.attn.masked_bias`, which are not weights and are skipped;
- transformers' save_pretrained: the same names under `transformer.`, maybe with `lm_head.weight`,
  which GPT-2 ties to `wte.weight`.

What this module is not: reading the tensors (checkpoint.py) or the header's own format (header.py).
"""

import re
import warnings

from ..core.checks import plural
from ..core.config import ConfigError, GPTConfig
from .header import DAMAGED, CheckpointError, short

# Stored dtype -> how NumPy reads its bytes. bfloat16 is the top half of a float32, read as uint16.
DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}
BUFFERS = (".attn.bias", ".attn.masked_bias")  # constant masks saved by older transformers, not weights
# n_embd -> n_head of the released checkpoints (Radford et al. 2019; distilgpt2 shares gpt2's width).
KNOWN_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}

# A transformer block's tensors are named h.<i>.<...>, i a plain decimal number ("h.07." is not one).
BLOCK_NAME = re.compile(r"h\.(0|[1-9][0-9]*)\.", re.ASCII)


def block_indices(names) -> set[int]:
    """The block numbers i of the tensors named h.<i>.<...>: {0, 1} for a two-block checkpoint."""
    return {int(match[1]) for name in names if (match := BLOCK_NAME.match(name))}




def expected_shapes(config: GPTConfig) -> dict[str, tuple]:
    """Every GPT-2 tensor, by its hub name, with the shape the config implies (weights are [in, out])."""
    C, M = config.n_embd, config.d_mlp
    shapes = {"wte.weight": (config.vocab_size, C), "wpe.weight": (config.n_positions, C)}
    for i in range(config.n_layer):
        shapes |= {
            f"h.{i}.ln_1.weight": (C,), f"h.{i}.ln_1.bias": (C,),
            f"h.{i}.attn.c_attn.weight": (C, 3 * C), f"h.{i}.attn.c_attn.bias": (3 * C,),
            f"h.{i}.attn.c_proj.weight": (C, C), f"h.{i}.attn.c_proj.bias": (C,),
            f"h.{i}.ln_2.weight": (C,), f"h.{i}.ln_2.bias": (C,),
            f"h.{i}.mlp.c_fc.weight": (C, M), f"h.{i}.mlp.c_fc.bias": (M,),
            f"h.{i}.mlp.c_proj.weight": (M, C), f"h.{i}.mlp.c_proj.bias": (C,),
        }
    return shapes | {"ln_f.weight": (C,), "ln_f.bias": (C,)}


def hub_name(key: str) -> str:
    """save_pretrained's `transformer.h.0.ln_1.weight` -> the hub's `h.0.ln_1.weight`."""
    return key.removeprefix("transformer.")


def weight_entries(header: dict, source) -> dict[str, dict]:
    """The header's entries under their hub names, without the buffers."""
    entries = {}
    for key, info in header.items():
        name = hub_name(key)
        if name.endswith(BUFFERS):
            continue
        if name in entries:
            raise CheckpointError(f"{source} holds tensor {short(name)} twice, with and without the "
                                  "'transformer.' prefix; keep one of the two.")
        entries[name] = info
    return entries


def shape_params(name: str) -> str:
    """The config parameters a tensor's shape depends on."""
    if name in ("wte.weight", "lm_head.weight"):
        return "vocab_size and n_embd"
    if name == "wpe.weight":
        return "n_positions and n_embd"
    return "n_embd and n_inner" if ".mlp." in name else "n_embd"


def check_layout(entries: dict, config: GPTConfig, source, config_file=None) -> list[str]:
    """Before any data is read: every tensor GPT-2 needs is present, stored as a float, of the shape the
    config implies, and no block lies beyond n_layer. Returns the names to read; the tensors GPT-2 does
    not use are ignored with a warning."""
    said = f"{config_file} says" if config_file else "its tensor names imply"
    indices = block_indices(entries)
    blocks = max(indices, default=-1) + 1
    if blocks > config.n_layer:  # ignoring them would run a truncated model without a word
        raise CheckpointError(f"{source} holds tensors of {blocks} transformer blocks (h.0 to h.{blocks - 1}), "
                              f"but {said} n_layer={config.n_layer}; set n_layer to {blocks} in config.json.")
    if len(indices) < config.n_layer:  # a block below n_layer has no tensor at all
        i = next(i for i in range(config.n_layer) if i not in indices)  # found within len(indices) + 1 steps
        fix = ("correct n_layer in config.json or download the complete checkpoint" if config_file
               else f"the file is incomplete, so {DAMAGED}")
        raise CheckpointError(f"{source} lacks tensor 'h.{i}.ln_1.weight' and all of block h.{i}: "
                              f"{said} n_layer={config.n_layer}, but the file holds tensors of only "
                              f"{plural(len(indices), 'block')}; {fix}.")
    expected = expected_shapes(config)  # n_layer <= len(indices) here, so this is no bigger than the header
    missing = [name for name in expected if name not in entries]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(f"{source} lacks tensor {missing[0]!r}{more}; "
                              "it is not a complete GPT-2 checkpoint, so download it again.")
    if "lm_head.weight" in entries:
        expected["lm_head.weight"] = expected["wte.weight"]  # tied: read to check it equals wte.weight
    for name, shape in expected.items():
        info = entries[name]
        if name == "lm_head.weight" and tuple(info["shape"]) != shape:
            raise CheckpointError(f"{source}: tensor 'lm_head.weight' has shape {short(info['shape'])}, "
                                  f"but GPT-2 ties it to wte.weight, of shape {list(shape)}; "
                                  "use a checkpoint whose lm_head.weight is wte.weight, or has none.")
        if tuple(info["shape"]) != shape:
            fix = (f"make {shape_params(name)} in config.json match the weights, "
                   "or use the config.json that came with them" if config_file
                   else f"the file's tensors disagree with each other, so {DAMAGED}")
            raise CheckpointError(f"{source}: tensor {name!r} has shape {short(info['shape'])}, "
                                  f"but the config implies {list(shape)}; {fix}.")
        if info["dtype"] not in DTYPES:
            raise CheckpointError(f"{source}: tensor {name!r} is stored as {info['dtype']}, but GPT-2's weights "
                                  "are floating point; minigpt reads F32, F16 or BF16, "
                                  "so convert the checkpoint to one of those.")
    extra = sorted(set(entries) - set(expected))
    if extra:
        names = ", ".join(short(name) for name in extra[:5])
        warnings.warn(f"{source}: ignoring {plural(len(extra), 'tensor')} that GPT-2 does not use: {names}",
                      stacklevel=3)
    return list(expected)


def config_from_shapes(shapes: dict[str, tuple], source="the checkpoint", n_head=None) -> GPTConfig:
    """Infer the config of a bare .safetensors file from its tensor shapes (canonical key names).

    Every number is visible in some shape except n_head, which is taken from the released sizes.
    """
    for key, what in (("wte.weight", "[vocab_size, n_embd]"), ("wpe.weight", "[n_positions, n_embd]"),
                      ("h.0.mlp.c_fc.weight", "[n_embd, n_inner]")):
        if key not in shapes:
            raise ConfigError(f"{source} has no tensor {key!r}, so its GPT-2 config cannot be inferred; "
                              "put a config.json beside it.")
        if len(shapes[key]) != 2:
            raise ConfigError(f"{source}: tensor {key!r} has shape {list(shapes[key])}, but GPT-2's is 2-D "
                              f"{what}, so it is not a GPT-2 checkpoint; download it again.")
    vocab_size, n_embd = shapes["wte.weight"]
    n_layer = 1 + max(block_indices(shapes))  # a block missing below the highest is named by the loader
    if n_head is None:
        if n_embd not in KNOWN_HEADS:
            raise ConfigError(f"{source} has n_embd={n_embd}, which is not a released GPT-2 size, "
                              "so n_head is unknown; put a config.json with n_head beside it.")
        n_head = KNOWN_HEADS[n_embd]
    d_mlp = shapes["h.0.mlp.c_fc.weight"][1]
    try:
        return GPTConfig(
            vocab_size=vocab_size,
            n_positions=shapes["wpe.weight"][0],
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            n_inner=None if d_mlp == 4 * n_embd else d_mlp,
        )
    except ConfigError as e:
        raise ConfigError(f"{source}: the config inferred from its tensor shapes is invalid "
                          f"({str(e).rstrip('.')}); put a config.json beside it.") from None
