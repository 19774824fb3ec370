"""The fixture makers: each records what transformers (or llama.cpp) computes into tests/fixtures/, so that the
tests check minigpt against it with NumPy alone. Each is seeded: a rerun on the same versions and CPU writes the
same bytes, but for the versions a record names. What they share is in common.py.

  python -m scripts.reference.<maker>   writes under tests/fixtures/              with transformers
  logits (first: the others use them)   tiny-hub/, tiny-pretrained/, odd-f16/,    5.x
                                        fullvocab/: checkpoints, reference.*
  processors                            processors/cases.*                        5.x
  sampling                              strategies/greedy.json, sampling.*        5.x
  beam                                  strategies/beam.json                      5.x
  beam --diverse                        strategies/diverse_beam.json              4.46
  contrastive                           strategies/contrastive.json               4.46
  dola                                  dola-model/, strategies/dola.*            4.46
  guidance                              strategies/guidance.*                     5.x or 4.46
  perplexity                            perplexity/reference.json                 5.x
  llama                                 llama/cases.json                          none: llama-cpp-python

Run them from the checkout's root. transformers 5.x is the `reference` extra:

    pip install -e '.[reference]' && python -m scripts.reference.logits

transformers 5 moved group beam search, contrastive search and DoLa out of its core; they are recorded with 4.46,
in an environment of its own (<env> anywhere), where minigpt need not be installed:

    python -m venv <env> && <env>/bin/pip install torch==2.13.0 transformers==4.46.3 safetensors numpy tiktoken
    <env>/bin/python -m scripts.reference.contrastive

llama.py says how to build llama-cpp-python.
"""
