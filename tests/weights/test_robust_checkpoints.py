"""Checkpoints from the internet: every bad path, file, header, tensor or config ends in one sentence that
names what is wrong and how to fix it, of a documented type (ValueError, FileNotFoundError, or
CheckpointError, ConfigError and hub.DownloadError, which derive from them); the command line prints
that sentence as its one line on stderr and exits non-zero, without a traceback.

tests/test_checkpoint.py holds the first refusals (a wrong shape, a missing tensor, NaN, pickles, garbage);
this file adds the rest of the matrix and runs each category through the library and the command line.
"""

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import (config_json, join_safetensors, random_params, run_program, split_safetensors, to_bfloat16_bytes,
                     write_checkpoint)
from huggingface_hub import constants
from safetensors.numpy import save_file

import minigpt
from minigpt.cli.main import main
from minigpt.core.config import ConfigError, GPTConfig
from minigpt.weights import hub
from minigpt.weights import places as folders
from minigpt.weights.checkpoint import MAX_WEIGHT, CheckpointError

CONFIG = GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
DOCUMENTED = (ValueError, FileNotFoundError)  # CheckpointError, ConfigError and DownloadError are among these


@dataclass
class Bad:
    """A bad checkpoint: what to pass to load, the error it must raise, and words the message must hold."""

    path: Path | str
    error: type
    fragments: tuple[str, ...]


CASES = {}  # name -> function(tmp_path) -> Bad


def case(name):
    def register(build):
        CASES[name] = build
        return build

    return register


def good(tmp_path, config=CONFIG, params=None) -> Path:
    return write_checkpoint(tmp_path / "model", config, params)


def save_as_is(tmp_path, tensors: dict) -> Path:
    """A checkpoint folder whose tensors keep their own dtypes (write_checkpoint makes them all one dtype)."""
    folder = write_checkpoint(tmp_path / "model", CONFIG)
    save_file(tensors, str(weights_of(folder)))
    return folder


def weights_of(folder) -> Path:
    return folder / "model.safetensors"


def rewrite_header(folder, change) -> Path:
    """Apply change(header) to the checkpoint's JSON header, keeping the data and a true header length."""
    header, data = split_safetensors(weights_of(folder))
    change(header)
    join_safetensors(weights_of(folder), header, data)
    return folder


def rewrite_config(folder, **fields) -> Path:
    raw = config_json(CONFIG) | fields
    (folder / "config.json").write_text(json.dumps(raw))
    return folder


def in_order(header) -> list[str]:
    """The header's tensor names in the order their bytes sit in the file."""
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])


# -- paths and folders ------------------------------------------------------------------------------


@case("missing path")
def _(tmp_path):
    return Bad(tmp_path / "nowhere", FileNotFoundError, ("nowhere", "does not exist"))


@case("a path too long to exist")
def _(tmp_path):
    return Bad("x/" * 3000 + "model.safetensors", FileNotFoundError, ("does not exist",))


@case("not a regular file")
def _(tmp_path):
    return Bad("/dev/null", CheckpointError, ("/dev/null is not a regular file", "pass a .safetensors file"))


@case("empty folder")
def _(tmp_path):
    (tmp_path / "empty").mkdir()
    return Bad(tmp_path / "empty", CheckpointError, ("empty", "holds no model.safetensors"))


@case("config.json passed as the weights")
def _(tmp_path):
    return Bad(good(tmp_path) / "config.json", CheckpointError, ("config.json", "pass the folder"))


@case("pickled file passed as the weights")
def _(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    return Bad(tmp_path / "pytorch_model.bin", CheckpointError, ("pytorch_model.bin", "never unpickles"))


@case("folder with only a .pt file")
def _(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"\x80\x04K\x01.")
    return Bad(tmp_path, CheckpointError, ("weights.pt", "never unpickles"))


@case("sharded checkpoint")
def _(tmp_path):
    folder = good(tmp_path)
    weights_of(folder).rename(folder / "model-00001-of-00002.safetensors")
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"")
    return Bad(folder, CheckpointError, ("2 .safetensors files", "merge"))


@case("download error")
def _(tmp_path):
    return Bad("gpt2", FileNotFoundError, ("HF_HUB_OFFLINE", "copy config.json and model.safetensors"))


# -- the file's bytes -------------------------------------------------------------------------------


def truncated(where: str, fragment: str):
    @case(f"truncated {where}")
    def _(tmp_path):
        folder = good(tmp_path)
        blob = weights_of(folder).read_bytes()
        n = int.from_bytes(blob[:8], "little")
        cut = {"to nothing": 0, "inside the length": 5, "after the length": 8, "inside the header": 8 + n // 2,
               "after the header": 8 + n, "inside the data": 8 + n + (len(blob) - 8 - n) // 2, "by one byte": len(blob) - 1}[where]
        weights_of(folder).write_bytes(blob[:cut])
        return Bad(folder, CheckpointError, ("model.safetensors is not a valid safetensors file", fragment, "download"))


truncated("to nothing", "0 bytes long")
truncated("inside the length", "5 bytes long")
truncated("after the length", "but only 0 bytes follow (the file is truncated)")
truncated("inside the header", "bytes follow (the file is truncated)")
truncated("after the header", "(the file is truncated)")
truncated("inside the data", "(the file is truncated)")
truncated("by one byte", "(the file is truncated)")


@case("garbage bytes")
def _(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    return Bad(path, CheckpointError, ("random.safetensors is not a valid safetensors file", "JSON header"))


@case("zero bytes")
def _(tmp_path):
    folder = good(tmp_path)
    weights_of(folder).write_bytes(bytes(4000))
    return Bad(folder, CheckpointError, ("not a valid safetensors file", "not UTF-8 JSON"))


@case("bytes after the last tensor")
def _(tmp_path):
    folder = good(tmp_path)
    with open(weights_of(folder), "ab") as f:
        f.write(b"\0" * 12)
    return Bad(folder, CheckpointError, ("not a valid safetensors file", "12 bytes follow its last tensor"))


# -- a header that lies -----------------------------------------------------------------------------


def lying_header(name, change, *fragments):
    @case(name)
    def _(tmp_path):
        folder = rewrite_header(good(tmp_path), change)
        return Bad(folder, CheckpointError, ("model.safetensors is not a valid safetensors file", *fragments))


def offsets_beyond_the_file(header):
    last = in_order(header)[-1]
    header[last]["data_offsets"][1] += 1000


def overlapping(header):
    """The last 64-byte tensor claims the bytes of the first: both entries are self-consistent."""
    same_size = [k for k in in_order(header) if np.diff(header[k]["data_offsets"])[0] == 64]
    header[same_size[-1]]["data_offsets"] = list(header[same_size[0]]["data_offsets"])


@case("a gap between tensors")
def _(tmp_path):
    """Every tensor from the third on moves 8 bytes later, into 8 more bytes of data."""
    folder = good(tmp_path)
    header, data = split_safetensors(weights_of(folder))
    for k in in_order(header)[2:]:
        header[k]["data_offsets"] = [o + 8 for o in header[k]["data_offsets"]]
    join_safetensors(weights_of(folder), header, data + bytes(8))
    return Bad(folder, CheckpointError, ("model.safetensors is not a valid safetensors file", "leave a gap"))


def setter(key, **fields):
    return lambda header: header[key].update(fields)


lying_header("offsets beyond the file", offsets_beyond_the_file, "past the", "(the file is truncated)")
lying_header("overlapping tensors", overlapping, "overlap")
lying_header("dtype size does not match the bytes", setter("ln_f.bias", dtype="F16"),
             "'ln_f.bias' is F16 of shape [16], which takes 32 bytes", "span 64 bytes")
lying_header("a shape that does not match the bytes", setter("ln_f.bias", shape=[17]), "'ln_f.bias'", "takes 68 bytes")
lying_header("a shape larger than the file", setter("ln_f.bias", shape=[2**40, 2**40, 2**40]), "more bytes than the file holds")
lying_header("unknown dtype", setter("wte.weight", dtype="F33"), "'F33'", "safetensors does not define")
lying_header("negative shape", setter("wte.weight", shape=[-50, -16]), "not a list of non-negative integers")
lying_header("boolean shape", setter("ln_f.bias", shape=[True, 16]), "not a list of non-negative integers")
lying_header("float offsets", setter("ln_f.bias", data_offsets=[0.0, 64.0]), "[0.0, 64.0]", "not [begin, end]")
lying_header("reversed offsets", setter("ln_f.bias", data_offsets=[64, 0]), "not [begin, end]")
lying_header("entry without offsets", lambda h: h["ln_f.bias"].pop("data_offsets"), "'ln_f.bias'", "dtype, shape and data_offsets")
lying_header("entry not an object", lambda h: h.update({"ln_f.bias": 5}), "'ln_f.bias'", "not an object")
lying_header("metadata not strings", lambda h: h.update({"__metadata__": {"format": 1}}), "__metadata__")


def raw_header(name, header: bytes, fragment, header_length=None):
    @case(name)
    def _(tmp_path):
        folder = good(tmp_path)
        _, data = split_safetensors(weights_of(folder))
        join_safetensors(weights_of(folder), header, data, header_length)
        return Bad(folder, CheckpointError, ("model.safetensors is not a valid safetensors file", fragment))


raw_header("header not an object", b"[1, 2, 3]", "a JSON array, not an object")
raw_header("header not JSON", b"{'wte.weight': 1}", "not UTF-8 JSON")
raw_header("header not UTF-8", b'{"\xff\xfe": {}}', "not UTF-8 JSON")
raw_header("header nested too deeply", b"[" * 100_000, "not UTF-8 JSON")
raw_header("header length larger than the file", b"{}", "header of 1000000 bytes, but only", header_length=10**6)
raw_header("huge header length", b"{}", "more than the format's limit", header_length=2**63)
raw_header("header with a huge number", b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}',
           "a number in it is too long to read")


# -- tensors ----------------------------------------------------------------------------------------


@case("integer dtype in a used tensor")
def _(tmp_path):
    params = random_params(CONFIG)
    params["wpe.weight"] = params["wpe.weight"].astype(np.int32)
    return Bad(save_as_is(tmp_path, params), CheckpointError, ("'wpe.weight' is stored as I32", "floating point", "convert"))


@case("missing block")
def _(tmp_path):
    params = {k: v for k, v in random_params(CONFIG).items() if not k.startswith("h.1.")}
    return Bad(good(tmp_path, params=params), CheckpointError, ("lacks tensor 'h.1.ln_1.weight'", "n_layer=2", "only 1 block;"))


@case("both key layouts at once")
def _(tmp_path):
    params = random_params(CONFIG)
    params["transformer.ln_f.bias"] = params["ln_f.bias"]
    return Bad(good(tmp_path, params=params), CheckpointError, ("'ln_f.bias' twice", "keep one"))


@case("infinite weight")
def _(tmp_path):
    params = random_params(CONFIG)
    params["h.1.attn.c_proj.weight"][2, 3] = -np.inf
    return Bad(good(tmp_path, params=params), CheckpointError, ("'h.1.attn.c_proj.weight'", "NaN or infinite"))


@case("NaN stored as bfloat16")
def _(tmp_path):
    folder = good(tmp_path)
    header, data = split_safetensors(weights_of(folder))
    begin, end = header["wte.weight"]["data_offsets"]
    nan = to_bfloat16_bytes(np.full(50 * 16, np.nan, np.float32))
    header["wte.weight"] |= {"dtype": "BF16", "data_offsets": [begin, begin + len(nan)]}
    for key in header:
        if header[key]["data_offsets"][0] >= end:
            header[key]["data_offsets"] = [o - (end - begin - len(nan)) for o in header[key]["data_offsets"]]
    join_safetensors(weights_of(folder), header, data[:begin] + nan + data[end:])
    return Bad(folder, CheckpointError, ("'wte.weight'", "NaN or infinite"))


@case("a weight no trained model has")
def _(tmp_path):
    params = random_params(CONFIG)
    params["h.0.mlp.c_fc.bias"][7] = 6.8e37  # 0.2 with its top exponent bit flipped
    return Bad(good(tmp_path, params=params), CheckpointError, ("'h.0.mlp.c_fc.bias'", "6.8e+37", "damaged"))


@case("lm_head of another shape")
def _(tmp_path):
    params = random_params(CONFIG) | {"lm_head.weight": np.zeros((49, 16), np.float32)}
    return Bad(good(tmp_path, params=params), CheckpointError, ("'lm_head.weight' has shape [49, 16]", "[50, 16]"))


# -- config.json ------------------------------------------------------------------------------------


def raw_config(name, content: bytes, *fragments):
    @case(name)
    def _(tmp_path):
        folder = good(tmp_path)
        (folder / "config.json").write_bytes(content)
        return Bad(folder, ConfigError, fragments)


raw_config("config not JSON", b'{"n_embd": 16,', "config.json is not a readable JSON file", "replace it")
raw_config("config not UTF-8", b'{"n_embd": "\xff"}', "config.json is not a readable JSON file")
raw_config("config nested too deeply", b"[" * 100_000, "config.json is not a readable JSON file", "nests too deeply")
raw_config("config not an object", b'["n_embd", 16]', "config.json must hold a JSON object", "not a JSON array")


@case("config of another model type")
def _(tmp_path):
    return Bad(rewrite_config(good(tmp_path), model_type="bert"), ConfigError, ("'bert'", "only GPT-2"))


def bad_config_value(field, value, fragment):
    @case(f"config {field}={value!r}")
    def _(tmp_path):
        folder = rewrite_config(good(tmp_path), **{field: value})
        return Bad(folder, ConfigError, ("config.json", field, fragment, "correct that value in config.json"))


bad_config_value("n_embd", "768", "must be a positive integer, got '768'")
bad_config_value("n_embd", 12.5, "must be a positive integer, got 12.5")
bad_config_value("n_layer", True, "must be a positive integer, got True")
bad_config_value("n_head", -2, "must be a positive integer, got -2")
bad_config_value("vocab_size", 0, "must be a positive integer, got 0")
bad_config_value("n_positions", None, "must be a positive integer, got None")
bad_config_value("n_inner", True, "must be a positive integer or null, got True")
bad_config_value("n_inner", 64.0, "must be a positive integer or null, got 64.0")
bad_config_value("layer_norm_epsilon", True, "small positive number")
bad_config_value("layer_norm_epsilon", 0, "small positive number")
bad_config_value("layer_norm_epsilon", 1e-60, "small positive number")  # 0 in float32
bad_config_value("layer_norm_epsilon", "1e-5", "small positive number")
bad_config_value("n_head", 3, "n_embd (16) must be divisible by n_head (3)")


@case("config n_layer smaller than the checkpoint")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), n_layer=1)
    return Bad(folder, CheckpointError, ("tensors of 2 transformer blocks (h.0 to h.1)", "n_layer=1", "set n_layer to 2"))


@case("config n_layer larger than the checkpoint")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), n_layer=3)
    return Bad(folder, CheckpointError, ("lacks tensor 'h.2.ln_1.weight'", "n_layer=3", "only 2 blocks;"))


@case("config n_layer astronomically large")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), n_layer=10**30)
    return Bad(folder, CheckpointError, ("lacks tensor 'h.2.ln_1.weight'", f"n_layer={10**30}"))


@case("config vocab_size disagrees with wte")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), vocab_size=60)
    return Bad(folder, CheckpointError, ("'wte.weight' has shape [50, 16], but the config implies [60, 16]", "vocab_size"))


@case("config n_positions disagrees with wpe")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), n_positions=1024)
    return Bad(folder, CheckpointError, ("'wpe.weight' has shape [16, 16], but the config implies [1024, 16]", "n_positions"))


@case("config n_embd larger than the weights")
def _(tmp_path):
    folder = rewrite_config(good(tmp_path), n_embd=10**20, n_head=1)
    return Bad(folder, CheckpointError, ("'wte.weight' has shape [50, 16]", "n_embd"))


@case("bare file whose shapes give no config")
def _(tmp_path):
    folder = rewrite_header(good(tmp_path), setter("wte.weight", shape=[800]))
    return Bad(weights_of(folder), ConfigError, ("'wte.weight' has shape [800]", "2-D [vocab_size, n_embd]"))


@case("bare file whose blocks skip a number")
def _(tmp_path):
    params = random_params(CONFIG)
    params = {k.replace("h.1.", "h.5."): v for k, v in params.items()}
    return Bad(weights_of(good(tmp_path, params=params)), CheckpointError, ("lacks tensor 'h.1.ln_1.weight'", "n_layer=6"))


# -- the tests --------------------------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network: MINIGPT_WEIGHTS is an empty folder, huggingface_hub is offline and its cache empty, and no
    source checkout's weights/ is looked in."""
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(folders, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def assert_one_sentence(message: str, bad: Bad):
    assert "\n" not in message and message.endswith("."), message
    assert "; " in message, f"no way to fix it: {message}"  # what is wrong; how to fix it
    for fragment in bad.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize("name", CASES)
def test_library_raises_one_documented_sentence(name, tmp_path, offline):
    bad = CASES[name](tmp_path)
    start = time.perf_counter()
    with pytest.raises(DOCUMENTED) as err:
        minigpt.load(bad.path, n_head=2)
    assert time.perf_counter() - start < 20  # a hang guard: the refusal takes milliseconds, busy machine or not
    assert isinstance(err.value, bad.error), f"{type(err.value).__name__}: {err.value}"
    assert_one_sentence(str(err.value), bad)


CLI_CATEGORIES = [
    "missing path", "empty folder", "download error", "pickled file passed as the weights", "truncated inside the header",
    "truncated inside the data", "garbage bytes", "overlapping tensors", "unknown dtype", "huge header length",
    "integer dtype in a used tensor", "missing block", "infinite weight", "config not JSON", "config n_embd='768'",
    "config n_layer smaller than the checkpoint", "config vocab_size disagrees with wte",
]


@pytest.mark.parametrize("name", CLI_CATEGORIES)
def test_cli_prints_one_line_and_exits_non_zero(name, tmp_path, offline, capsys):
    bad = CASES[name](tmp_path)
    code = main(["generate", "hi", "--model", str(bad.path)])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.startswith("minigpt: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert_one_sentence(err.removeprefix("minigpt: error: ").rstrip("\n"), bad)


def test_python_dash_m_prints_one_line(tmp_path):
    bad = CASES["truncated inside the data"](tmp_path)
    proc = run_program("generate", "hi", "--model", str(bad.path))
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert_one_sentence(proc.stderr.strip(), bad)


def test_download_error_is_a_file_not_found_error():
    assert issubclass(hub.DownloadError, FileNotFoundError)
    assert issubclass(CheckpointError, ValueError) and issubclass(ConfigError, ValueError)


# -- what still loads -------------------------------------------------------------------------------


def test_missing_config_keys_fall_back_to_gpt2(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert GPTConfig.from_json(tmp_path / "config.json") == GPTConfig()
    config = GPTConfig(n_embd=16, n_layer=1, n_head=2)  # GPT-2's vocabulary and context, a tiny width
    folder = write_checkpoint(tmp_path / "partial", config, with_config=False)
    (folder / "config.json").write_text(json.dumps({"n_embd": 16, "n_layer": 1, "n_head": 2}))
    model = minigpt.load(folder)
    assert model.config == config
    assert np.isfinite(model([464, 3290])).all()


def test_unused_tensors_of_any_dtype_are_ignored_with_a_warning(tmp_path):
    params = random_params(CONFIG)
    extra = {"position_ids": np.arange(16, dtype=np.int64), "score.weight": np.ones((2, 16), np.float64),
             "h.0.attn.bias": np.tril(np.ones((1, 1, 16, 16), bool))}  # a buffer: skipped without a word
    folder = save_as_is(tmp_path, params | extra)
    with pytest.warns(UserWarning, match=r"ignoring 2 tensors.*'position_ids', 'score.weight'"):
        model = minigpt.load(folder)
    reference = minigpt.load(good(tmp_path / "plain", params=params))
    np.testing.assert_array_equal(model([1, 2, 3]), reference([1, 2, 3]))


def test_weights_at_the_limit_still_load(tmp_path):
    params = random_params(CONFIG)
    params["ln_f.bias"][0] = np.float32(MAX_WEIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and without a warning
        model = minigpt.load(good(tmp_path, params=params))
    assert model([1, 2, 3]).dtype == np.float32
