"""minigpt: GPT-2 inference from scratch in NumPy.

The folders are the reading order, a core and the rings around it; each imports only the core and the rings
listed before it:

  core/         text -> tokens -> the forward pass -> logits -> the chain -> a token: the whole pipeline, plain
  weights/      a name -> files on disk, downloaded if need be -> a checked model
  links/        every other link of the sampler chain, and the chain's full order
  sources/      where the chain's scores come from: the model, classifier-free guidance, DoLa
  strategies/   the decoding loops: greedy and sampling, beam search, contrastive search, speculative decoding,
                prompt lookup
  call/         generate() and stream(): options checked, memory priced, prompts batched, a strategy run
  inspection/   what the model computes on the way: scores, distributions, the logit lens, attention, beam trees,
                and inside/: every intermediate by TransformerLens' names, attribution, patching, head detectors
  views/        text, JSON, HTML and pictures of the results
  web/          the explore page and the one-file report
  cli/          the command line

Importing minigpt in a notebook lets every result show itself as HTML (views/notebook.py).
"""

from .call.generate import GenerationOutput, generate, stream
from .core.config import ConfigError, GPTConfig
from .core.model import GPT2, KVCache
from .core.tokenizer import StreamDecoder, Tokenizer
from .inspection.inside import (ActivationCache, Attribution, HeadScores, PatchResult, attribute, head_scores, patch,
                                run_with_cache)
from .inspection.watermark import WatermarkScore, watermark_score
from .version import VERSION as __version__
from .views.notebook import show_in_notebooks
from .weights.checkpoint import CheckpointError, load

show_in_notebooks()

__all__ = ["__version__", "load", "Tokenizer", "StreamDecoder", "generate", "stream", "GenerationOutput", "GPT2",
           "GPTConfig", "KVCache", "CheckpointError", "ConfigError", "run_with_cache", "ActivationCache", "attribute",
           "Attribution", "patch", "PatchResult", "head_scores", "HeadScores", "watermark_score", "WatermarkScore"]
