"""GPT-2's hyper-parameters: the numbers that fix every tensor's shape.

Read from a Hugging Face `config.json` (weights/layout.py infers it from the tensors of a bare `.safetensors`
file). Only what the forward pass uses is kept; options that would change GPT-2's math are refused rather
than silently ignored.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ConfigError(ValueError):
    """A config.json, or a checkpoint's shapes, that do not describe a GPT-2 model minigpt can run."""


def is_count(value) -> bool:
    """A positive integer from JSON: 12, but not 12.5, "12", true or -1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50257
    n_positions: int = 1024  # the context length
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None  # the MLP's width; None means 4 * n_embd
    layer_norm_epsilon: float = 1e-5
    eos_token_id: int = 50256

    def __post_init__(self):
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not is_count(value):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")
        if self.n_inner is not None and not is_count(self.n_inner):
            raise ConfigError(f"n_inner must be a positive integer or null, got {self.n_inner!r}.")
        eps = self.layer_norm_epsilon
        # float32(eps) > 0: an epsilon that float32 rounds to 0 lets a constant row divide 0 by 0.
        if (not isinstance(eps, (int, float)) or isinstance(eps, bool) or not math.isfinite(eps)
                or not np.float32(eps) > 0):
            raise ConfigError(f"layer_norm_epsilon must be a small positive number such as 1e-05, got {eps!r}.")
        if not isinstance(self.eos_token_id, int) or isinstance(self.eos_token_id, bool) or self.eos_token_id < 0:
            raise ConfigError(f"eos_token_id must be a token id (a non-negative integer), got {self.eos_token_id!r}.")

    @property
    def d_mlp(self) -> int:
        return self.n_inner or 4 * self.n_embd

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_json(cls, path) -> "GPTConfig":
        """Read a transformers GPT2Config file (config.json)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read {path} ({e.strerror or e}); check that it is a readable file.") from None
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{path} is not a readable JSON file ({json_fault(e)}); "
                              "replace it with the config.json of the checkpoint.") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a JSON object such as {{\"n_layer\": 12}}, not a JSON "
                              f"{json_type(raw)}; replace it with the config.json of the checkpoint.")
        if raw.get("model_type", "gpt2") != "gpt2":
            raise ConfigError(f"{path} describes a {raw['model_type']!r} model; "
                              "minigpt runs only GPT-2 (model_type 'gpt2').")
        # Options that change GPT-2's math: accept only the values of the released models.
        required = {"activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # both are the tanh approximation
                    "scale_attn_weights": (True,), "scale_attn_by_inverse_layer_idx": (False,),
                    "add_cross_attention": (False,)}
        for key, allowed in required.items():
            if key in raw and raw[key] not in allowed:
                raise ConfigError(f"{path}: {key}={raw[key]!r} is not supported; "
                                  f"minigpt implements GPT-2 with {key}={allowed[0]!r}.")
        fields = {"vocab_size": raw.get("vocab_size", 50257), "n_layer": raw.get("n_layer", 12),
                  "n_positions": raw.get("n_positions", raw.get("n_ctx", 1024)), "n_embd": raw.get("n_embd", 768),
                  "n_head": raw.get("n_head", 12), "n_inner": raw.get("n_inner"),
                  "layer_norm_epsilon": raw.get("layer_norm_epsilon", 1e-5)}
        eos = raw.get("eos_token_id", 50256)
        if isinstance(eos, list):  # transformers allows a list; GPT-2 has one end-of-text token
            eos = eos[0] if eos else 50256
        try:
            return cls(**fields, eos_token_id=eos if isinstance(eos, int) and not isinstance(eos, bool) else 50256)
        except ConfigError as e:
            raise ConfigError(f"{path}: {str(e).rstrip('.')}; correct that value in config.json.") from None


def json_type(value) -> str:
    """The JSON name of a parsed value's type: "array" for a list, "string" for a str."""
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), "object")


def json_fault(error: Exception) -> str:
    """Why json.loads failed, in a few words: its own message for bad syntax or bytes that are not UTF-8."""
    if isinstance(error, RecursionError):
        return "it nests too deeply"
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return str(error)
    return "a number in it is too long to read"  # Python's limit of 4300 digits for a str -> int conversion
