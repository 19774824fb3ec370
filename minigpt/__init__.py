"""minigpt: GPT-2 inference from scratch in NumPy.

Follow one token from bytes to text through the modules in this order:
  tokenizer.py          text -> bytes -> BPE token ids (and back)
  prompts.py            ids -> a left-padded batch
  model.py              ids -> embeddings -> transformer blocks -> logits (float32, KV cache)
  generate.py           prepare the batch and the sampler chain, run a strategy, pack the output
  sampling/             the per-step loop lives in the strategies there (tokenwise.py for greedy and
                        sampling): scores -> chain (processors, then the chooser) -> token -> trace
Loading the weights: folders.py (names -> folders), hub.py (-> files, downloaded if need be), config.py (shapes),
safetensors_header.py (the file's header, checked), checkpoint.py (-> float32 arrays, mapped from the file).
Shared helpers at the bottom: numerics.py (softmax, top-k, the draw), checks.py (the refusals) and memory.py
(what a call holds at its peak, refused before it is allocated if it will not fit).
Whole texts and many prompts: perplexity.py (a sliding window) and batch.py (a file of prompts).
In a notebook every result shows itself as static HTML (markup.py): see docs/decoding_strategies.ipynb.
"""

from .weights.checkpoint import CheckpointError, load
from .core.config import ConfigError, GPTConfig
from .call.generate import GenerationOutput, generate
from .core.model import GPT2, KVCache
from .core.tokenizer import StreamDecoder, Tokenizer
from .version import VERSION as __version__

__all__ = ["__version__", "load", "Tokenizer", "StreamDecoder", "generate", "GenerationOutput", "GPT2", "GPTConfig",
           "KVCache", "CheckpointError", "ConfigError"]
