"""Checkpoint -> model: read GPT-2's weights from safetensors, exactly as the Hugging Face hub ships them.

The file's header is checked by the format's rules first (header.py). The config is then checked against
the header's names, shapes and dtypes before a byte of data is read (layout.py); the tensors are then mapped or
read straight from the file (read_tensors), and every weight must be finite: that check reads every page once,
as the forward pass would (~0.1 s for gpt2). Nothing is ever unpickled: a folder that holds only
pytorch_model.bin is refused.

What this module is not: where the files are found or downloaded (places.py, hub.py).
"""

import math
import mmap
from pathlib import Path

import numpy as np

from ..core.config import ConfigError, GPTConfig
from ..core.model import GPT2, nest
from . import hub
from .header import DAMAGED, CheckpointError, read_header, short
from .layout import DTYPES, check_layout, config_from_shapes, weight_entries

# No trained GPT-2 weight comes near this; a larger value is a damaged byte (a flipped exponent bit), and
# would overflow float32 in the forward pass and turn the logits into inf and NaN.
MAX_WEIGHT = 1e5
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # PyTorch's pickle files: never opened
NEVER_UNPICKLED = "never unpickles, because unpickling can run arbitrary code (convert it with the safetensors library)"


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

    Names and repo ids are found where places.py looks (the Hugging Face cache last), or downloaded (hub.py).
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
        config = config_from_shapes(shapes, source=str(weights), n_head=n_head)
    names = check_layout(entries, config, weights, config_file)
    tensors = read_tensors(weights, entries, data_start, names)
    check_values(tensors, weights)
    tensors.pop("lm_head.weight", None)
    return GPT2(config, nest(tensors))  # the output layer is tied to wte (lm_head.weight, if stored, was checked equal)


__all__ = ["load", "read_safetensors", "CheckpointError", "ConfigError"]
