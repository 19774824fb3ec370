"""The core: the whole pipeline, plain, in one sitting. It imports nothing of minigpt outside this folder.

Read it in this order, one token from bytes to text:

  bpe.py        text -> pieces -> bytes merged by rank -> token ids: GPT-2's byte-pair encoding in plain Python
  tokenizer.py  the same ids through tiktoken (fast), and ids -> bytes -> text, streamed without half characters
  config.py     the numbers that fix every shape
  model.py      ids -> embeddings -> transformer blocks -> logits, in float32, through a preallocated KV cache
  numerics.py   softmax, log-softmax, top-k selection, the seeded draw
  checks.py     the one-sentence refusals every layer shares
  link.py       what a link of the sampler chain is, and how it declares its options
  links.py      the classic links: the repetition penalty, temperature, top-k, top-p, min-p
  chain.py      the links in order, then the chooser: greedy argmax or the seeded draw
  loop.py       the decoding loop: prompt -> cache -> (scores -> chain -> token) again and again

The rings around it (weights/, links/, sources/, strategies/, call/, ...) add what a product needs: loading
any checkpoint, every other sampler, the other strategies, batches, the trace, the views.
"""
