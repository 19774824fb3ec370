"""A loopback HTTP server on 127.0.0.1 that plays the Hugging Face hub, for tests of minigpt.hub without the internet.

minigpt first asks for each missing file's size: HEAD {endpoint}/{repo}/resolve/main/{filename}. Then
huggingface_hub's hf_hub_download(repo, filename, local_dir=... or cache_dir=...) makes two requests per file: the
same HEAD, whose X-Repo-Commit, ETag and Content-Length headers it requires (no X-Xet-* headers, so it downloads
over plain HTTP), then GET of the same URL for the body. Errors are told apart by status and X-Error-Code
(RepoNotFound, EntryNotFound), as the real hub does. `point_hub_at` aims huggingface_hub at a URL (and its cache
at a temporary folder); `serving` runs a FakeHub in a thread for the length of a test.
"""

import hashlib
import re
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import close_session, constants
from safetensors.numpy import save_file

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
        self.body_seconds = 0.0  # how long a body takes to send, in ten pieces: a slow line


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
        pause = threading.Event()  # waits without time.sleep, which the tests may replace
        for start in range(0, len(body), max(1, len(body) // 10)):
            self.wfile.write(body[start : start + max(1, len(body) // 10)])
            self.wfile.flush()
            pause.wait(self.server.body_seconds / 10)

    def log_message(self, format, *args):  # keep pytest's output clean
        pass


def closed_port_url() -> str:
    """The URL of a port nothing listens on: every connection is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@contextmanager
def serving(fake: FakeHub):
    """The FakeHub answering from a thread until the block ends."""
    thread = threading.Thread(target=fake.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.shutdown()
        fake.server_close()
        thread.join()


def point_hub_at(url: str, monkeypatch, tmp_path: Path, no_backoff: bool = True):
    """huggingface_hub aimed at url, and nothing of the caller's environment left to change what it does."""
    # huggingface_hub reads its environment once, at import, into huggingface_hub.constants.
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name, default in [("HF_HUB_ETAG_TIMEOUT", constants.DEFAULT_ETAG_TIMEOUT),
                          ("HF_HUB_DOWNLOAD_TIMEOUT", constants.DEFAULT_DOWNLOAD_TIMEOUT)]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(constants, name, default)
    for name in ("TQDM_DISABLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    close_session()  # its next client reads the environment above, without proxies
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # no copy from a real cache
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)  # never read or send a token
    if no_backoff:
        monkeypatch.setattr(time, "sleep", lambda seconds: None)  # its retries back off for up to 8 s each


def go_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def assert_one_sentence(err: pytest.ExceptionInfo, *fragments: str):
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
