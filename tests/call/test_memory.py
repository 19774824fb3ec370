"""No setting can exhaust memory: what will not fit is refused before it is allocated, in one sentence that
names the estimate, what dominates it and the option to lower; the estimates hold against measured peaks.

Every call that could allocate runs in a child process under an address-space cap (RLIMIT_AS), so a broken
guard fails its test with a MemoryError instead of taking the machine down."""

import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import RTOL, reference
from helpers import program_env, random_params, write_checkpoint

import minigpt
from minigpt.call import memory
from minigpt.call.memory import Footprint, Part
from minigpt.core import model as model_module
from minigpt.core.config import GPTConfig

CAP = 2 * 2**30  # the address space a child may use: all it needs for what fits, and far from what is refused
FULLVOCAB = str(reference("fullvocab").folder)  # 2 layers, 32 wide, GPT-2's 50,257 tokens, 1,024 positions
TINY = str(Path(minigpt.__file__).parent / "data" / "tiny")  # 4 layers, 128 wide, 256 positions

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import minigpt
    from minigpt import inspection
    from minigpt.cli.main import main
    from minigpt.call.generate import peak_memory
    from minigpt.call.strategies import build_options

    def status(field):  # bytes, from /proc/self/status
        return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))

    case = json.loads(sys.argv[1])
    if case["kind"] == "cli":
        start = time.monotonic()
        code = main(case["argv"])
        print(json.dumps({"code": code, "seconds": time.monotonic() - start}))
        sys.exit()
    model = minigpt.load(case["model"])
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, 50000, case["length"]).tolist() for _ in range(case["prompts"])]
    if case["kind"] == "lens":
        call = lambda: inspection.logit_lens(model, prompts[0])
        estimate = None
    else:
        options = build_options(case["strategy"], **case["options"])
        estimate = peak_memory(model, prompts, options, case["trace_top"]).nbytes
        call = lambda: minigpt.generate(model, prompts, case["strategy"], trace_top=case["trace_top"], **case["options"])
    minigpt.generate(model, [[1, 2]], max_new_tokens=2)  # every lazy allocation of NumPy and BLAS made before
    open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
    before, start, error = status("VmRSS"), time.monotonic(), None
    try:
        call()
    except ValueError as e:
        error = str(e)
    print(json.dumps({"error": error, "seconds": time.monotonic() - start, "estimate": estimate,
                      "peak": status("VmHWM") - before}))
""")


def run_capped(case: dict, env=None) -> tuple[subprocess.CompletedProcess, dict | None]:
    """The case in a child process whose address space is capped at CAP; (process, its JSON line or None)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(case)], env=env or program_env(), preexec_fn=cap,
                          capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    return done, (json.loads(lines[-1]) if lines else None)


linux_only = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="the peak RSS of a call is read from Linux's /proc/self")


def generation_case(strategy, model=FULLVOCAB, prompts=1, length=4, trace_top=0, **options):
    return {"kind": "generate", "model": model, "strategy": strategy, "options": {"max_new_tokens": 3, **options},
            "prompts": prompts, "length": length, "trace_top": trace_top}


# ----------------------------------------------------------------------------- the sentence


def test_the_refusal_names_the_estimate_what_dominates_it_and_the_option_to_lower():
    footprint = Footprint((Part("the KV cache", 3 * 2**30, "num_beams"), Part("the trace", 2**20, "trace_top")))
    with pytest.raises(ValueError) as refused:
        memory.check_fits(footprint, "this beam call", room=2**30)
    assert str(refused.value) == ("this beam call would need about 3 GiB of memory at its peak, mostly the KV cache: "
                                  "3 GiB, but only 1 GiB is available; lower num_beams.")
    memory.check_fits(footprint, "this beam call", room=4 * 2**30)  # fits with the margin: no error


def test_what_is_available_is_lowered_by_the_address_space_limit():
    code = "from minigpt.call import memory; print(memory.available())"
    done = subprocess.run([sys.executable, "-c", code], env=program_env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP)))
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) < CAP


# ----------------------------------------------------------------------------- settings that must be refused


def long_context_checkpoint(folder: Path) -> str:
    """GPT-2's vocabulary with a context of 10,240 positions, so that 10^4 new tokens are allowed."""
    config = GPTConfig(vocab_size=50257, n_positions=10240, n_embd=16, n_layer=1, n_head=2)
    write_checkpoint(folder, config, random_params(config))
    return str(folder)


REFUSED = {
    "beam": (generation_case("beam", num_beams=10**5), "num_beams"),
    "beam-sample": (generation_case("beam-sample", num_beams=10**5), "num_beams"),
    "diverse-beam": (generation_case("diverse-beam", num_beams=10**5, num_beam_groups=5, diversity_penalty=0.5),
                     "num_beams"),
    "sample": (generation_case("sample", num_return_sequences=10**5), "num_return_sequences"),
    "contrastive": (generation_case("contrastive", top_k=10**5), "top_k"),
    "10^4 prompts": (generation_case("greedy", prompts=10**4), "the number of prompts"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_will_not_fit_is_refused_at_once_under_a_memory_cap(name):
    case, option = REFUSED[name]
    done, result = run_capped(case)
    assert done.returncode == 0 and result, done.stderr[-2000:]  # no MemoryError: nothing big was allocated
    error = result["error"]
    assert error and error.endswith(".") and ". " not in error and "GiB of memory at its peak" in error, error
    assert f"lower {option}" in error and result["seconds"] < 2


def test_the_command_line_refuses_a_trace_too_big_naming_its_flags(tmp_path):
    argv = ["generate", "hi", "--model", long_context_checkpoint(tmp_path / "long"), "--max-new-tokens", "10000",
            "--trace-top", "50000", "--json", "--trace"]
    done, result = run_capped({"kind": "cli", "argv": argv})
    assert result == {"code": 1, "seconds": result["seconds"]} and result["seconds"] < 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("minigpt: error: this greedy call would need about ")
    assert "mostly the trace (50,000 candidates x 10,000 steps x 1 row)" in done.stderr  # of 50,257
    assert done.stderr.rstrip().endswith("lower --trace-top or --max-new-tokens.")


# ----------------------------------------------------------------------------- the estimate against reality

FITS = {  # settings that fit, each dominated by another part of the estimate
    "sample: scores over the vocabulary": generation_case("sample", TINY, num_return_sequences=150),
    "greedy: 200 prompts": generation_case("greedy", TINY, prompts=200, length=30),
    "beam: 80 beams": generation_case("beam", TINY, num_beams=80),
    "contrastive: top_k 200": generation_case("contrastive", TINY, top_k=200),
    "sample: the trace": generation_case("sample", TINY, num_return_sequences=5, trace_top=3000, max_new_tokens=40),
    "greedy: the prompt's forward pass": generation_case("greedy", TINY, prompts=40, length=250),
}


@linux_only
@pytest.mark.parametrize("name", list(FITS))
def test_the_measured_peak_lies_within_the_stated_factor_of_the_estimate(name):
    done, result = run_capped(FITS[name])
    assert done.returncode == 0 and result and result["error"] is None, done.stderr[-2000:]
    assert result["estimate"] > 80 * 2**20  # large enough that the interpreter's own noise does not matter
    assert 0.4 <= result["peak"] / result["estimate"] <= 1.25, result  # the factor memory.py's docstring states


# ----------------------------------------------------------------------------- a long prompt in pieces


def test_a_prompt_runs_in_pieces_when_its_attention_scores_would_be_large(monkeypatch):
    model = minigpt.load(FULLVOCAB)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50257, (3, 60))
    mask = np.ones_like(ids)
    mask[0, :17] = 0  # left padding, which every piece must respect
    whole = model.forward(ids, model.new_cache(3, 70), mask, last_only=True).logits[:, -1]
    whole_tokens = minigpt.generate(model, [row[m == 1].tolist() for row, m in zip(ids, mask)], max_new_tokens=8)
    widths = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda ids, *a, **k: widths.append(ids.shape[1]) or forward(ids, *a, **k))
    monkeypatch.setattr(model_module, "PREFILL_SCORES_BYTES", 3 * 2 * 60 * 4 * 16)  # 16 positions a piece
    assert model_module.prefill_chunk(model.config, 3, 60) == 16
    cache = model.new_cache(3, 70)
    pieces = model.prefill(ids, cache, mask)
    assert widths == [16, 16, 16, 12] and cache.length == 60
    np.testing.assert_allclose(pieces, whole, rtol=RTOL, atol=RTOL * np.abs(whole).max())  # float32 rounding only
    widths.clear()
    chunked_tokens = minigpt.generate(model, [row[m == 1].tolist() for row, m in zip(ids, mask)], max_new_tokens=8)
    assert widths[:4] == [16, 16, 16, 12] and chunked_tokens.sequences == whole_tokens.sequences


def test_the_size_of_a_piece_depends_on_the_shapes_alone():
    config = GPTConfig(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    assert model_module.prefill_chunk(config, 1, 1024) == 1024  # gpt2, one prompt of 1,024 tokens: one pass
    assert model_module.prefill_chunk(config, 64, 1024) == 85  # 64 of them: 256 MiB of scores at a time
    assert model_module.prefill_chunk(config, 10**6, 1024) == 1
