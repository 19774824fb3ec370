"""How fast minigpt is: the benchmark against transformers (benchmark.py) and the profiler of minigpt's own
functions (profile_minigpt.py). They share common.py (settings, threads, the checkpoint, timing); the benchmark's
measurements, child processes and table are measures.py, children.py and report.py, the machine's limits and the
FLOP count limits.py, minigpt explore's clicks explore_speed.py. docs/performance.md holds measured tables and
what was tried.

    python -m scripts.bench.benchmark --threads 1         # from the checkout's root; --help lists the options
    python -m scripts.bench.profile_minigpt --threads 1

Both need NumPy and minigpt only; torch and transformers (the `reference` extra) add transformers' figures and
build the random gpt2 checkpoint they measure when the real one is not found.
"""
