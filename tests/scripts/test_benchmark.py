"""scripts/bench/: the benchmark's FLOP count, its refusals, its --help and its BLAS warning; nothing timed."""

import subprocess
import sys

from helpers import CHECKOUT, program_env

from minigpt.core.config import GPTConfig
from scripts.bench import common, limits, report
from scripts.bench.measures import CONTEXT_NEEDED

SMALL = GPTConfig(vocab_size=10, n_positions=16, n_embd=4, n_layer=2, n_head=2)


def benchmark(*argv, **env):
    return subprocess.run([sys.executable, "-m", "scripts.bench.benchmark", *argv], cwd=CHECKOUT,
                          env=program_env(**env), capture_output=True, text=True, timeout=120)


def test_forward_flops_counts_the_matmuls_attention_and_head_by_hand():
    # per layer: weights 4*12 + 4*4 + 4*16 + 16*4 = 192, times 2 FLOPs per token for 3 tokens = 1152;
    # attention 4 * 3 tokens * 5 positions (2 cached) * 4 = 240; 2 layers: 2784; the head 2 * 4 * 10 per position
    assert limits.forward_flops(SMALL, 3, cached=2, unembedded=1) == 2 * (1152 + 240) + 80
    assert limits.forward_flops(SMALL, 3) == 2 * (1152 + 4 * 3 * 3 * 4) + 3 * 80  # every position unembedded


def test_generation_and_perplexity_flops_add_up_forward_passes():
    prefill, step = limits.forward_flops(SMALL, 5, 0, 1), limits.forward_flops(SMALL, 1, 5, 1)
    assert limits.generation_flops(SMALL, 5, 2, rows=3, prompt_rows=1) == prefill + 3 * step
    # one window holds the whole text: one forward, every position but the first scored
    assert limits.perplexity_flops(SMALL, 8, 16, 8) == limits.forward_flops(SMALL, 8, 0, unembedded=7)


def test_the_tiny_checkpoint_is_refused_in_one_sentence():
    done = benchmark("--model-dir", "minigpt/data/tiny", "--no-transformers")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"minigpt/data/tiny holds 256 positions, and the benchmark needs {CONTEXT_NEEDED} "
                                   "(its perplexity windows): give a checkpoint of gpt2's context with --model-dir, "
                                   "or leave it out to measure gpt2.")


def test_without_transformers_it_says_how_to_get_the_checkpoint(tmp_path):
    done = benchmark("--no-transformers", "--cache-dir", str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    message = done.stderr.strip()
    assert "\n" not in message and "pip install -e '.[reference]'" in message and "--model-dir" in message


def test_help_names_the_new_measurements():
    done = benchmark("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--native-blas", "--trace-pairs", "--first-token-runs", "--drop-caches"):
        assert option in done.stdout


def test_a_forced_kernel_is_warned_about_with_the_fix():
    forced = {"env": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None}, "kernel": "Haswell"}
    warning = common.blas_warning(forced)
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "--native-blas" in warning
    assert common.blas_warning({"env": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}}) is None


def test_the_trace_cost_is_the_median_of_paired_differences():
    pairs = [(1.10, 1.00), (1.00, 1.00), (5.00, 4.90), (1.02, 1.00), (0.90, 1.00)]  # one pair hit by a burst
    cost = report.trace_cost({"pairs": pairs, "direct_s": {10: 0.002, 0: 0.001}, "new_tokens": 10})
    assert abs(cost["per_step_s"] - 0.002) < 1e-12  # differences per step: 0.01, 0, 0.01, 0.002, -0.01
    assert abs(cost["step_s"] - 0.1) < 1e-12 and abs(cost["share"] - 0.02) < 1e-9
    assert abs(cost["direct_candidates_s"] - 0.001) < 1e-12
