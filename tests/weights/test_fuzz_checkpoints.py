"""Fuzzing the loader: random damage to a small checkpoint must end in a clean error or a working model.

Each case takes a tiny GPT-2 checkpoint, damages it one way (flipped bits, overwritten, inserted or
deleted bytes, a cut, the header's bytes or digits or fields changed, a special float in the data, a
damaged config.json), and loads it as a folder (with config.json) or as a bare file. The load must end
in CheckpointError, ConfigError, ValueError or FileNotFoundError with a one-line message that names the
damaged file, or in a model whose logits are finite float32; never another exception, a hang (each load
has a time budget, enforced by an alarm) or an allocation out of proportion to the file (tracemalloc's
peak stays under 10 times the file's size plus 1 MB). The cases are seeded, so a failure names a case
that fails again; MINIGPT_FUZZ_CASES=5000 runs more of them.
"""

import json
import os
import signal
import time
import tracemalloc
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import write_checkpoint

import minigpt
from minigpt.core.config import ConfigError, GPTConfig
from minigpt.weights.checkpoint import CheckpointError
from minigpt.weights.header import DTYPE_BITS

CONFIG = GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
N_CASES = int(os.environ.get("MINIGPT_FUZZ_CASES", 150))
# Seconds per load before the case counts as a hang. A load takes milliseconds; the bound is four orders of
# magnitude above that, so that a machine busy with other work never trips it, and only a loader stuck in
# a loop (or reading gigabytes a header promised) does.
TIME_BUDGET = 20.0
MEMORY_SLACK = 1 << 20  # bytes allowed beyond 10 x the file's size
CLEAN = (CheckpointError, ConfigError, ValueError, FileNotFoundError)


@dataclass(frozen=True)
class Pristine:
    weights: bytes  # model.safetensors
    config: bytes  # config.json
    header_end: int  # 8 + the header's length: where the data starts


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    folder = write_checkpoint(tmp_path_factory.mktemp("pristine"), CONFIG)
    weights = (folder / "model.safetensors").read_bytes()
    return Pristine(weights, (folder / "config.json").read_bytes(), 8 + int.from_bytes(weights[:8], "little"))


# -- the mutations: (rng, pristine) -> (weights, config) --------------------------------------------


def flip_bits(rng, p):
    blob = bytearray(p.weights)
    for at in rng.integers(0, len(blob), size=rng.integers(1, 9)):
        blob[at] ^= 1 << int(rng.integers(0, 8))
    return bytes(blob), p.config


def overwrite(rng, p):
    blob = bytearray(p.weights)
    at, n = int(rng.integers(0, len(blob))), int(rng.integers(1, 17))
    blob[at : at + n] = rng.bytes(n)[: len(blob) - at]
    return bytes(blob), p.config


def truncate(rng, p):
    return p.weights[: int(rng.integers(0, len(p.weights)))], p.config


def insert(rng, p):
    at = int(rng.integers(0, len(p.weights) + 1))
    return p.weights[:at] + rng.bytes(int(rng.integers(1, 17))) + p.weights[at:], p.config


def delete(rng, p):
    at = int(rng.integers(0, len(p.weights)))
    return p.weights[:at] + p.weights[at + int(rng.integers(1, 17)) :], p.config


def header_bytes(rng, p):
    """Overwrite a few bytes of the length or the JSON header, where every byte matters."""
    blob = bytearray(p.weights)
    for at in rng.integers(0, p.header_end, size=rng.integers(1, 5)):
        blob[at] = int(rng.integers(0, 256))
    return bytes(blob), p.config


def header_digits(rng, p):
    """Change one digit of the JSON header: still valid JSON of the same length, now lying about a shape
    or an offset."""
    blob = bytearray(p.weights)
    digits = [i for i in range(8, p.header_end) if chr(blob[i]).isdigit()]
    at = digits[int(rng.integers(0, len(digits)))]
    blob[at] = ord(str(int(rng.integers(0, 10))))
    return bytes(blob), p.config


def header_field(rng, p):
    """Change one field of one header entry, and write the header back with its true length."""
    header = json.loads(p.weights[8 : p.header_end])
    data = p.weights[p.header_end :]
    key = sorted(header)[int(rng.integers(0, len(header)))]
    entry = header[key]
    choice = int(rng.integers(0, 8))
    if choice == 0:
        entry["dtype"] = [*DTYPE_BITS, "F33", "", 32][int(rng.integers(0, len(DTYPE_BITS) + 3))]
    elif choice == 1 and entry["shape"]:
        entry["shape"][int(rng.integers(0, len(entry["shape"])))] = int(rng.choice([0, 1, -1, 3, 2**31, 2**64, 10**30]))
    elif choice == 2:
        entry["shape"] = entry["shape"][::-1] + ([1] if rng.random() < 0.5 else [])  # transposed, or a dim more
    elif choice == 3:
        entry["data_offsets"][int(rng.integers(0, 2))] += int(rng.choice([-4, -1, 1, 4, 64, 2**40]))
    elif choice == 4:  # renamed: another block, a block number that is no number, or no block at all
        prefix = ["h.7.", "h.01.", "h.x.", "h.-1.", "h.", "h", "h.99999999999999999999.", "transformer.", "x"][int(rng.integers(0, 9))]
        header[prefix + key.split(".", 2)[-1] if key.startswith("h.") else prefix + key] = header.pop(key)
    elif choice == 5:
        header["transformer." + key] = dict(entry)  # the same tensor twice, under both layouts
    elif choice == 6:
        entry[["dtype", "shape", "data_offsets"][int(rng.integers(0, 3))]] = [None, "x", 1.5, {}, [True]][int(rng.integers(0, 5))]
    else:
        del header[key]
    blob = json.dumps(header).encode()
    return len(blob).to_bytes(8, "little") + blob + data, p.config


def special_float(rng, p):
    """One weight becomes NaN, an infinity, a huge or a tiny (subnormal) number."""
    blob = bytearray(p.weights)
    at = p.header_end + 4 * int(rng.integers(0, (len(blob) - p.header_end) // 4))
    value = [np.nan, np.inf, -np.inf, 3e38, -1e6, 1e-40, 0.0][int(rng.integers(0, 7))]
    blob[at : at + 4] = np.float32(value).tobytes()
    return bytes(blob), p.config


def damaged_config(rng, p):
    """config.json gets a byte overwritten, inserted or deleted, or a value of another type."""
    text = bytearray(p.config)
    choice = int(rng.integers(0, 3))
    at = int(rng.integers(0, len(text)))
    if choice == 0:
        text[at] = int(rng.integers(0, 256))
    elif choice == 1:
        text[at:at] = rng.bytes(int(rng.integers(1, 5)))
    else:
        raw = json.loads(p.config)
        key = sorted(raw)[int(rng.integers(0, len(raw)))]
        raw[key] = [None, True, "16", 16.5, -16, 0, [16], {}, 10**40, 2][int(rng.integers(0, 10))]
        text = bytearray(json.dumps(raw).encode())
    return p.weights, bytes(text)


MUTATIONS = [flip_bits, overwrite, truncate, insert, delete, header_bytes, header_digits, header_field, special_float,
             damaged_config]
CASES = [(i, MUTATIONS[i % len(MUTATIONS)]) for i in range(N_CASES)]


# -- running one case -------------------------------------------------------------------------------


class OverBudget(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` in the loader can swallow it."""


@dataclass
class Outcome:
    model: object
    error: BaseException | None
    seconds: float
    peak: int  # bytes: tracemalloc's high-water mark during the load, above what was allocated before it


def load_within_budget(path, n_head) -> Outcome:
    def alarm(signum, frame):
        raise OverBudget(f"loading took more than {TIME_BUDGET} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_BUDGET)
    tracing = tracemalloc.is_tracing()  # python -X tracemalloc: keep the outer trace running
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    model = error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unused tensors are warned about; that is not an error
            model = minigpt.load(path, n_head=n_head)
    except Exception as e:  # judged by the caller: only the documented types pass
        error = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - before
        if not tracing:
            tracemalloc.stop()
    return Outcome(model, error, seconds, peak)


def mutated(i, mutation, pristine, tmp_path):
    """Case i: the damaged files written to disk, and how to load them (a folder, or a bare file)."""
    rng = np.random.default_rng(i)
    weights, config = mutation(rng, pristine)
    as_folder = mutation is damaged_config or (i // len(MUTATIONS)) % 2 == 0
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    if as_folder:
        (folder / "config.json").write_bytes(config)
        return folder, None, len(weights) + len(config)
    return folder / "model.safetensors", 2, len(weights)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the time budget needs SIGALRM")
@pytest.mark.parametrize("i, mutation", CASES, ids=[f"{m.__name__}-{i}" for i, m in CASES])
def test_damaged_checkpoint_fails_cleanly_or_works(i, mutation, pristine, tmp_path):
    path, n_head, size = mutated(i, mutation, pristine, tmp_path)
    outcome = load_within_budget(path, n_head)
    assert outcome.peak <= 10 * size + MEMORY_SLACK, f"loading a {size}-byte checkpoint allocated {outcome.peak} bytes"
    if outcome.error is not None:
        error = outcome.error
        assert isinstance(error, CLEAN), f"{type(error).__name__} is not a documented error: {error}"
        message = str(error)
        assert "\n" not in message, f"not one line: {message!r}"
        assert "model.safetensors" in message or "config.json" in message, f"the message names no file: {message!r}"
        return
    model = outcome.model
    ids = np.random.default_rng(i).integers(0, model.config.vocab_size, size=min(8, model.config.n_positions))
    logits = model(ids)
    assert logits.dtype == np.float32 and logits.shape == (len(ids), model.config.vocab_size)
    assert np.isfinite(logits).all(), f"case {i} loaded a model whose logits are not finite"


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the time budget needs SIGALRM")
def test_the_fuzzer_reaches_both_outcomes_and_many_checks(pristine, tmp_path):
    """Guard against a vacuous fuzzer: the cases must load sometimes, and fail at many different checks."""
    loaded, checks = 0, set()
    for i, mutation in CASES:
        path, n_head, _ = mutated(i, mutation, pristine, tmp_path / str(i))
        outcome = load_within_budget(path, n_head)
        if outcome.error is None:
            loaded += 1
        else:
            # The message with its path and numbers taken out: which check refused the file.
            message = str(outcome.error).replace(str(tmp_path / str(i)), "")
            checks.add("".join(c for c in message if not c.isdigit()).split(";")[0][:60])
    assert loaded >= 10, f"only {loaded} of {N_CASES} damaged checkpoints loaded"
    assert len(checks) >= 15, f"the damage reached only {len(checks)} distinct checks: {sorted(checks)}"
