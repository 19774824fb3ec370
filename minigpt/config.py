"""GPT-2's hyper-parameters: the numbers that fix every tensor's shape.

Read from a Hugging Face `config.json`, or inferred from the tensors of a bare `.safetensors` file.
Only what the forward pass uses is kept; options that would change GPT-2's math are refused rather
than silently ignored.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A config.json, or a checkpoint's shapes, that do not describe a GPT-2 model minigpt can run."""


# n_embd -> n_head of the released checkpoints (Radford et al. 2019; distilgpt2 shares gpt2's width).
KNOWN_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}


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
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"config {name} must be a positive integer, got {value!r}.")
        if self.n_embd % self.n_head:
            raise ConfigError(f"config n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")
        if self.n_inner is not None and (not isinstance(self.n_inner, int) or self.n_inner < 1):
            raise ConfigError(f"config n_inner must be a positive integer or null, got {self.n_inner!r}.")
        eps = self.layer_norm_epsilon
        if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ConfigError(f"config layer_norm_epsilon must be a small positive number, got {eps!r}.")

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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path} is not a readable JSON file ({e}).") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a JSON object, not {type(raw).__name__}.")
        if raw.get("model_type", "gpt2") != "gpt2":
            raise ConfigError(f"{path} describes a {raw['model_type']!r} model; minigpt runs only GPT-2 (model_type 'gpt2').")
        # Options that change GPT-2's math: accept only the values of the released models.
        required = {
            "activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # both are the tanh approximation
            "scale_attn_weights": (True,),
            "scale_attn_by_inverse_layer_idx": (False,),
            "add_cross_attention": (False,),
        }
        for key, allowed in required.items():
            if key in raw and raw[key] not in allowed:
                raise ConfigError(f"{path}: {key}={raw[key]!r} is not supported; minigpt implements GPT-2 with {key}={allowed[0]!r}.")
        fields = {
            "vocab_size": raw.get("vocab_size", 50257),
            "n_positions": raw.get("n_positions", raw.get("n_ctx", 1024)),
            "n_embd": raw.get("n_embd", 768),
            "n_layer": raw.get("n_layer", 12),
            "n_head": raw.get("n_head", 12),
            "n_inner": raw.get("n_inner"),
            "layer_norm_epsilon": raw.get("layer_norm_epsilon", 1e-5),
        }
        eos = raw.get("eos_token_id", 50256)
        if isinstance(eos, list):  # transformers allows a list; GPT-2 has one end-of-text token
            eos = eos[0] if eos else 50256
        try:
            return cls(**fields, eos_token_id=eos if isinstance(eos, int) else 50256)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple], source="the checkpoint", n_head=None) -> "GPTConfig":
        """Infer the config of a bare .safetensors file from its tensor shapes (canonical key names).

        Every number is visible in some shape except n_head, which is taken from the released sizes.
        """
        for key in ("wte.weight", "wpe.weight", "h.0.mlp.c_fc.weight"):
            if key not in shapes:
                raise ConfigError(f"{source} has no tensor {key!r}, so its GPT-2 config cannot be inferred; put a config.json beside it.")
        vocab_size, n_embd = shapes["wte.weight"]
        n_layer = 1 + max(int(key.split(".")[1]) for key in shapes if key.startswith("h."))
        if n_head is None:
            if n_embd not in KNOWN_HEADS:
                raise ConfigError(f"{source} has n_embd={n_embd}, which is not a released GPT-2 size, so n_head is unknown; put a config.json with n_head beside it.")
            n_head = KNOWN_HEADS[n_embd]
        d_mlp = shapes["h.0.mlp.c_fc.weight"][1]
        return cls(
            vocab_size=vocab_size,
            n_positions=shapes["wpe.weight"][0],
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            n_inner=None if d_mlp == 4 * n_embd else d_mlp,
        )
