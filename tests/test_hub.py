"""minigpt.hub without the internet: a loopback HTTP server on 127.0.0.1 plays the Hugging Face hub.

huggingface_hub's hf_hub_download(repo, filename, local_dir=...) makes two requests per file:
HEAD {endpoint}/{repo}/resolve/main/{filename}, whose X-Repo-Commit, ETag and Content-Length headers
it requires (no X-Xet-* headers, so it downloads over plain HTTP), then GET of the same URL for the body.
Errors are told apart by status and X-Error-Code (RepoNotFound, EntryNotFound), as the real hub does.
"""

import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants
from huggingface_hub.file_download import hf_hub_url
from safetensors.numpy import save_file

from minigpt import hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CONFIG = b'{"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 1, "n_positions": 16, "vocab_size": 32}'


def tiny_safetensors(tmp_path: Path) -> bytes:
    path = tmp_path / "tiny.safetensors"
    save_file({"wte.weight": np.arange(32 * 8, dtype=np.float32).reshape(32, 8)}, str(path))
    return path.read_bytes()


class FakeHub(ThreadingHTTPServer):
    """Serves self.repos = {repo id: {filename: bytes}} and logs every request in self.requests."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHubHandler)  # loopback only, ephemeral port
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.cut: set[str] = set()  # filenames whose GET breaks: half the body, then the line drops
        self.bytes_sent: dict[str, int] = {}  # body bytes sent per filename
        self.before_hang_up = lambda: None  # called once the half body of a cut download is out


class FakeHubHandler(BaseHTTPRequestHandler):
    server: FakeHub

    def do_HEAD(self):
        self.answer(with_body=False)

    def do_GET(self):
        self.answer(with_body=True)

    def answer(self, with_body: bool):
        fake = self.server
        fake.requests.append((self.command, self.path))
        match = re.fullmatch(r"/(.+)/resolve/([^/]+)/(.+)", self.path)
        if match is None or match[1] not in fake.repos:
            return self.reply(404, {"X-Error-Code": "RepoNotFound"})
        files, filename = fake.repos[match[1]], match[3]
        if filename not in files:
            return self.reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
        data = files[filename]
        if with_body and filename in fake.cut and filename in fake.bytes_sent:
            return  # the line is dead: close without any answer
        if with_body and filename in fake.cut:
            data = data[: len(data) // 2]  # announce the full length, send half, hang up
        headers = {
            "X-Repo-Commit": COMMIT,
            "ETag": f'"{hashlib.sha256(files[filename]).hexdigest()}"',
            "Content-Length": str(len(files[filename])),
        }
        self.reply(200, headers, data if with_body else b"")
        if with_body:
            fake.bytes_sent[filename] = fake.bytes_sent.get(filename, 0) + len(data)
        if with_body and filename in fake.cut:
            fake.before_hang_up()

    def reply(self, status: int, headers: dict[str, str], body: bytes = b""):
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(folder))
    return folder


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, weights):
    """A FakeHub serving a tiny gpt2, with huggingface_hub pointed at it and nothing else."""
    fake = FakeHub()
    thread = threading.Thread(target=fake.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    safetensors = tiny_safetensors(tmp_path)
    fake.repos["openai-community/gpt2"] = {"config.json": CONFIG, "model.safetensors": safetensors}
    fake.repos["minigpt-test/tiny"] = {"config.json": CONFIG, "model.safetensors": safetensors}
    point_hub_at(fake.url, monkeypatch, tmp_path)
    assert hf_hub_url("minigpt-test/tiny", "config.json").startswith(fake.url)  # never the real hub
    yield fake
    fake.shutdown()
    fake.server_close()
    thread.join()


def point_hub_at(url: str, monkeypatch, tmp_path: Path):
    # huggingface_hub reads its environment once, at import, into huggingface_hub.constants.
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # no copy from a real cache
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)  # never read or send a token
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # its retries back off for up to 8 s each


def go_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def assert_one_sentence(err: pytest.ExceptionInfo, *fragments: str):
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# -- names and folders ------------------------------------------------------------------------------


def test_weights_dir_comes_from_minigpt_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGPT_WEIGHTS", str(tmp_path / "w"))
    assert hub.weights_dir() == tmp_path / "w"


def test_weights_dir_is_the_checkout_folder_then_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIGPT_WEIGHTS", raising=False)
    checkout = Path(hub.__file__).resolve().parents[1]
    assert (checkout / "pyproject.toml").is_file() and (checkout / "weights").is_dir()
    assert hub.weights_dir() == checkout / "weights"

    installed = tmp_path / "site-packages" / "minigpt" / "hub.py"  # an installed package: no checkout
    monkeypatch.setattr(hub, "__file__", str(installed))
    monkeypatch.chdir(tmp_path)
    assert hub.weights_dir() == tmp_path / "weights"


def test_local_folder_maps_names_and_repo_ids(weights):
    assert hub.local_folder("gpt2") == weights / "gpt2"
    assert hub.local_folder("openai-community/gpt2") == weights / "gpt2"
    assert hub.local_folder("openai-community/gpt2-xl") == weights / "gpt2-xl"
    assert hub.local_folder("distilbert/distilgpt2") == weights / "distilgpt2"
    assert hub.local_folder("someone/tiny-gpt2") == weights / "someone" / "tiny-gpt2"
    with pytest.raises(ValueError):
        hub.local_folder("gpt3")


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
    assert_one_sentence(err, "'gpt3'", *hub.KNOWN_MODELS)
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


def test_any_repo_id_downloads_into_owner_name(fake_hub, weights):
    folder = hub.download("minigpt-test/tiny")
    assert folder == weights / "minigpt-test" / "tiny"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["config.json", "model.safetensors"]


def test_unknown_repo_says_it_is_not_on_the_hub(fake_hub):
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("nobody/nothing")
    assert isinstance(err.value, OSError)
    assert_one_sentence(err, "nobody/nothing", "not a local path", "hub has no public repo")
    assert fake_hub.requests == [("HEAD", "/nobody/nothing/resolve/main/model.safetensors")]


def test_offline_with_nothing_cached_says_how_to_place_files(fake_hub, weights, monkeypatch):
    go_offline(monkeypatch)
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "HF_HUB_OFFLINE", "copy config.json and model.safetensors", str(weights / "gpt2"))
    assert fake_hub.requests == []


def test_unreachable_hub_says_how_to_place_files(fake_hub, weights, monkeypatch, tmp_path):
    fake_hub.shutdown()
    fake_hub.server_close()  # the port now refuses connections: the machine has no network
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve("gpt2")
    assert_one_sentence(err, "cannot be reached", "https://huggingface.co/openai-community/gpt2", str(weights / "gpt2"))
    assert not (weights / "gpt2" / "model.safetensors").exists()


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
    folder = weights / "minigpt-test" / "pickled"
    assert [p for p in folder.iterdir() if p.is_file()] == []  # nothing written, not even config.json


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
    assert list(weights.rglob("*.incomplete")) == []

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
