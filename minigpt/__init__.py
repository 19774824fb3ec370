"""minigpt: GPT-2 inference from scratch in NumPy.

Follow one token from bytes to text through the modules in this order:
  tokenizer.py          text -> bytes -> BPE token ids (and back)
  prompts.py            ids -> a left-padded batch
  model.py              ids -> embeddings -> transformer blocks -> logits (float32, KV cache)
  generate.py           prepare the batch and the sampler chain, run a strategy, pack the output
  sampling/             the per-step loop lives in the strategies there (tokenwise.py for greedy and
                        sampling): scores -> chain (processors, then the chooser) -> token -> trace
Loading the weights: folders.py (names -> folders), hub.py (-> files, downloaded if need be), config.py (shapes),
checkpoint.py (safetensors -> arrays).
Shared helpers at the bottom: numerics.py (softmax, top-k, the draw) and checks.py (the refusals).
"""

from .checkpoint import CheckpointError, load
from .config import ConfigError, GPTConfig
from .generate import GenerationOutput, generate
from .model import GPT2, KVCache
from .tokenizer import StreamDecoder, Tokenizer
from .version import VERSION as __version__

__all__ = ["__version__", "load", "Tokenizer", "StreamDecoder", "generate", "GenerationOutput", "GPT2", "GPTConfig",
           "KVCache", "CheckpointError", "ConfigError"]
