"""Loading: both key layouts, F32/F16/BF16 storage, configs inferred from shapes, and refusals."""

import json
import mmap
import pickle

import numpy as np
import pytest
from helpers import random_params, to_bfloat16_bytes, write_checkpoint, write_raw_safetensors
from safetensors.numpy import save_file

import minigpt
from minigpt.core.config import ConfigError, GPTConfig
from minigpt.weights.checkpoint import CheckpointError, read_safetensors

CONFIG = GPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
IDS = [[3, 1, 4, 1, 5, 9, 2, 6]]


def test_hub_and_pretrained_layouts_load_the_same_model(tmp_path):
    params = random_params(CONFIG)
    hub = write_checkpoint(tmp_path / "hub", CONFIG, params, layout="hub")
    # The hub's files also carry the causal-mask buffers, which are not weights.
    tensors = dict(params)
    for i in range(CONFIG.n_layer):
        tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 16, 16), np.float32))
        tensors[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
    save_file(tensors, str(hub / "model.safetensors"))
    pretrained = write_checkpoint(tmp_path / "pre", CONFIG, params, layout="pretrained")
    with_head = {"transformer." + k: v for k, v in params.items()} | {"lm_head.weight": params["wte.weight"]}
    save_file(with_head, str(pretrained / "model.safetensors"))
    a, b = minigpt.load(hub), minigpt.load(pretrained)
    np.testing.assert_array_equal(a(IDS), b(IDS))
    assert a.config == b.config


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_float_storage_becomes_float32(tmp_path, dtype):
    params = random_params(CONFIG)
    model = minigpt.load(write_checkpoint(tmp_path, CONFIG, params, dtype=dtype))
    np.testing.assert_array_equal(model.params["wte"]["weight"], params["wte.weight"].astype(dtype).astype(np.float32))
    assert model(IDS).dtype == np.float32


def test_bfloat16_storage(tmp_path):
    params = random_params(CONFIG)
    raw = {name: ("BF16", value.shape, to_bfloat16_bytes(value)) for name, value in params.items()}
    write_raw_safetensors(tmp_path / "model.safetensors", raw)
    (tmp_path / "config.json").write_text(json.dumps({"n_embd": 16, "n_layer": 2, "n_head": 2, "vocab_size": 50, "n_positions": 16}))
    model = minigpt.load(tmp_path)
    truncated = (params["wte.weight"].view(np.uint32) & 0xFFFF0000).view(np.float32)
    np.testing.assert_array_equal(model.params["wte"]["weight"], truncated)


def test_bare_file_infers_config(tmp_path):
    config = GPTConfig(vocab_size=50, n_positions=16, n_embd=768, n_layer=1, n_head=12, n_inner=8)
    write_checkpoint(tmp_path, config, with_config=False)
    model = minigpt.load(tmp_path / "model.safetensors")
    assert model.config == config


def test_bare_file_with_unknown_width_asks_for_n_head(tmp_path):
    write_checkpoint(tmp_path, CONFIG, with_config=False)
    with pytest.raises(ConfigError, match="n_head"):
        minigpt.load(tmp_path / "model.safetensors")
    assert minigpt.load(tmp_path / "model.safetensors", n_head=2).config.n_head == 2


def test_pickled_weights_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Exploit()))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="never unpickles"):
        minigpt.load(tmp_path)
    assert not marker.exists()


def test_wrong_shape_names_the_tensor(tmp_path):
    params = random_params(CONFIG)
    params["h.1.mlp.c_fc.weight"] = params["h.1.mlp.c_fc.weight"][:, :10]
    write_checkpoint(tmp_path, CONFIG, params)
    with pytest.raises(CheckpointError, match=r"'h\.1\.mlp\.c_fc\.weight' has shape \[16, 10\].*\[16, 64\]"):
        minigpt.load(tmp_path)


def test_missing_tensor_and_integer_dtype(tmp_path):
    params = random_params(CONFIG)
    del params["ln_f.bias"]
    write_checkpoint(tmp_path / "a", CONFIG, params)
    with pytest.raises(CheckpointError, match="ln_f.bias"):
        minigpt.load(tmp_path / "a")
    params = random_params(CONFIG)
    params["wpe.weight"] = params["wpe.weight"].astype(np.int32)
    save_file(params, str(tmp_path / "b.safetensors"))
    with pytest.raises(CheckpointError, match="'wpe.weight' is stored as I32"):
        read_safetensors(tmp_path / "b.safetensors")


def test_non_finite_weights_are_named(tmp_path):
    params = random_params(CONFIG)
    params["h.0.ln_2.bias"][3] = np.nan
    write_checkpoint(tmp_path, CONFIG, params)
    with pytest.raises(CheckpointError, match="h.0.ln_2.bias.*NaN"):
        minigpt.load(tmp_path)


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        minigpt.load(tmp_path / "model.safetensors", n_head=2)


def test_unsupported_config_is_refused(tmp_path):
    write_checkpoint(tmp_path, CONFIG)
    raw = json.loads((tmp_path / "config.json").read_text()) | {"activation_function": "relu"}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="activation_function"):
        minigpt.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(raw | {"activation_function": "gelu_new", "n_head": 5}))
    with pytest.raises(ConfigError, match="divisible by n_head"):
        minigpt.load(tmp_path)


def test_extra_tensors_are_ignored_with_a_warning(tmp_path):
    params = random_params(CONFIG) | {"score.weight": np.zeros((2, 16), np.float32)}
    write_checkpoint(tmp_path, CONFIG, params)
    with pytest.warns(UserWarning, match="score.weight"):
        minigpt.load(tmp_path)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_the_tied_output_matrix_is_read_transposed_in_blocks_and_stored_once(tmp_path, dtype):
    """wte [V, C] is read straight into a contiguous [C, V] (the output layer's layout), a few rows at a
    time; wte and lm_head are two views of one buffer, not two copies."""
    import minigpt.weights.checkpoint as ckpt
    params = random_params(CONFIG)
    folder = write_checkpoint(tmp_path, CONFIG, params, dtype=dtype)
    path = folder / "model.safetensors"
    header, data_start = ckpt.read_header(path)
    with open(path, "rb") as f:
        f.seek(data_start + header["wte.weight"]["data_offsets"][0])
        blocks = ckpt.read_transposed(f, header["wte.weight"], path, rows=7)  # 50 rows: 7 blocks, the last short
    np.testing.assert_array_equal(blocks, params["wte.weight"].astype(dtype).astype(np.float32).T)
    assert blocks.flags.c_contiguous and blocks.dtype == np.float32
    model = minigpt.load(folder)
    wte, head = model.params["wte"]["weight"], model.params["lm_head"]["weight"]
    assert head.shape == (CONFIG.n_embd, CONFIG.vocab_size) and head.flags.c_contiguous
    assert np.shares_memory(wte, head)
    np.testing.assert_array_equal(wte, params["wte.weight"].astype(dtype).astype(np.float32))
    down = model.params["h"][1]["mlp"]["c_proj"]["weight"]  # also column-major: decoding's one-row product
    assert down.flags.f_contiguous and down.shape == (CONFIG.d_mlp, CONFIG.n_embd)
    np.testing.assert_array_equal(down, params["h.1.mlp.c_proj.weight"].astype(dtype).astype(np.float32))


def is_mapped(array) -> bool:
    """A view of a memory map of the file: owns no memory, cannot be written, and its base is the mmap."""
    while isinstance(array, np.ndarray) and not array.flags.owndata:
        array = array.base
    return isinstance(array, memoryview) and isinstance(array.obj, mmap.mmap)


def test_float32_weights_are_mapped_from_the_file_and_the_rest_copied(tmp_path):
    params = random_params(CONFIG)
    model = minigpt.load(str(write_checkpoint(tmp_path / "f32", CONFIG, params)))
    block = model.params["h"][0]
    for name, tensor in [("wpe", model.params["wpe"]["weight"]), ("c_attn", block["attn"]["c_attn"]["weight"]),
                         ("c_fc", block["mlp"]["c_fc"]["weight"]), ("ln_1", block["ln_1"]["bias"])]:
        assert is_mapped(tensor) and not tensor.flags.writeable, name
    # kept column-major for speed: copies, transposed
    for tensor in (model.params["lm_head"]["weight"], block["mlp"]["c_proj"]["weight"]):
        assert not is_mapped(tensor) and tensor.dtype == np.float32
    np.testing.assert_array_equal(block["attn"]["c_attn"]["weight"], params["h.0.attn.c_attn.weight"])
    half = minigpt.load(str(write_checkpoint(tmp_path / "f16", CONFIG, params, dtype=np.float16)))
    assert not is_mapped(half.params["h"][0]["attn"]["c_attn"]["weight"])  # widened: a copy


def test_a_float32_tensor_not_aligned_in_the_file_is_copied(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for padding in range(4):  # the data starts at 8 + header length: aligned for one of these four
        path = tmp_path / f"pad{padding}.safetensors"
        write_raw_safetensors(path, {"wpe.weight": ("F32", [3, 4], x.tobytes())}, header_padding=padding)
        loaded = read_safetensors(path)["wpe.weight"]
        np.testing.assert_array_equal(loaded, x)
        assert loaded.ctypes.data % 4 == 0  # aligned in memory, mapped or copied


def test_a_tensor_cut_short_while_reading_is_named(tmp_path):
    """The header is checked against the file's size first; a file that shrinks after that is still caught."""
    import minigpt.weights.checkpoint as ckpt
    path = write_checkpoint(tmp_path, CONFIG, random_params(CONFIG)) / "model.safetensors"
    header, data_start = ckpt.read_header(path)
    entries = ckpt.weight_entries(header, path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 10)
    with pytest.raises(CheckpointError, match="ended while reading its tensors"):
        ckpt.read_tensors(path, entries, data_start, sorted(entries, key=lambda n: entries[n]["data_offsets"]))
