"""scripts/bench/: the benchmark's FLOP count, its refusals, its --help and its BLAS warning, the profiler's,
minigpt explore's, prompt lookup's and looking inside's figures against their goals; nothing timed but prompt lookup
on the tiny model, once, to see that its text is checked against greedy's."""

import subprocess
import sys

import pytest
from helpers import CHECKOUT, program_env

import minigpt
from minigpt.core.config import GPTConfig
from minigpt.strategies.speculative import draft_stats
from scripts.bench import common, drafting, explore_speed, inside, limits, profile_minigpt, report
from scripts.bench.measures import CONTEXT_NEEDED

SMALL = GPTConfig(vocab_size=10, n_positions=16, n_embd=4, n_layer=2, n_head=2)
GPT2 = GPTConfig()  # 124M: C 768, 12 layers, V 50257


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


def test_a_window_pair_is_two_forwards_that_unembed_what_they_score():
    # windows(12, 8, 4): [0, 8) scores 7 tokens, [4, 12) the 4 the first did not; per window of 8, per layer:
    # weights 2 * 192 * 8 = 3072, attention 4 * 8 * 8 * 4 = 1024; 2 layers: 8192; the head 2 * 4 * 10 per token
    assert limits.perplexity_flops(SMALL, 12, 8, 4) == (8192 + 7 * 80) + (8192 + 4 * 80)


def test_the_profilers_runs_count_gpt2s_flops_by_hand():
    C, V, L = 768, 50257, 12
    P = 12 * C * C  # c_attn 3 C^2, c_proj C^2, c_fc and its c_proj 4 C^2 each

    def forward(new, cached, unembedded):
        return L * (2 * P * new + 4 * new * (cached + new) * C) + 2 * C * V * unembedded

    flops = profile_minigpt.run_flops(GPT2)
    pair, batch = f"perplexity_2x{1024}", "batch_32x40+32"
    assert flops[pair] == forward(1024, 0, 1023) + forward(1024, 0, 512)  # 1,536 tokens: 1023 scored, then 512
    assert flops[pair] == 2 * L * (2 * P * 1024 + 4 * 1024 * 1024 * C) + 2 * C * V * 1535
    assert flops[batch] == 32 * forward(40, 0, 1) + 32 * sum(forward(1, 40 + i, 1) for i in range(31))
    assert flops["prefill_512"] == forward(512, 0, 512)
    assert flops["greedy_32+64"] == forward(32, 0, 1) + sum(forward(1, 32 + i, 1) for i in range(63))
    assert flops["beam_4x32"] == forward(32, 0, 1) + 4 * sum(forward(1, 32 + i, 1) for i in range(31))
    assert set(flops) == set(profile_minigpt.RUNS)


def fake_profile(walls: dict) -> dict:
    """A profile as profile() returns it, with these wall times: a bound of 100 tokens/s, a peak of 1 TFLOP/s."""
    flops = profile_minigpt.run_flops(GPT2)
    return {run: {"wall_s": walls[run]} for run in profile_minigpt.RUNS} | {
        "bandwidth": {"bytes_per_s": 100 * 500e6}, "weight_bytes_per_token": 500e6, "sgemm_peak": {"flops_per_s": 1e12},
        "flops": flops}


def test_the_profiler_sets_each_run_against_its_limit_and_goal():
    flops = profile_minigpt.run_flops(GPT2)
    greedy, prefill, beam, pair, batch = profile_minigpt.RUNS
    walls = {greedy: 64 / 85, prefill: flops[prefill] / 0.5e12, beam: 32 / 10, pair: flops[pair] / 0.75e12,
             batch: flops[batch] / 0.59e12}  # 85 tok/s, 50%, 10 tok/s, 75%, 59%
    found = {(s["run"], s["limit"]): s for s in profile_minigpt.shares(fake_profile(walls))}
    assert list(found) == [(greedy, "bandwidth bound"), (prefill, "sgemm peak"), (beam, "bandwidth bound"),
                           (beam, "sgemm peak"), (pair, "sgemm peak"), (batch, "sgemm peak")]
    expected = {(greedy, "bandwidth bound"): (0.85, 0.80, "met"), (prefill, "sgemm peak"): (0.50, 0.70, "missed"),
                (beam, "bandwidth bound"): (0.10, None, "report"), (pair, "sgemm peak"): (0.75, 0.70, "met"),
                (batch, "sgemm peak"): (0.59, 0.60, "missed")}
    for key, (share, goal, verdict) in expected.items():
        assert abs(found[key]["share"] - share) < 1e-9 and found[key]["goal"] == goal, key
        assert found[key]["verdict"] == verdict, key
    assert found[beam, "sgemm peak"]["verdict"] == "report"


def test_the_benchmarks_goals_are_the_issues():
    assert limits.GOALS == {"decode": 0.80, "prefill": 0.70, "perplexity": 0.70, "batch": 0.60}


def explore_figures(next_s, step_s, sizes, arrivals):
    return {"next_s": next_s, "greedy_step_s": step_s, "bytes": dict(zip(explore_speed.SIZES_AT, sizes)),
            "run": {"arrivals_s": arrivals}}


def test_explore_figures_are_set_against_the_issues_goals():
    met = explore_speed.summary(explore_figures([0.09, 0.095, 0.30], [0.025, 0.02, 0.03], [4000, 3900, 5900],
                                                [0.05] + [0.1] * 48 + [2.0]))
    assert met["next_s"] == 0.095 and met["greedy_step_s"] == 0.025 and abs(met["next_allowed_s"] - 0.1) < 1e-12
    assert met["next_met"] and met["size_met"] and met["run_met"] and met["growth"] == 5900 / 4000
    missed = explore_speed.summary(explore_figures([0.2], [0.05], [4000, 8000, 4000], [1.0] * 50))
    assert not missed["next_met"] and not missed["size_met"] and not missed["run_met"]  # 200 ms > 2 x 50 + 50


def test_explores_rows_say_each_figure_and_whether_its_goal_is_met():
    rows = report.explore_rows(explore_figures([0.12], [0.03], [4000, 3900, 4100], [0.05] * 49 + [2.0]))
    assert [r["measure"] for r in rows] == [
        "explore: Next after 200 accepted (ms)", "  one greedy step of generate() at 200 (ms)",
        "explore: answer after 0 accepted (bytes)", "explore: answer after 50 accepted (bytes)",
        "explore: answer after 200 accepted (bytes)", "explore: Run 50 streamed, first token (ms)",
        "  the 50th token (ms)"]
    assert [r["ok"] for r in rows] == [False, None, None, None, True, True, None]  # 120 ms > 2 x 30 + 50
    assert rows[0]["goal"] == "<= 2x step + 50 ms" and abs(rows[0]["ratio"] - 4) < 1e-12
    assert abs(rows[5]["minigpt"] - 50) < 1e-9 and abs(rows[6]["minigpt"] - 2000) < 1e-9


def test_help_offers_transformer_lens_beside_minigpt():
    done = benchmark("--help")
    assert done.returncode == 0, done.stderr
    assert "--tl-python PY" in done.stdout and "transformer_lens" in done.stdout


def drafting_figures(greedy_s, lookup_s):
    return {"greedy_s": greedy_s, "prompt_lookup_s": lookup_s, "stats": draft_stats(70, 50, 14, 64),
            "prompt_tokens": 135, "new_tokens": 64}


def test_prompt_lookups_rows_give_both_speeds_the_speed_up_and_the_drafts_kept():
    rows = report.drafting_rows(drafting_figures([2.0, 1.0, 3.0], [0.5, 1.0, 0.8]))
    assert [r["measure"] for r in rows] == [
        "greedy, a self-repeating prompt 135+64 (tokens/s)", "  prompt lookup, the same tokens (tokens/s)",
        "  prompt lookup: drafts kept", "  prompt lookup: tokens per forward pass"]
    assert rows[0]["minigpt"] == 32 and rows[1]["minigpt"] == 80  # 64 tokens in the median 2 s and 0.8 s
    assert abs(rows[1]["ratio"] - 2.5) < 1e-12 and rows[1]["ratio_best"] == 2  # fastest runs: 1 s and 0.5 s
    assert abs(rows[2]["minigpt"] - 50 / 70) < 1e-12 and abs(rows[3]["minigpt"] - 64 / 14) < 1e-12
    assert all(r["goal"] == "report" and r["ok"] is None for r in rows)


def test_prompt_lookup_must_give_greedys_tokens():
    drafting.same_tokens([1, 2, 3], [1, 2, 3])
    for other in ([1, 2, 4], [1, 2]):
        with pytest.raises(RuntimeError, match="other tokens than greedy"):
            drafting.same_tokens([1, 2, 3], other)


def test_drafting_on_the_tiny_model_checks_its_text_against_greedys(monkeypatch):
    checked = []
    monkeypatch.setattr(drafting, "same_tokens", lambda greedy, drafted: checked.append((greedy, drafted)))
    figures = drafting.drafting(minigpt.load("tiny"), repeats=1)
    [(greedy, drafted)] = checked
    assert greedy == drafted and len(greedy) == drafting.NEW_TOKENS == figures["new_tokens"]
    assert len(figures["greedy_s"]) == len(figures["prompt_lookup_s"]) == 1
    assert figures["stats"]["forward_passes"] < drafting.NEW_TOKENS  # the repeated prompt gave drafts to keep


def inside_figures(cache_ratio, sweep, tl=None):
    return {"cache_ratio": cache_ratio, "sweep": sweep} | ({"transformer_lens": tl} if tl else {})


def test_inside_rows_set_the_cache_and_the_sweep_against_their_goals():
    tl = {"forward": 0.30, "run_with_cache": 0.39, "sweep": 400.0}
    cache, sweep = report.inside_rows(inside_figures(1.08, 30.0, tl))
    assert cache["measure"] == "run_with_cache / forward pass, 17 tokens" and cache["goal"] == "<= 1.3x"
    assert cache["minigpt"] == 1.08 and abs(cache["transformers"] - 1.3) < 1e-12 and cache["ok"]
    assert sweep["measure"] == "patching sweep, all four places, 17 tokens (s)" and sweep["goal"] == "<= 0.5x TL"
    assert (sweep["minigpt"], sweep["transformers"], sweep["ratio"], sweep["ok"]) == (30.0, 400.0, 0.075, True)
    cache, sweep = report.inside_rows(inside_figures(1.4, 250.0, tl))
    assert cache["ok"] is False and sweep["ok"] is False and sweep["ratio"] == 0.625


def test_without_transformer_lens_the_sweeps_goal_is_not_measured():
    cache, sweep = report.inside_rows(inside_figures(1.2, 30.0))
    assert cache["ok"] and cache["transformers"] is None
    assert sweep["transformers"] is None and sweep["ratio"] is None and sweep["ok"] is None
    assert sweep["goal"] == "<= 0.5x TL: not measured"


def test_inside_goals_are_the_issues():
    assert (inside.CACHE_GOAL, inside.SWEEP_GOAL, inside.SWEEP_REPEATS) == (1.3, 0.5, 2)
