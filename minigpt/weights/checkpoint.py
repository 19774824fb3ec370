"""Checkpoint -> model: read GPT-2's weights from safetensors, exactly as the Hugging Face hub ships them.

The file's header is checked by the format's rules first (safetensors_header.py). The config is then checked
against the header's names, shapes and dtypes before a byte of data is read; the tensors are then mapped or
read straight from the file (read_tensors), and every weight must be finite: that check reads every page once,
as the forward pass would (~0.1 s for gpt2). Nothing is ever unpickled: a folder that holds only
pytorch_model.bin is refused.

Two key layouts are found in the wild, and both load:
- the hub's files: `wte.weight`, `h.0.attn.c_attn.weight`, ... plus the buffers `h.N.attn.bias`
  (the causal mask) and `h.N.attn.masked_bias`, which are not weights and are skipped;
- transformers' save_pretrained: the same names under `transformer.`, maybe with `lm_head.weight`,
  which GPT-2 ties to `wte.weight`.
"""

import math
import mmap
import warnings
from pathlib import Path

import numpy as np

from . import hub
from ..core.checks import plural
from ..core.config import ConfigError, GPTConfig, block_indices
from ..core.model import GPT2
from .header import DAMAGED, CheckpointError, read_header, short


# Stored dtype -> how NumPy reads its bytes. bfloat16 is the top half of a float32, read as uint16.
DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}
# No trained GPT-2 weight comes near this; a larger value is a damaged byte (a flipped exponent bit), and
# would overflow float32 in the forward pass and turn the logits into inf and NaN.
MAX_WEIGHT = 1e5
BUFFERS = (".attn.bias", ".attn.masked_bias")  # constant masks saved by older transformers, not weights
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # PyTorch's pickle files: never opened
NEVER_UNPICKLED = "never unpickles, because unpickling can run arbitrary code (convert it with the safetensors library)"


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


COLUMN_MAJOR = ("wte.weight", ".mlp.c_proj.weight")  # read_tensors keeps these transposed in memory
NATIVE_F32 = np.dtype("<f4") == np.dtype(np.float32)  # a little-endian machine maps F32 files as they are


def read_tensors(path: Path, entries: dict, data_start: int, names) -> dict[str, np.ndarray]:
    """The named tensors (F32, F16 or BF16, already checked) as float32 arrays.

    F32 tensors in the file's layout are read-only views of a memory map of the file: no copy, pages read
    when first used, shared between processes through the page cache. (A file replaced after loading, as a
    download renames a new one over the old, leaves the model as it was.) Copied straight from the file into
    their own arrays: F16 and BF16 tensors, widened; tensors not 4-byte aligned; and the matrices kept
    column-major, as the transposed view of a contiguous array, because a one-row product (decoding a token)
    streams a matrix fastest along its long axis: wte.weight [V, C], whose transpose is the output layer
    (model.GPT2), and each MLP's c_proj [M, C] (~1.3x faster for one row, ~1.1x slower for four): 54% of
    gpt2. They are transposed in blocks of rows, so two copies of a matrix never coexist."""
    tensors = {}
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # the arrays keep it open after f closes
        for name in names:
            info = entries[name]
            start = data_start + info["data_offsets"][0]
            shape, in_place = tuple(info["shape"]), info["dtype"] == "F32" and NATIVE_F32 and start % 4 == 0
            if name.endswith(COLUMN_MAJOR):
                f.seek(start)
                tensors[name] = read_transposed(f, info, path).T
            elif in_place:
                flat = np.frombuffer(mapped, dtype=np.float32, count=math.prod(shape), offset=start)
                tensors[name] = flat.reshape(shape)
            else:
                f.seek(start)
                tensors[name] = read_array(f, info["dtype"], shape, path)
    return tensors


def read_array(f, dtype: str, shape: tuple, path) -> np.ndarray:
    """The next tensor in file f as a float32 array of `shape` (F32 read in place; F16/BF16 widened)."""
    stored = np.empty(shape, dtype=DTYPES[dtype])
    if f.readinto(memoryview(stored).cast("B")) != stored.nbytes:
        raise CheckpointError(f"{path} ended while reading its tensors (the file is truncated); {DAMAGED}.")
    if dtype == "BF16":  # a bfloat16 is the top 16 bits of a float32
        return (stored.astype(np.uint32) << 16).view(np.float32)
    return stored.astype(np.float32, copy=False)  # no copy for F32 on a little-endian machine


def read_transposed(f, info: dict, path, rows: int = 64) -> np.ndarray:
    """The next matrix [R, C] in file f as a contiguous float32 [C, R], read `rows` rows at a time: a block
    that stays in the cache while it is written out transposed (64 rows: 4x faster than 4,096)."""
    R, C = info["shape"]
    out = np.empty((C, R), dtype=np.float32)
    for start in range(0, R, rows):
        n = min(rows, R - start)
        out[:, start : start + n] = read_array(f, info["dtype"], (n, C), path).T
    return out


def read_safetensors(path) -> dict[str, np.ndarray]:
    """All weight tensors of a .safetensors file as float32 arrays, under their hub names."""
    path = Path(path)
    header, data_start = read_header(path)
    entries = weight_entries(header, path)
    for name, info in entries.items():
        if info["dtype"] not in DTYPES:
            raise CheckpointError(f"{path}: tensor {short(name)} is stored as {info['dtype']}; minigpt reads "
                                  "weights stored as F32, F16 or BF16, so convert it to one of those.")
    return read_tensors(path, entries, data_start, entries)


# -- the checkpoint against its config --------------------------------------------------------------


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


def check_values(tensors: dict, source):
    """Every weight finite and of a size a trained network can have; lm_head, if stored, equal to wte."""
    for name, tensor in tensors.items():
        low, high = tensor.min(), tensor.max()  # NaN propagates through both
        if not (np.isfinite(low) and np.isfinite(high)):
            raise CheckpointError(f"{source}: tensor {name!r} holds NaN or infinite values, "
                                  f"so the file is damaged; {DAMAGED}.")
        if max(-low, high) > MAX_WEIGHT:
            value = high if high > -low else low
            raise CheckpointError(f"{source}: tensor {name!r} holds the value {value:.3g}, far beyond any trained "
                                  f"GPT-2 weight (limit {MAX_WEIGHT:g}), so the file is damaged; {DAMAGED}.")
    lm_head = tensors.get("lm_head.weight")
    if lm_head is not None and not np.array_equal(lm_head, tensors["wte.weight"]):
        raise CheckpointError(f"{source}: lm_head.weight differs from wte.weight, but GPT-2 ties its output layer "
                              "to its token embeddings; use a checkpoint whose lm_head.weight is wte.weight, "
                              "or has none.")


def nest(flat: dict) -> dict:
    """{"h.0.attn.c_attn.weight": w} -> {"h": [{"attn": {"c_attn": {"weight": w}}}]}: parameters that
    mirror the checkpoint, so that `block(x, **h[0])` reads like the model."""
    tree = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    tree["h"] = [tree["h"][str(i)] for i in range(len(tree["h"]))]
    return tree


# -- where the weights are --------------------------------------------------------------------------


def find_weights(folder: Path) -> Path:
    path = folder / "model.safetensors"
    if path.is_file():
        return path
    shards = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLED) if folder.is_dir() else []
    if pickled and not shards:
        raise CheckpointError(f"{folder} holds only {pickled[0]}, a pickled PyTorch file; "
                              f"minigpt reads only model.safetensors and {NEVER_UNPICKLED}.")
    if len(shards) == 1:
        return shards[0]
    if shards:
        raise CheckpointError(f"{folder} holds {len(shards)} .safetensors files; minigpt reads one file, "
                              "model.safetensors, so merge them into it.")
    raise CheckpointError(f"{folder} holds no model.safetensors; put GPT-2's model.safetensors and config.json "
                          "there, or pass a model name such as 'gpt2'.")


def check_weights_file(path: Path) -> Path:
    """A path given as the weights themselves: a regular file, and not one minigpt must never open."""
    if path.suffix in PICKLED:
        raise CheckpointError(f"{path} is a pickled PyTorch file; "
                              f"minigpt reads only safetensors and {NEVER_UNPICKLED}.")
    if path.suffix == ".json":
        raise CheckpointError(f"{path} is a JSON file, not weights; "
                              "pass the folder that holds it and model.safetensors.")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file; pass a .safetensors file "
                              "or a folder holding config.json and model.safetensors.")
    return path


def load(name_or_path="gpt2", n_head: int | None = None, report=None) -> GPT2:
    """A GPT-2 model from a name (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, or tiny, which ships with
    minigpt), a hub repo id, a folder holding config.json + model.safetensors, or a single .safetensors file.

    Names and repo ids are found where folders.py looks (the Hugging Face cache last), or downloaded (hub.py).
    A bare .safetensors file gets its config from the tensor shapes, and n_head from the released sizes unless given.
    Raises FileNotFoundError (hub.DownloadError included) when the files are not there, CheckpointError
    or ConfigError (both ValueErrors) when they are not a GPT-2 checkpoint minigpt can run."""
    path = hub.resolve(name_or_path, report)
    if path.is_dir():
        weights = find_weights(path)
        config_file = path / "config.json" if (path / "config.json").exists() else None
    else:
        weights, config_file = check_weights_file(path), None
    header, data_start = read_header(weights)
    entries = weight_entries(header, weights)
    if config_file is not None:
        config = GPTConfig.from_json(config_file)
    else:
        shapes = {name: tuple(info["shape"]) for name, info in entries.items()}
        config = GPTConfig.from_shapes(shapes, source=str(weights), n_head=n_head)
    names = check_layout(entries, config, weights, config_file)
    tensors = read_tensors(weights, entries, data_start, names)
    check_values(tensors, weights)
    tensors.pop("lm_head.weight", None)
    return GPT2(config, nest(tensors))  # the output layer is tied to wte (lm_head.weight, if stored, was checked equal)


__all__ = ["load", "read_safetensors", "CheckpointError", "ConfigError"]
