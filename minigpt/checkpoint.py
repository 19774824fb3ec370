"""Checkpoint -> model: read GPT-2's weights from safetensors, exactly as the Hugging Face hub ships them.

A .safetensors file is 8 bytes of header length, a JSON header (each tensor's dtype, shape and byte
range) and then the raw little-endian bytes. The safetensors library checks the header (offsets in
range, sizes that match dtype x shape); NumPy then maps each tensor's bytes straight from the file.
Nothing is ever unpickled: a folder that holds only pytorch_model.bin is refused.

Two key layouts are found in the wild, and both load:
- the hub's files: `wte.weight`, `h.0.attn.c_attn.weight`, ... plus the buffers `h.N.attn.bias`
  (the causal mask) and `h.N.attn.masked_bias`, which are not weights and are skipped;
- transformers' save_pretrained: the same names under `transformer.`, maybe with `lm_head.weight`,
  which GPT-2 ties to `wte.weight`.
"""

import json
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from . import hub
from .config import ConfigError, GPTConfig
from .model import GPT2


class CheckpointError(ValueError):
    """A checkpoint file that minigpt cannot read as GPT-2 weights."""


# Stored dtype -> how NumPy reads its bytes. bfloat16 is the top half of a float32, read as uint16.
DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}
BUFFERS = (".attn.bias", ".attn.masked_bias")  # constant masks saved by older transformers, not weights


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


def read_header(path: Path) -> tuple[dict, int]:
    """The JSON header of a .safetensors file (validated by the safetensors library) and where data starts."""
    try:
        with safe_open(str(path), framework="numpy"):
            pass  # opening parses and checks the whole header
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}).") from None
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def read_safetensors(path) -> dict[str, np.ndarray]:
    """All weight tensors of a .safetensors file as float32 arrays, under their hub names."""
    path = Path(path)
    header, data_start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for key, info in header.items():
        name = hub_name(key)
        if name.endswith(BUFFERS):
            continue
        if info["dtype"] not in DTYPES:
            raise CheckpointError(f"{path}: tensor {key!r} is stored as {info['dtype']}; minigpt reads weights stored as F32, F16 or BF16.")
        begin, end = info["data_offsets"]
        raw = data[data_start + begin : data_start + end].view(DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":
            tensors[name] = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            tensors[name] = raw.astype(np.float32)  # a copy: the file may change after loading
    del data
    return tensors


def check_tensors(tensors: dict, config: GPTConfig, source) -> dict:
    """Every expected tensor present, of the expected shape and finite; extra tensors dropped with a warning."""
    expected = expected_shapes(config)
    missing = [name for name in expected if name not in tensors]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(f"{source} lacks tensor {missing[0]!r}{more}; it is not a complete GPT-2 checkpoint for its config.")
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise CheckpointError(f"{source}: tensor {name!r} has shape {list(tensors[name].shape)}, but the config implies {list(shape)}.")
        if not np.isfinite(tensors[name]).all():
            raise CheckpointError(f"{source}: tensor {name!r} holds NaN or infinite values.")
    lm_head = tensors.get("lm_head.weight")
    if lm_head is not None and not np.array_equal(lm_head, tensors["wte.weight"]):
        raise CheckpointError(f"{source}: lm_head.weight differs from wte.weight, but GPT-2 ties its output layer to its token embeddings.")
    extra = sorted(set(tensors) - set(expected) - {"lm_head.weight"})
    if extra:
        warnings.warn(f"{source}: ignoring {len(extra)} tensor(s) that GPT-2 does not use: {', '.join(extra[:5])}", stacklevel=3)
    return {name: tensors[name] for name in expected}


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


def find_weights(folder: Path) -> Path:
    path = folder / "model.safetensors"
    if path.is_file():
        return path
    pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt*")] + [p.name for p in folder.glob("*.ckpt")]
    if pickled:
        raise CheckpointError(f"{folder} holds only {pickled[0]}, a pickled PyTorch file; minigpt reads only model.safetensors and never unpickles, because unpickling can run arbitrary code (convert it with the safetensors library).")
    shards = sorted(folder.glob("*.safetensors"))
    if len(shards) == 1:
        return shards[0]
    if shards:
        raise CheckpointError(f"{folder} holds {len(shards)} .safetensors files; minigpt reads one file, model.safetensors.")
    raise CheckpointError(f"{folder} holds no model.safetensors; put GPT-2's model.safetensors and config.json there.")


def load(name_or_path="gpt2", n_head: int | None = None) -> GPT2:
    """A GPT-2 model from a name (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2), a hub repo id,
    a folder holding config.json + model.safetensors, or a single .safetensors file.

    Names and repo ids are downloaded once into weights/<name>/ (see hub.py). A bare .safetensors file
    gets its config from the tensor shapes; n_head is taken from the released sizes unless given.
    """
    path = hub.resolve(name_or_path)
    if path.is_dir():
        weights = find_weights(path)
        config_file = path / "config.json"
    else:
        weights, config_file = path, None
    tensors = read_safetensors(weights)
    if config_file is not None and config_file.is_file():
        config = GPTConfig.from_json(config_file)
    else:
        config = GPTConfig.from_shapes({k: v.shape for k, v in tensors.items()}, source=str(weights), n_head=n_head)
    params = nest(check_tensors(tensors, config, weights))
    params["lm_head"] = params["wte"]  # tied: the output layer is the token embedding matrix
    return GPT2(config, params)


__all__ = ["load", "read_safetensors", "CheckpointError", "ConfigError"]
