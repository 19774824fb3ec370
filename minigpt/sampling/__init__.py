"""Sampling: what happens between the model's next-token logits and the token that is chosen.

Bottom up, each module importing only from those above it in this list:
  link.py            the contract of a chain link, and Option, how a link declares its options
  processors.py      the warpers (temperature, top-k, top-p, min-p, typical, epsilon, eta)
  penalties.py       the penalties and bans every strategy applies
  llama_samplers.py  llama.cpp's top-nσ, XTC, DRY and dynamic temperature
  mirostat.py        mirostat, a chooser that learns from each token
  chain.py           the links in their visible order, then the chooser: argmax, the draw or mirostat
  options.py         the registry of every option, and the options of one call
  run.py             one call's context: trace, stop strings, what a strategy returns
  scores.py          where the chain's scores come from; guidance.py and dola.py replace the model's
  tokenwise.py       greedy and sampling; beam.py, contrastive.py, speculative.py
"""
