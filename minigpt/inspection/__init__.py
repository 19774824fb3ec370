"""inspection (a ring of minigpt): what the model computes on the way to a token, as arrays."""

from .inspection import (Attention, BeamNode, BeamTree, LogitLens, NextTokenDistribution, attention, attention_maps,
                         beam_tree, logit_lens, next_token_distribution, perplexity, token_logprobs)
