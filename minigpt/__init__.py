"""minigpt: GPT-2 inference from scratch in NumPy.

Follow one token from bytes to text through the modules in this order:
  tokenizer.py   text -> bytes -> BPE token ids (and back)
  model.py       ids -> embeddings -> transformer blocks -> logits (float32, KV cache)
  generate.py    logits -> the next token, one step at a time -> ids
Loading the weights: hub.py (names -> files), config.py (shapes), checkpoint.py (safetensors -> arrays).
"""

from .checkpoint import CheckpointError, load
from .config import ConfigError, GPTConfig
from .generate import GenerationOutput, generate
from .model import GPT2, KVCache
from .tokenizer import StreamDecoder, Tokenizer

__all__ = ["load", "Tokenizer", "StreamDecoder", "generate", "GenerationOutput", "GPT2", "GPTConfig", "KVCache",
           "CheckpointError", "ConfigError"]
