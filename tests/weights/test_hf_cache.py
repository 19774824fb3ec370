"""The Hugging Face cache as the third place minigpt looks, without the internet: a FakeHub (tests/fake_hub.py) on
127.0.0.1 plays the hub, and huggingface_hub itself lays the cache out (blobs/, refs/main, snapshots/ of links) in
a temporary folder, as transformers would. A name is looked up in $MINIGPT_WEIGHTS/<name>, the checkout's
weights/<name>, then the cache; a download goes into the first of the first two that exists, else into the cache,
and never into the working directory."""

import itertools
import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, require_reference
from fake_hub import COMMIT, FakeHub, assert_one_sentence, closed_port_url, go_offline, point_hub_at, serving
from helpers import FIXTURES, installed_package, program_env, run_cli, run_program
from huggingface_hub import constants, hf_hub_download, scan_cache_dir, try_to_load_from_cache
from huggingface_hub.file_download import _CACHED_NO_EXIST
from huggingface_hub.utils import EntryNotFoundError

import minigpt
from minigpt.weights import header as safetensors_header
from minigpt.weights import hub
from minigpt.weights import places as folders

GPT2 = "openai-community/gpt2"
FILES = ("config.json", "model.safetensors")
CHECKPOINT = {name: (FIXTURES / "fullvocab" / name).read_bytes() for name in FILES}  # a GPT-2 that loads
PICKLE = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94."  # os.system


class Opens:
    """The paths Python opens (the audit event "open": builtins.open, io.open, os.open) while `paths` is a list."""

    paths: list[str] | None = None
    hooked = False

    @staticmethod
    def hook(event: str, args: tuple):
        if event == "open" and Opens.paths is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            Opens.paths.append(os.fsdecode(args[0]))


@pytest.fixture
def opened():
    """The list of paths opened during the test. The hook stays (hooks cannot be removed), recording nothing."""
    if not Opens.hooked:
        sys.addaudithook(Opens.hook)
        Opens.hooked = True
    Opens.paths = []
    try:
        yield Opens.paths
    finally:
        Opens.paths = None


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An installed minigpt (no MINIGPT_WEIGHTS, no checkout) run from an empty folder; the cache a temporary
    HF_HOME's hub/ (huggingface_hub reads HF_HOME once, at import: here its result is set)."""
    monkeypatch.delenv("MINIGPT_WEIGHTS", raising=False)
    monkeypatch.setattr(folders, "CHECKOUT", tmp_path / "site-packages")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "hf-home" / "hub"


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, cache):
    """A FakeHub serving a loadable gpt2 and a repo with only pytorch_model.bin, huggingface_hub aimed at it."""
    with serving(FakeHub()) as fake:
        fake.repos[GPT2] = dict(CHECKPOINT)
        fake.repos["minigpt-test/pickled"] = {"config.json": CHECKPOINT["config.json"], "pytorch_model.bin": PICKLE}
        point_hub_at(fake.url, monkeypatch, tmp_path)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        yield fake


def fill_cache(fake: FakeHub, repo: str, *filenames: str) -> Path:
    """The files downloaded into the cache by huggingface_hub, as transformers does; the requests forgotten.
    Returns the snapshot folder."""
    paths = [hf_hub_download(repo, filename, cache_dir=constants.HF_HUB_CACHE) for filename in filenames]
    fake.requests.clear()
    return Path(paths[-1]).parent


def snapshot_of(cache: Path, repo: str = GPT2) -> Path:
    return cache / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT


def place(folder: Path) -> Path:
    """The two files in a folder of minigpt's own."""
    folder.mkdir(parents=True)
    for name, data in CHECKPOINT.items():
        (folder / name).write_bytes(data)
    return folder


# -- found in the cache, with no request ----------------------------------------------------------------


@pytest.mark.parametrize("network", ["the hub answers", "HF_HUB_OFFLINE", "a closed port"])
def test_a_cache_laid_out_by_huggingface_hub_loads_with_no_request(fake_hub, cache, network, monkeypatch, tmp_path):
    snapshot = fill_cache(fake_hub, GPT2, *FILES)
    assert snapshot == snapshot_of(cache) and (snapshot / "model.safetensors").is_symlink()  # links into blobs/
    if network == "HF_HUB_OFFLINE":
        go_offline(monkeypatch)
    if network == "a closed port":
        point_hub_at(closed_port_url(), monkeypatch, tmp_path, no_backoff=False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    said = []
    model = minigpt.load("gpt2", report=said.append)
    reference = minigpt.load(FIXTURES / "fullvocab")
    assert np.array_equal(model.params["wte"]["weight"], reference.params["wte"]["weight"])
    assert hub.resolve("gpt2") == hub.download("openai-community/gpt2") == folders.find("gpt2") == snapshot
    assert fake_hub.requests == [] and said == []
    assert os.listdir() == [] and not (tmp_path / "site-packages").exists()  # nothing written anywhere


PLACES = ("MINIGPT_WEIGHTS", "checkout", "cache")


@pytest.mark.parametrize("holding", list(itertools.product([False, True], repeat=3)),
                         ids=lambda holding: "+".join(p for p, h in zip(PLACES, holding) if h) or "none")
def test_the_first_place_that_holds_both_files_wins(fake_hub, cache, tmp_path, monkeypatch, holding):
    env, checkout = tmp_path / "env-weights", tmp_path / "checkout"
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(env))
    (checkout / "weights").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'minigpt'\n")
    monkeypatch.setattr(folders, "CHECKOUT", checkout)
    places = [env / "gpt2", checkout / "weights" / "gpt2", snapshot_of(cache)]
    for folder, holds in zip(places[:2], holding):
        if holds:
            place(folder)
    if holding[2]:
        fill_cache(fake_hub, GPT2, *FILES)
    first = next((folder for folder, holds in zip(places, holding) if holds), None)
    assert folders.find("gpt2") == first
    assert hub.resolve("gpt2") == (first or env / "gpt2")  # none: downloaded into $MINIGPT_WEIGHTS/gpt2
    assert (fake_hub.requests == []) == (first is not None)
    if first is None:
        assert {name: (env / "gpt2" / name).read_bytes() for name in FILES} == CHECKPOINT
    assert os.listdir() == []


def test_a_place_with_one_of_the_two_files_is_passed_over(fake_hub, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(tmp_path / "env-weights"))
    (tmp_path / "env-weights" / "gpt2").mkdir(parents=True)
    (tmp_path / "env-weights" / "gpt2" / "config.json").write_bytes(CHECKPOINT["config.json"])
    snapshot = fill_cache(fake_hub, GPT2, *FILES)
    assert hub.resolve("gpt2") == snapshot and fake_hub.requests == []


@pytest.mark.parametrize("settings", ["MINIGPT_WEIGHTS and a checkout", "a checkout", "neither"])
def test_a_download_goes_into_minigpt_weights_else_the_checkout_else_the_cache(fake_hub, cache, tmp_path, monkeypatch,
                                                                              settings):
    env, checkout = tmp_path / "env-weights", tmp_path / "checkout"
    if settings.startswith("MINIGPT_WEIGHTS"):
        monkeypatch.setenv("MINIGPT_WEIGHTS", str(env))
    if "checkout" in settings:
        (checkout / "weights").mkdir(parents=True)
        (checkout / "pyproject.toml").write_text("[project]\nname = 'minigpt'\n")
        monkeypatch.setattr(folders, "CHECKOUT", checkout)
    expected = {"MINIGPT_WEIGHTS and a checkout": env / "gpt2", "a checkout": checkout / "weights" / "gpt2",
                "neither": snapshot_of(cache)}[settings]
    folder = hub.download("gpt2")
    assert folder == expected
    assert {name: (folder / name).read_bytes() for name in FILES} == CHECKPOINT
    assert (cache / "models--openai-community--gpt2").exists() == (settings == "neither")
    assert (checkout / "weights" / "gpt2").exists() == (settings == "a checkout")
    assert os.listdir() == []  # never the working directory


def test_a_download_into_the_cache_is_announced_and_laid_out_as_huggingface_hub_does(fake_hub, cache, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the cache is then ~/hf-home/hub, and shown so
    said = []
    folder = hub.download("gpt2", report=lambda line: said.append((line, list(fake_hub.requests))))
    [(line, requests_then)] = said
    size = hub._size(sum(len(data) for data in CHECKPOINT.values()))
    assert line == (f"downloading gpt2 (config.json and model.safetensors, {size}) from {fake_hub.url}/{GPT2} "
                    f"into ~/hf-home/hub/models--openai-community--gpt2/snapshots/{COMMIT}/")
    assert [method for method, _ in requests_then] == ["HEAD", "HEAD"]  # sizes asked, not a byte fetched
    assert folder == snapshot_of(cache)
    info = scan_cache_dir(cache)  # huggingface_hub's own reading of the cache: what transformers finds
    assert info.warnings == [] and [repo.repo_id for repo in info.repos] == [GPT2]
    [revision] = next(iter(info.repos)).revisions
    assert revision.commit_hash == COMMIT and revision.refs == {"main"}
    assert sorted(file.file_name for file in revision.files) == sorted(FILES)
    assert try_to_load_from_cache(GPT2, "model.safetensors", cache_dir=cache) == str(folder / "model.safetensors")
    fake_hub.requests.clear()
    assert hub.download("gpt2") == folder and fake_hub.requests == []
    assert os.listdir() == []


def test_transformers_reads_what_minigpt_downloaded_into_the_cache(fake_hub, cache, monkeypatch):
    torch, transformers = require_reference()
    folder = hub.download("gpt2")
    seen = list(fake_hub.requests)
    go_offline(monkeypatch)  # from the cache alone
    theirs = transformers.GPT2LMHeadModel.from_pretrained(GPT2, cache_dir=str(cache), local_files_only=True,
                                                          dtype=torch.float32)  # as minigpt computes
    ids = [464, 3290]
    with torch.no_grad():
        logits = theirs(torch.tensor([ids])).logits[0].numpy()
    assert_close(minigpt.load(folder)(ids), logits)
    assert fake_hub.requests == seen


# -- what a failure leaves ------------------------------------------------------------------------------


def test_an_interrupted_download_into_the_cache_leaves_no_file_that_looks_whole(fake_hub, cache):
    snapshot = snapshot_of(cache)
    in_flight = []  # what the cache holds while the half-sent download hangs
    fake_hub.before_hang_up = lambda: in_flight.append(
        (len(list(cache.rglob("*.incomplete"))), (snapshot / "model.safetensors").exists()))
    fake_hub.cut.add("model.safetensors")
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "model.safetensors", "models--openai-community--gpt2", "trying again starts afresh")
    assert in_flight == [(1, False)]  # the bytes went to a temporary file, not to the blob or the snapshot
    assert list(cache.rglob("*.incomplete")) == [] and not list(cache.rglob("model.safetensors"))
    assert try_to_load_from_cache(GPT2, "model.safetensors", cache_dir=cache) is None and folders.find("gpt2") is None

    fake_hub.cut.clear()  # the network is back
    assert hub.resolve("gpt2") == snapshot
    assert (snapshot / "model.safetensors").read_bytes() == CHECKPOINT["model.safetensors"]


def test_ctrl_c_mid_transfer_into_the_cache_leaves_no_file_that_looks_whole(fake_hub, cache, ctrl_c_raises):
    main_thread = threading.main_thread().ident
    fake_hub.cut.add("model.safetensors")
    fake_hub.before_hang_up = lambda: signal.pthread_kill(main_thread, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        hub.download("gpt2")
    assert fake_hub.bytes_sent["model.safetensors"] > 0
    assert list(cache.rglob("*.incomplete")) == [] and not list(cache.rglob("model.safetensors"))
    assert folders.find("gpt2") is None


def break_entry(fake: FakeHub, how: str) -> Path:
    """A cache entry for gpt2 that cannot be used: config.json alone (as transformers' AutoConfig leaves it), or
    model.safetensors a link whose blob was deleted (a cache pruned by hand). Returns the snapshot folder."""
    if how == "a missing file":
        return fill_cache(fake, GPT2, "config.json")
    snapshot = fill_cache(fake, GPT2, *FILES)
    Path(os.path.realpath(snapshot / "model.safetensors")).unlink()
    return snapshot


@pytest.mark.parametrize("network", ["HF_HUB_OFFLINE", "a closed port"])
@pytest.mark.parametrize("how", ["a missing file", "a broken link"])
def test_a_broken_cache_entry_is_named_in_one_sentence_with_its_fix(fake_hub, cache, tmp_path, monkeypatch, capsys,
                                                                   how, network):
    snapshot = break_entry(fake_hub, how)
    if network == "HF_HUB_OFFLINE":
        go_offline(monkeypatch)
    else:
        point_hub_at(closed_port_url(), monkeypatch, tmp_path, no_backoff=False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(hub.DownloadError) as err:
        minigpt.load("gpt2")
    fault = (f"{snapshot}/ has no model.safetensors" if how == "a missing file"
             else f"{snapshot}/model.safetensors is a link to a blob that is gone")
    assert_one_sentence(err, "cannot download gpt2 because ", ", and the copy in the Hugging Face cache cannot be used: "
                        + fault, "; run `minigpt download gpt2` where the hub can be reached (or delete "
                        f"{cache}/models--openai-community--gpt2/ to start afresh), or use tiny")
    assert ("HF_HUB_OFFLINE is set" in str(err.value)) == (network == "HF_HUB_OFFLINE")
    assert fake_hub.requests == []
    code, out, said = run_cli(capsys, "generate", "Hi")  # the command line: that sentence, on one line
    assert (code, out, said) == (1, "", f"minigpt: error: {err.value}\n")


@pytest.mark.parametrize("how", ["a missing file", "a broken link"])
def test_a_broken_cache_entry_is_downloaded_again_when_the_hub_answers(fake_hub, cache, how):
    snapshot = break_entry(fake_hub, how)
    said = []
    model = minigpt.load("gpt2", report=said.append)
    assert model([0, 1]).shape == (2, model.config.vocab_size)
    size = hub._size(len(CHECKPOINT["model.safetensors"]))
    assert said == [f"downloading gpt2 (model.safetensors, {size}) from {fake_hub.url}/{GPT2} into {snapshot}/"]
    assert [r for r in fake_hub.requests if r[0] == "GET"] == [("GET", f"/{GPT2}/resolve/main/model.safetensors")]
    assert (snapshot / "model.safetensors").read_bytes() == CHECKPOINT["model.safetensors"]
    assert hub.resolve("gpt2") == snapshot


@pytest.mark.parametrize("network", ["the hub answers", "HF_HUB_OFFLINE"])
def test_a_cache_entry_with_only_pytorch_model_bin_is_refused_without_being_opened(fake_hub, cache, monkeypatch,
                                                                                  opened, network):
    repo = "minigpt-test/pickled"
    snapshot = fill_cache(fake_hub, repo, "config.json", "pytorch_model.bin")
    with pytest.raises(EntryNotFoundError):  # transformers asks for it first, and the cache records the answer
        hf_hub_download(repo, "model.safetensors", cache_dir=cache)
    assert try_to_load_from_cache(repo, "model.safetensors", cache_dir=cache) is _CACHED_NO_EXIST
    fake_hub.requests.clear()
    if network == "HF_HUB_OFFLINE":
        go_offline(monkeypatch)
    read_by_safetensors = []
    monkeypatch.setattr(safetensors_header, "safe_open", lambda path, **kw: read_by_safetensors.append(path))
    opened.clear()  # from here on
    with pytest.raises(hub.DownloadError) as err:
        minigpt.load(repo)
    if network == "HF_HUB_OFFLINE":
        assert_one_sentence(err, f"{snapshot}/ holds pytorch_model.bin but no model.safetensors, and minigpt never "
                            "unpickles a checkpoint; run `minigpt download minigpt-test/pickled` where the hub")
    else:
        assert_one_sentence(err, f"the hub repo {repo} has no model.safetensors", "never unpickles",
                            f"place it in a folder DIR/{repo}/ and set MINIGPT_WEIGHTS=DIR.")
    assert any(path.endswith(os.path.join("refs", "main")) for path in opened)  # the recording sees huggingface_hub
    pickle_paths = {str(snapshot / "pytorch_model.bin"), os.path.realpath(snapshot / "pytorch_model.bin")}
    assert pickle_paths.isdisjoint(opened) and read_by_safetensors == []
    assert fake_hub.requests == ([] if network == "HF_HUB_OFFLINE" else [("HEAD", f"/{repo}/resolve/main/model.safetensors")])


def test_offline_with_nothing_cached_says_where_to_copy_the_files(fake_hub, cache, monkeypatch):
    go_offline(monkeypatch)
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "cannot download gpt2 because HF_HUB_OFFLINE is set; copy config.json and "
                        f"model.safetensors from {fake_hub.url}/{GPT2}/tree/main into a folder DIR/gpt2/ and set "
                        "MINIGPT_WEIGHTS=DIR, or use tiny")
    assert fake_hub.requests == [] and os.listdir() == []
    assert not cache.parent.exists()  # no empty HF_HOME/hub/ left behind


def test_an_unwritable_cache_names_it_and_hf_home(fake_hub, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("a file, not a folder")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "afile" / "hub"))  # stops root too, unlike chmod
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, f"the Hugging Face cache {tmp_path / 'afile' / 'hub'}", "set HF_HOME")
    assert fake_hub.requests == []


# -- the real program, installed from a wheel -------------------------------------------------------------


def test_an_installed_minigpt_downloads_once_into_the_cache_whatever_the_directory(tmp_path):
    """`pip install .` then `minigpt generate` from two folders: one download, into HF_HOME's cache, nothing left
    in either folder. The package is a copy of minigpt/ with no checkout around it, as a wheel installs it."""
    site = installed_package(tmp_path / "site-packages")
    home, first, second = tmp_path / "hf-home", tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    with serving(FakeHub()) as fake:
        fake.repos[GPT2] = dict(CHECKPOINT)
        env = program_env(PYTHONPATH=str(site), HF_HOME=str(home), HF_ENDPOINT=fake.url,
                          HF_HUB_DISABLE_IMPLICIT_TOKEN="1", HF_HUB_DISABLE_TELEMETRY="1")
        ran = run_program("generate", "Hello", "--max-new-tokens", "3", "--verbose", env=env, cwd=first)
        requests = list(fake.requests)
        again = run_program("generate", "Hello", "--max-new-tokens", "3", "--json", env=env, cwd=second)
        assert fake.requests == requests  # the second run asked the hub nothing
    snapshot = snapshot_of(home / "hub")
    size = hub._size(sum(len(data) for data in CHECKPOINT.values()))
    assert ran.returncode == 0 and ran.stderr.splitlines() == [
        f"minigpt: downloading gpt2 (config.json and model.safetensors, {size}) from {fake.url}/{GPT2} into {snapshot}/",
        f"minigpt: weights from {snapshot}", "minigpt: strategy greedy (no --strategy given: the default)"]
    assert sorted(path for method, path in requests if method == "GET") == [f"/{GPT2}/resolve/main/{name}"
                                                                           for name in sorted(FILES)]
    assert again.returncode == 0 and again.stderr == ""
    result = json.loads(again.stdout)
    assert next(iter(result)) == "weights" and result["weights"] == str(snapshot)
    assert ran.stdout == "Hello" + result["sequences"][0]["text"] + "\n"
    assert {name: (snapshot / name).read_bytes() for name in FILES} == CHECKPOINT
    assert os.listdir(first) == [] and os.listdir(second) == [] and os.listdir(site) == ["minigpt"]


def test_hf_hub_cache_and_hf_hub_offline_are_read_from_the_environment(fake_hub, cache, tmp_path):
    snapshot = fill_cache(fake_hub, GPT2, *FILES)
    env = program_env(PYTHONPATH=str(installed_package(tmp_path / "site-packages")), HF_HUB_OFFLINE="1",
                      HF_HOME=str(tmp_path / "elsewhere"), HF_HUB_CACHE=str(cache), HF_ENDPOINT=closed_port_url())
    done = run_program("download", "gpt2", env=env, cwd=tmp_path / "cwd")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{snapshot}\n", "")
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-cache")
    done = run_program("download", "gpt2", env=env, cwd=tmp_path / "cwd")
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith("minigpt: error: cannot download gpt2 because HF_HUB_OFFLINE is set; ")
    assert fake_hub.requests == [] and os.listdir(tmp_path / "cwd") == []
