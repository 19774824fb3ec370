"""minigpt.hub without the internet, downloading into minigpt's own weights folder (MINIGPT_WEIGHTS): a FakeHub
(tests/fake_hub.py) on 127.0.0.1 plays the Hugging Face hub. A hub out of reach is a closed port, or a listening
socket that never answers; those tests keep huggingface_hub's real back-off, to prove it is never waited for.
The Hugging Face cache, and the order of the places a name is looked up in, are tested in test_hf_cache.py.
"""

import io
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_hub import (CONFIG, FakeHub, assert_one_sentence, closed_port_url, go_offline, point_hub_at, serving,
                      tiny_safetensors)
from helpers import FIXTURES, Terminal, installed_package, program_env, run_cli, run_program
from huggingface_hub import constants
from huggingface_hub.file_download import hf_hub_url

import minigpt
from minigpt.weights import hub
from minigpt.weights import places as folders


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    """MINIGPT_WEIGHTS, an empty folder, and no source checkout (whose weights/ may hold real checkpoints)."""
    folder = tmp_path / "weights"
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(folder))
    monkeypatch.setattr(folders, "CHECKOUT", tmp_path / "site-packages")
    return folder


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, weights):
    """A FakeHub serving a tiny gpt2, with huggingface_hub pointed at it and nothing else."""
    safetensors = tiny_safetensors(tmp_path)
    with serving(FakeHub()) as fake:
        fake.repos["openai-community/gpt2"] = {"config.json": CONFIG, "model.safetensors": safetensors}
        fake.repos["minigpt-test/tiny"] = {"config.json": CONFIG, "model.safetensors": safetensors}
        point_hub_at(fake.url, monkeypatch, tmp_path)
        assert hf_hub_url("minigpt-test/tiny", "config.json").startswith(fake.url)  # never the real hub
        yield fake


# -- names and folders ------------------------------------------------------------------------------


def test_weights_dirs_are_minigpt_weights_then_the_checkout_and_never_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIGPT_WEIGHTS", raising=False)
    checkout = Path(folders.__file__).resolve().parents[2]
    assert (checkout / "pyproject.toml").is_file() and (checkout / "weights").is_dir()
    assert folders.CHECKOUT == checkout and folders.weights_dirs() == [checkout / "weights"]
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(tmp_path / "w"))
    assert folders.weights_dirs() == [tmp_path / "w", checkout / "weights"]

    monkeypatch.setattr(folders, "CHECKOUT", tmp_path / "site-packages")  # an installed package: no checkout
    (tmp_path / "weights").mkdir()  # not even a weights/ folder in the working directory counts
    monkeypatch.chdir(tmp_path)
    assert folders.weights_dirs() == [tmp_path / "w"]
    monkeypatch.delenv("MINIGPT_WEIGHTS")
    assert folders.weights_dirs() == [] and folders.destination("gpt2") is None  # the Hugging Face cache


def test_destination_maps_names_and_repo_ids(weights):
    assert folders.destination("gpt2") == weights / "gpt2"
    assert folders.destination("openai-community/gpt2") == weights / "gpt2"
    assert folders.destination("openai-community/gpt2-xl") == weights / "gpt2-xl"
    assert folders.destination("distilbert/distilgpt2") == weights / "distilgpt2"
    assert folders.destination("someone/tiny-gpt2") == weights / "someone" / "tiny-gpt2"
    with pytest.raises(ValueError):
        folders.destination("gpt3")


def test_existing_paths_are_returned_untouched(fake_hub, tmp_path, monkeypatch):
    folder = tmp_path / "my-model"
    folder.mkdir()
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"not read here")
    assert hub.resolve(folder) == folder
    assert hub.resolve(str(folder)) == folder
    assert hub.resolve(str(file)) == file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)  # a local folder spelled like a repo id wins
    assert hub.resolve("owner/name") == Path("owner/name")
    assert fake_hub.requests == []


@pytest.mark.parametrize("missing", ["./nowhere", "no/such/folder", "gpt2.safetensors", "~/no-such-minigpt-dir"])
def test_missing_path_raises_file_not_found(fake_hub, missing):
    with pytest.raises(FileNotFoundError) as err:
        hub.resolve(missing)
    assert_one_sentence(err, missing)
    assert fake_hub.requests == []


def test_missing_path_object_is_never_a_hub_name(fake_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        hub.resolve(Path("gpt2"))
    assert fake_hub.requests == []


def test_unknown_name_lists_the_known_ones(fake_hub):
    with pytest.raises(ValueError) as err:
        hub.resolve("gpt3")
    assert_one_sentence(err, "'gpt3'", *folders.KNOWN_MODELS, "tiny")
    with pytest.raises(ValueError):
        hub.resolve("")  # not the working directory
    with pytest.raises(ValueError):
        hub.download("./some/folder")  # download takes names only
    assert fake_hub.requests == []


# -- the download path ------------------------------------------------------------------------------


def test_first_resolve_downloads_and_second_makes_no_request(fake_hub, weights):
    folder = hub.resolve("gpt2")
    assert folder == weights / "gpt2"
    assert (folder / "config.json").read_bytes() == CONFIG
    assert (folder / "model.safetensors").read_bytes() == fake_hub.repos["openai-community/gpt2"]["model.safetensors"]
    assert ("GET", "/openai-community/gpt2/resolve/main/model.safetensors") in fake_hub.requests
    assert ("GET", "/openai-community/gpt2/resolve/main/config.json") in fake_hub.requests

    seen = len(fake_hub.requests)
    assert hub.resolve("gpt2") == folder
    assert hub.resolve("openai-community/gpt2") == folder
    assert hub.download("gpt2") == folder
    assert len(fake_hub.requests) == seen
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]  # no .cache/ left


def test_any_repo_id_downloads_into_owner_name(fake_hub, weights):
    folder = hub.download("minigpt-test/tiny")
    assert folder == weights / "minigpt-test" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_unknown_repo_says_it_is_not_on_the_hub(fake_hub, weights):
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("nobody/nothing")
    assert isinstance(err.value, OSError)
    assert_one_sentence(err, "nobody/nothing", "not a local path", "hub has no public repo")
    assert fake_hub.requests == [("HEAD", "/nobody/nothing/resolve/main/model.safetensors")]
    assert not (weights / "nobody").exists()  # a refused name leaves no empty folder behind


def test_offline_with_nothing_cached_says_how_to_place_files(fake_hub, weights, monkeypatch):
    go_offline(monkeypatch)
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "HF_HUB_OFFLINE", "copy config.json and model.safetensors", str(weights / "gpt2"),
                        "--model tiny", 'minigpt.load("tiny")')
    assert fake_hub.requests == []


def test_prefilled_folder_works_offline(fake_hub, weights, monkeypatch):
    (weights / "gpt2").mkdir(parents=True)
    (weights / "gpt2" / "config.json").write_bytes(CONFIG)
    (weights / "gpt2" / "model.safetensors").write_bytes(b"placed by hand")
    go_offline(monkeypatch)
    assert hub.resolve("gpt2") == weights / "gpt2"
    assert hub.resolve("openai-community/gpt2") == weights / "gpt2"
    assert fake_hub.requests == []


def test_repo_with_only_pytorch_model_bin_is_refused(fake_hub, weights):
    fake_hub.repos["minigpt-test/pickled"] = {"config.json": CONFIG, "pytorch_model.bin": b"\x80\x02pickle"}
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("minigpt-test/pickled")
    assert_one_sentence(err, "minigpt-test/pickled", "model.safetensors", "never unpickles")
    assert not any(path.endswith("pytorch_model.bin") for _, path in fake_hub.requests)
    assert not (weights / "minigpt-test").exists()  # nothing written, not even config.json or an empty folder


def test_interrupted_download_leaves_no_partial_file_and_next_run_completes(fake_hub, weights):
    full = fake_hub.repos["openai-community/gpt2"]["model.safetensors"]
    final = weights / "gpt2" / "model.safetensors"
    in_flight = []  # what the weights folder holds while the half-sent download hangs

    def look_at_the_folder():
        in_flight.append((list(weights.rglob("*.incomplete")), final.exists()))

    fake_hub.before_hang_up = look_at_the_folder
    fake_hub.cut.add("model.safetensors")
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "model.safetensors", "trying again")
    assert fake_hub.bytes_sent["model.safetensors"] == len(full) // 2  # the break came half way
    [(partial, final_existed)] = in_flight
    assert len(partial) == 1 and not final_existed  # the bytes go to a temporary file, not to the final name
    assert not final.exists()
    assert list(weights.rglob("*.incomplete")) == [] and list(weights.rglob("*.lock")) == []
    assert not (weights / "gpt2").exists()  # no partial file, no huggingface_hub's .cache/, no empty folder

    fake_hub.cut.clear()  # the network is back
    folder = hub.resolve("gpt2")
    assert (folder / "model.safetensors").read_bytes() == full
    assert (folder / "config.json").read_bytes() == CONFIG
    assert list(weights.rglob("*.incomplete")) == []


def test_unwritable_weights_folder_names_it_and_minigpt_weights(fake_hub, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("a file, not a folder")
    unwritable = tmp_path / "afile" / "sub"  # stops root too, unlike chmod
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(unwritable))
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, str(unwritable / "gpt2"), "MINIGPT_WEIGHTS")
    assert fake_hub.requests == []


# -- what a first download says before it starts ----------------------------------------------------


def test_the_download_is_announced_before_its_first_byte(fake_hub, weights):
    fake_hub.repos["openai-community/gpt2"]["model.safetensors"] = bytes(2_500_000)
    said = []
    hub.download("gpt2", report=lambda line: said.append((line, list(fake_hub.requests))))
    [(line, requests_then)] = said
    assert line == (f"downloading gpt2 (config.json and model.safetensors, 2.5 MB) "
                    f"from {fake_hub.url}/openai-community/gpt2 into {weights / 'gpt2'}/")
    assert requests_then == [("HEAD", "/openai-community/gpt2/resolve/main/model.safetensors"),  # sizes asked,
                             ("HEAD", "/openai-community/gpt2/resolve/main/config.json")]  # not a byte fetched
    assert ("GET", "/openai-community/gpt2/resolve/main/model.safetensors") in fake_hub.requests


def test_only_the_missing_file_is_announced_and_fetched(fake_hub, weights, monkeypatch, tmp_path):
    (weights / "gpt2").mkdir(parents=True)
    (weights / "gpt2" / "config.json").write_bytes(CONFIG)
    fake_hub.repos["openai-community/gpt2"]["model.safetensors"] = bytes(548_105_171 // 1000)
    monkeypatch.chdir(tmp_path)  # the folder is then shown as typed from here
    said = []
    hub.download("gpt2", report=said.append)
    assert said == [f"downloading gpt2 (model.safetensors, 548 kB) from {fake_hub.url}/openai-community/gpt2 "
                    f"into weights/gpt2/"]
    assert not any(path.endswith("config.json") for _, path in fake_hub.requests)


def test_load_passes_report_on_and_says_nothing_once_the_files_are_there(fake_hub, weights):
    fixture = FIXTURES / "tiny-hub"
    fake_hub.repos["openai-community/gpt2"] = {name: (fixture / name).read_bytes() for name in hub.CHECKPOINT_FILES}
    said = []
    model = minigpt.load("gpt2", report=said.append)
    assert model([0, 1]).shape == (2, model.config.vocab_size)
    assert len(said) == 1 and said[0].startswith("downloading gpt2 (config.json and model.safetensors, ")
    minigpt.load("gpt2", report=said.append)
    assert len(said) == 1


@pytest.mark.parametrize("stderr, tqdm_disable, bar", [(Terminal, None, True), (Terminal, "1", False),
                                                       (io.StringIO, None, False)])
def test_the_progress_bar_shows_on_a_terminal_unless_tqdm_disable(fake_hub, monkeypatch, stderr, tqdm_disable, bar):
    bars = sys.modules["huggingface_hub.utils.tqdm"]
    monkeypatch.setattr(bars, "HF_HUB_DISABLE_PROGRESS_BARS", None)  # as read from the caller's environment
    monkeypatch.setattr(bars, "progress_bar_states", {})
    if tqdm_disable is not None:
        monkeypatch.setenv("TQDM_DISABLE", tqdm_disable)
    monkeypatch.setattr(sys, "stderr", stderr())
    hub.download("gpt2")
    assert ("model.safetensors" in sys.stderr.getvalue()) == bar
    assert not bars.are_progress_bars_disabled()  # as it was before the download


def test_a_slow_transfer_is_not_cut_short_by_the_bound_on_the_first_answer(fake_hub, weights, monkeypatch):
    monkeypatch.setattr(hub, "ANSWER_SECONDS", 0.2)
    fake_hub.body_seconds = 0.6  # each body takes three times the bound, yet every piece comes well in time
    folder = hub.download("gpt2")
    assert (folder / "model.safetensors").read_bytes() == fake_hub.repos["openai-community/gpt2"]["model.safetensors"]


def test_sizes_read_as_the_progress_bar_counts_them():
    assert [hub._size(n) for n in (665, 1024, 548_105_171, 6_431_952_241, 999_999)] == \
        ["665 bytes", "1.0 kB", "548 MB", "6.4 GB", "1.0 MB"]


# -- a first run without network: one sentence, within 3 s -------------------------------------------


@pytest.fixture
def closed_port() -> str:
    return closed_port_url()


@pytest.fixture
def silent_server():
    """The URL of a socket that takes connections (the kernel completes them) but never answers a byte."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def first_run(entry: str, capsys) -> str:
    """One entry point asked for gpt2, which is not there: the one sentence it ends with."""
    if entry.startswith("minigpt "):  # the command line, in this process
        code, out, err = run_cli(capsys, *(["download", "gpt2"] if entry == "minigpt download" else ["generate", "Hi"]))
        assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("minigpt: error: ")
        return err.removeprefix("minigpt: error: ").rstrip("\n")
    with pytest.raises(hub.DownloadError) as err:
        minigpt.load("gpt2") if entry == "minigpt.load" else hub.resolve("gpt2")
    assert "\n" not in str(err.value)
    return str(err.value)


def assert_says_what_to_copy_and_what_needs_no_download(message: str, url: str, folder: Path):
    assert message.endswith(
        f"; copy config.json and model.safetensors from {url}/openai-community/gpt2/tree/main into {folder}/, or use "
        f'tiny, the small model that ships with minigpt and needs no download (--model tiny, or minigpt.load("tiny") '
        f"in Python).")


@pytest.mark.parametrize("entry", ["minigpt.load", "hub.resolve", "minigpt download", "minigpt generate"])
def test_a_closed_port_ends_at_once_in_one_sentence(entry, closed_port, weights, monkeypatch, tmp_path, capsys):
    point_hub_at(closed_port, monkeypatch, tmp_path, no_backoff=False)  # huggingface_hub's real retries
    start = time.monotonic()
    message = first_run(entry, capsys)
    assert time.monotonic() - start < 5  # a bound, not a benchmark: huggingface_hub's retries alone take 24 s
    assert message.startswith(f"cannot download gpt2 because the Hugging Face hub ({closed_port}) cannot be reached (")
    assert_says_what_to_copy_and_what_needs_no_download(message, closed_port, weights / "gpt2")
    assert not (weights / "gpt2").exists()  # no lock, no partial file, no empty folder


def test_a_hub_that_never_answers_holds_no_one_past_the_bound(silent_server, weights, monkeypatch, tmp_path):
    point_hub_at(silent_server, monkeypatch, tmp_path, no_backoff=False)
    start = time.monotonic()
    with pytest.raises(hub.DownloadError) as err:
        hub.download("gpt2")
    assert time.monotonic() - start < 5  # a bound: the wait is 2 s
    message = str(err.value)
    assert message.startswith(f"cannot download gpt2 because the Hugging Face hub ({silent_server}) did not answer "
                              f"within 2 s (HF_HUB_ETAG_TIMEOUT=30 waits longer); ")
    assert_says_what_to_copy_and_what_needs_no_download(message, silent_server, weights / "gpt2")
    assert not (weights / "gpt2").exists()


def test_hf_hub_etag_timeout_is_how_long_the_hub_may_take(silent_server, weights, monkeypatch, tmp_path):
    point_hub_at(silent_server, monkeypatch, tmp_path, no_backoff=False)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)  # HF_HUB_ETAG_TIMEOUT=1, as read at import
    with pytest.raises(hub.DownloadError) as err:
        hub.download("gpt2")
    assert "did not answer within 1 s" in str(err.value)


@pytest.fixture
def timed_silent_server():
    """A server that never answers a byte, and the times (time.monotonic) at which connections reached it."""
    connected: list[float] = []
    held: list[socket.socket] = []

    def accept_and_hold(server):
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # the server is closed: the test is over
                return
            connected.append(time.monotonic())

    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        threading.Thread(target=accept_and_hold, args=(server,), daemon=True).start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}", connected
        server.shutdown(socket.SHUT_RDWR)
    for connection in held:
        connection.close()


def test_minigpt_generate_without_network_ends_within_3_seconds(timed_silent_server, tmp_path):
    """The real program, from its start: HF_ENDPOINT read from the environment, huggingface_hub's real retries."""
    silent_server, connected = timed_silent_server
    env = program_env(HF_ENDPOINT=silent_server, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
                      HF_HUB_DISABLE_TELEMETRY="1", MINIGPT_WEIGHTS=str(tmp_path / "weights"),
                      PYTHONPATH=str(installed_package(tmp_path / "site-packages")))  # no checkout's weights/
    done = run_program("generate", "Hello", env=env, cwd=tmp_path)
    ended = time.monotonic()
    # From the program's first request to its end: one 2 s wait and the message, never a second wait (a retry).
    # It leaves out Python's start-up, which a machine busy with three test suites may slow down.
    assert connected and ended - connected[0] < 3.5
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"minigpt: error: cannot download gpt2 because the Hugging Face hub "
                                  f"({silent_server}) did not answer within 2 s")
    assert done.stderr.count("\n") == 1 and " into weights/gpt2/, or use tiny, " in done.stderr


def test_ctrl_c_mid_transfer_leaves_nothing_behind(fake_hub, weights, ctrl_c_raises):
    main_thread = threading.main_thread().ident
    fake_hub.cut.add("model.safetensors")  # half the body, then Ctrl-C reaches the downloading thread
    fake_hub.before_hang_up = lambda: signal.pthread_kill(main_thread, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        hub.download("gpt2")
    assert fake_hub.bytes_sent["model.safetensors"] > 0
    assert not (weights / "gpt2").exists()  # no partial file, no .cache/huggingface/ lock or metadata


# -- tiny: the model that ships with minigpt ---------------------------------------------------------


def test_tiny_is_the_package_folder_and_is_never_downloaded(fake_hub, weights, monkeypatch, tmp_path):
    folder = tmp_path / "package" / "data" / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "model.safetensors").write_bytes(tiny_safetensors(tmp_path))
    monkeypatch.setitem(hub.PACKAGED_MODELS, "tiny", folder)
    said = []
    assert hub.resolve("tiny", report=said.append) == folder
    assert hub.download("tiny", report=said.append) == folder
    go_offline(monkeypatch)
    assert hub.resolve("tiny") == folder
    assert fake_hub.requests == [] and said == [] and not weights.exists()


def test_tiny_missing_from_the_package_says_to_reinstall(fake_hub, monkeypatch, tmp_path):
    monkeypatch.setitem(hub.PACKAGED_MODELS, "tiny", tmp_path / "no-tiny")
    with pytest.raises(FileNotFoundError) as err:
        hub.resolve("tiny")
    assert_one_sentence(err, "'tiny'", str(tmp_path / "no-tiny"), "reinstall minigpt")
    assert fake_hub.requests == []


def test_the_tiny_model_in_the_package_loads_without_network(closed_port, weights, monkeypatch, tmp_path):
    folder = Path(minigpt.__file__).parent / "data" / "tiny"
    point_hub_at(closed_port, monkeypatch, tmp_path, no_backoff=False)  # any request would fail
    assert hub.PACKAGED_MODELS["tiny"] == folder and hub.resolve("tiny") == folder
    model = minigpt.load("tiny")
    assert model([0, 1]).shape == (2, model.config.vocab_size)
    assert not weights.exists()


def test_the_command_line_announces_the_download_on_stderr(fake_hub, weights, capsys):
    code, out, err = run_cli(capsys, "download", "gpt2")
    assert code == 0 and out == f"{weights / 'gpt2'}\n"
    assert err.startswith("minigpt: downloading gpt2 (config.json and model.safetensors, ") and err.count("\n") == 1
    code, out, err = run_cli(capsys, "download", "gpt2")
    assert code == 0 and err == ""  # the files are there: nothing to say
