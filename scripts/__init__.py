"""The programs around minigpt: none of them is part of the package that pip installs.

  reference/   the fixture makers: what transformers (or llama.cpp) computes, recorded under tests/fixtures/
  bench/       the benchmark against transformers, and the profiler of minigpt's own functions
  training/    the training of the tiny model that ships in minigpt/data/tiny/, and the text it learns from
  docs/        the notebook runner, the README's screenshots, the walkthrough of the classic decoding study

Each script runs as a module, from the checkout's root, so that it imports this checkout's minigpt and its
neighbours without any path set by hand:

    python -m scripts.<folder>.<name> --help        # e.g. python -m scripts.bench.benchmark --threads 1
"""
