"""Small GPT-2 checkpoints written with NumPy alone, for tests that need weights but not the reference."""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from safetensors.numpy import save_file

import minigpt
from minigpt.cli.main import main
from minigpt.core.config import GPTConfig
from minigpt.core.numerics import softmax
from minigpt.links import chain
from minigpt.weights.layout import expected_shapes

FIXTURES = Path(__file__).parent / "fixtures"


def random_params(config: GPTConfig, seed=0, scale=0.2) -> dict[str, np.ndarray]:
    """Random float32 weights under the hub's names; layer norms near 1 so activations stay sane."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in expected_shapes(config).items():
        params[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
        if ".ln_" in name or name.startswith("ln_f"):
            params[name] += np.float32(1.0) if name.endswith("weight") else np.float32(0.0)
    params["ln_f.weight"] *= np.float32(8.0)  # a peaked next-token distribution, so argmax has no near-ties
    return params


def config_json(config: GPTConfig) -> dict:
    return {"model_type": "gpt2", "vocab_size": config.vocab_size, "n_positions": config.n_positions,
            "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": config.n_inner,
            "layer_norm_epsilon": config.layer_norm_epsilon, "activation_function": "gelu_new"}


def write_checkpoint(folder, config: GPTConfig, params=None, layout="hub", dtype=np.float32, with_config=True) -> Path:
    """config.json + model.safetensors in `folder`, in the hub's layout or save_pretrained's ("transformer.")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = random_params(config) if params is None else params
    prefix = "transformer." if layout == "pretrained" else ""
    save_file({prefix + k: v.astype(dtype) for k, v in params.items()}, str(folder / "model.safetensors"))
    if with_config:
        (folder / "config.json").write_text(json.dumps(config_json(config)))
    return folder


def write_raw_safetensors(path, tensors: dict[str, tuple[str, list, bytes]], header_padding: int | None = None):
    """A .safetensors file written by hand from (dtype name, shape, raw bytes): for dtypes NumPy lacks (BF16).
    The header is padded with spaces to a multiple of 8 bytes, as the safetensors library does, or by
    header_padding spaces."""
    header, offset = {}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8 if header_padding is None else header_padding)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + b"".join(d for _, _, d in tensors.values()))


def to_bfloat16_bytes(x: np.ndarray) -> bytes:
    """float32 -> bfloat16 by truncation (the top 16 bits); the test compares with the same truncation."""
    return (np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def options_of(case) -> dict:
    """A fixture case's options as generate() takes them (logit_bias is stored as [token, bias] pairs)."""
    options = dict(case["options"])
    if "logit_bias" in options:
        options["logit_bias"] = {int(t): b for t, b in options["logit_bias"]}
    return options


def split_safetensors(path) -> tuple[dict, bytes]:
    """A .safetensors file's JSON header (as a dict, with __metadata__ if any) and its data bytes."""
    blob = Path(path).read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join_safetensors(path, header, data: bytes, header_length=None):
    """Write a .safetensors file from a header (a dict, or raw JSON bytes) and data bytes, as given: for
    tests that make a file lie. header_length overrides the 8-byte length the file starts with."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(blob) if header_length is None else header_length
    Path(path).write_bytes(struct.pack("<Q", length) + blob + data)


@lru_cache(maxsize=None)
def fixture_model(name: str):
    """A checkpoint under tests/fixtures/, loaded once per test session."""
    return minigpt.load(FIXTURES / name)


def run_cli(capsys, *argv):
    """`minigpt *argv` in this process -> (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


CHECKOUT = Path(__file__).resolve().parent.parent
# Settings of the caller's shell that would change what a child `python -m minigpt` does or prints.
CALLERS_SETTINGS = ("HF_", "HUGGINGFACE_", "MINIGPT_", "TQDM_", "PYTHON", "COLUMNS", "LINES")


def program_env(**settings: str) -> dict[str, str]:
    """The environment for a child `python -m minigpt`: the caller's, less anything that would change what the
    program does (warnings filters, the hub's endpoint, offline mode, the weights folder, terminal width),
    running this checkout's minigpt, plus `settings`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(CALLERS_SETTINGS) and not key.lower().endswith("_proxy")}
    return env | {"PYTHONPATH": str(CHECKOUT)} | settings


def installed_package(folder) -> Path:
    """A copy of this checkout's minigpt/ in `folder`, with no pyproject.toml or weights/ beside it, as pip installs
    it from a wheel into site-packages: run it with PYTHONPATH=folder. Returns folder."""
    folder = Path(folder)
    shutil.copytree(CHECKOUT / "minigpt", folder / "minigpt", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run_program(*argv, env: dict[str, str] | None = None, text: bool = True, **kwargs):
    """`python -m minigpt *argv` as a separate process, in program_env() unless env is given."""
    return subprocess.run([sys.executable, "-m", "minigpt", *argv], env=program_env() if env is None else env,
                          capture_output=True, text=text, timeout=120, **kwargs)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so that a progress bar shows."""

    def isatty(self):
        return True


def log_softmax64(x):
    """log softmax over the last axis, in float64: an independent definition to check the package against."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's header, after checking its signature and that IHDR comes first."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{Path(path).name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _processor_namespace() -> SimpleNamespace:
    """The links' registry (minigpt.links.chain.LINKS), the chain and softmax under one name, as the processor tests
    use them: P.TopK, P.LINKS["top_k"], P.build_chain. P.TESTED names the links they draw parameters for: those
    with a transformers counterpart, and frequency/presence (llama.cpp's have tests of their own)."""
    tested = [name for name in chain.LINKS if name not in ("dry", "top_n_sigma", "xtc", "dynamic_temperature")]
    return SimpleNamespace(LINKS=chain.LINKS, TESTED=tested, Chain=chain.Chain, build_chain=chain.build_chain,
                           softmax=softmax, **{cls.__name__: cls for cls in chain.LINKS.values()})


P = _processor_namespace()
