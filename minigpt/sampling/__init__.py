"""Sampling: what happens between the model's next-token logits and the token that is chosen.

processors.py reshapes the logits (penalties, bans, temperature, top-k/top-p/min-p/typical/epsilon/eta
cut-offs) in the order transformers applies them, joined by llama.cpp's top-nσ, XTC, DRY and dynamic
temperature (llama_samplers.py); the strategies that draw or search over tokens live beside it, and
mirostat (mirostat.py), which draws the token itself.
"""
