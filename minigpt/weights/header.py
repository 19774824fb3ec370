"""A .safetensors file's header, checked by the format's rules before a byte of data is read.

The format: 8 bytes of header length, a JSON header (each tensor's dtype, shape and byte range), then the
raw little-endian bytes. read_header checks that the header is JSON within the format's size limit, that
every entry has a dtype the format defines, a shape of non-negative integers and a byte range that holds
exactly dtype x shape, that the ranges tile the data with no gap or overlap, and that the safetensors
library reads the file too, so that no file it refuses is loaded. Each fault is named in one sentence.

What this module is not: it knows nothing of GPT-2 (checkpoint.py checks the tensors against the config
and reads them).
"""

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open

from ..core.config import json_fault, json_type


class CheckpointError(ValueError):
    """A checkpoint file that minigpt cannot read as GPT-2 weights."""


# Every dtype the safetensors format defines, with its size in bits (F4 and F6 pack several to a byte).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}
MAX_HEADER = 100_000_000  # bytes: the safetensors library's own limit on the JSON header
DAMAGED = "download or export it again"  # how to fix a file that breaks the safetensors format


def short(value, limit=60) -> str:
    """repr(value), cut to `limit` characters: a damaged header may hold a name a megabyte long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a valid safetensors file: {what}; {DAMAGED}.")


def read_header(path: Path) -> tuple[dict, int]:
    """The JSON header of a .safetensors file, every entry checked, and the byte where the data starts."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise invalid(path, f"it is {size} bytes long, shorter than the 8-byte header length "
                                    "every safetensors file starts with")
            n = int.from_bytes(f.read(8), "little")
            if n > MAX_HEADER:
                raise invalid(path, f"its first 8 bytes declare a JSON header of {n} bytes, "
                                    f"more than the format's limit of {MAX_HEADER}")
            if n > size - 8:
                raise invalid(path, f"its first 8 bytes declare a JSON header of {n} bytes, "
                                    f"but only {size - 8} bytes follow (the file is truncated)")
            text = f.read(n)
    except OSError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror or e}); check that it is a readable file.") from None
    try:
        header = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise invalid(path, f"its header is not UTF-8 JSON ({json_fault(e)})") from None
    if not isinstance(header, dict):
        raise invalid(path, f"its header is a JSON {json_type(header)}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise invalid(path, "its __metadata__ is not an object of strings")
    data_size = size - 8 - n
    for key, info in header.items():
        check_entry(path, key, info, data_size)
    end = 0  # the tensors must tile the data: each begins where the one before it ends
    for (begin, stop), key in sorted((info["data_offsets"], key) for key, info in header.items()):
        if begin != end:
            overlap = "overlap" if begin < end else "leave a gap"
            raise invalid(path, f"tensor {short(key)} begins at data byte {begin}, "
                                f"but the tensor before it ends at byte {end}, so the two {overlap}")
        end = stop
    if end != data_size:
        raise invalid(path, f"{data_size - end} bytes follow its last tensor")
    try:  # the reference reader must agree: minigpt loads no file the safetensors library refuses
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise invalid(path, f"the safetensors library refuses it ({reason})") from None
    return header, 8 + n


def check_entry(path, key: str, info, data_size: int):
    """One header entry: a known dtype, a shape of non-negative integers, a byte range in the file that
    holds exactly dtype x shape."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise invalid(path, f"the header entry of tensor {short(key)} is not an object "
                            "with dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise invalid(path, f"tensor {short(key)} has dtype {short(dtype)}, "
                            "which safetensors does not define")
    if not isinstance(shape, list) or not all(is_index(d) for d in shape):
        raise invalid(path, f"tensor {short(key)} has shape {short(shape)}, "
                            "not a list of non-negative integers")
    pair = isinstance(offsets, list) and len(offsets) == 2 and all(is_index(o) for o in offsets)
    if not pair or offsets[0] > offsets[1]:
        raise invalid(path, f"tensor {short(key)} has data_offsets {short(offsets)}, "
                            "not [begin, end] with 0 <= begin <= end")
    begin, end = offsets
    if end > data_size:
        raise invalid(path, f"tensor {short(key)} ends at data byte {end}, "
                            f"past the {data_size} data bytes the file holds (the file is truncated)")
    bits = 0 if 0 in shape else DTYPE_BITS[dtype]
    for d in shape:  # stop once past the file: a damaged shape may multiply out to thousands of digits
        bits *= d
        if bits > 8 * data_size:
            break
    if bits != 8 * (end - begin):
        need = f"{bits // 8} bytes" if bits % 8 == 0 else f"{bits} bits"
        if bits > 8 * data_size:  # the loop above stopped early: bits is then only a lower bound
            need = "more bytes than the file holds"
        raise invalid(path, f"tensor {short(key)} is {dtype} of shape {short(shape)}, which takes {need}, "
                            f"but its data_offsets [{begin}, {end}] span {end - begin} bytes")


def is_index(value) -> bool:
    """A non-negative integer from JSON (not a bool, not 2.0)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
