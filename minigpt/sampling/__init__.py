"""Sampling: what happens between the model's next-token logits and the token that is chosen.

processors.py reshapes the logits (penalties, bans, temperature, top-k/top-p/min-p/typical/epsilon/eta
cut-offs) in the order transformers applies them; the strategies that draw or search over tokens live
beside it.
"""
