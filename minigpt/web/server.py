"""The HTTP service of `minigpt explore`: the page, its assets and the JSON endpoints, for one local user.

    GET  /                   the page (web/index.html)
    GET  /static/NAME        style.css, render.js, explore.js: a fixed list of package files
    GET  /api/options        the registry of options, the strategies and the groups
    POST /api/tokenize       {"text"} -> {"tokens": [{id, bytes, text, shown, merges}]}
    POST /api/step           {"prompt", "prefix": [ids], "forced": [[step, id]], "accepted": n, "have": k,
                              "strategy", "options": {...}, "top": K, "stream": false}
                             -> the steps the page lacks, the pending one and its distribution link by link,
                                the chain, log p, distinct-n; with "stream": true, one JSON line per step as
                                it is taken (application/x-ndjson), the whole answer last
    POST /api/inspect        {"ids": [...], "layer": l} -> {"lens", "attention": [H][T][T]}
    POST /api/beam-tree      {"prompt", "prefix", "strategy", "options", "max_new_tokens"} -> {"beam_tree"}

explore.py says what each endpoint computes. A POST takes a JSON object (Content-Type application/json)
and every answer is JSON; a refusal is {"error": "one sentence"} with a 4xx status, never a traceback.

A careful local service: it binds 127.0.0.1 unless told otherwise; it answers only requests whose Host
header names the address it serves (so a web page cannot reach it by DNS rebinding) and whose Origin,
if any, is its own; it reads at most MAX_BODY bytes of a body; the model runs one call at a time, with at
most MAX_WAITING requests waiting (the others get 503 at once); and a client that stops sending is
dropped after TIMEOUT seconds. No request names a file: the model is chosen at launch, and the static
files are a fixed list.

What this module is not: what the endpoints compute (explore.py) or the page (web/).
"""

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .explore import ENDPOINTS, MODEL_CALLS, STREAMS, Explorer
from .render import WEB, plain

MAX_BODY = 64 * 1024  # bytes: a prompt of the whole context is a few KiB
MAX_WAITING = 64  # model calls waiting for the model; more get 503 at once
TIMEOUT = 30  # seconds a connection may stay idle
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8"),
          "/static/render.js": ("render.js", "text/javascript; charset=utf-8"),
          "/static/explore.js": ("explore.js", "text/javascript; charset=utf-8")}
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


WILDCARDS = ("0.0.0.0", "::", "")  # --host values that listen on every address of the machine


def own_addresses() -> set[str]:
    """This machine's names and the addresses they resolve to (a page opened at any of them is this server's)."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        addresses = {info[4][0] for name in names for info in socket.getaddrinfo(name, None)}
    except OSError:  # a name the resolver does not know
        addresses = set()
    return names | addresses


class ExploreServer(ThreadingHTTPServer):
    """A thread per request; the model calls behind one lock."""

    daemon_threads = True  # Ctrl-C does not wait for a slow client
    request_queue_size = 256  # connections the OS holds before accept(): a burst of requests is queued, not reset

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), Handler)
        self.explorer = explorer
        self.model_lock = threading.Lock()
        self.waiting = threading.BoundedSemaphore(MAX_WAITING)
        port = self.server_address[1]
        names = own_addresses() if host in WILDCARDS else ()  # every address: those this machine knows it has
        self.hosts = {f"{name}:{port}" for name in (*LOOPBACK_NAMES, host, *names)}
        self.url = f"http://{'127.0.0.1' if host in ('127.0.0.1', *WILDCARDS) else host}:{port}/"

    def handle_error(self, request, client_address):
        """A failure outside a request's own handling (a bug, a broken connection): one line, no traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            print(f"minigpt explore: a request from {client_address[0]} failed: {type(error).__name__}: {error}",
                  file=sys.stderr)

    def answer(self, path: str, payload: dict, send=None):
        """What ENDPOINTS[path] returns (send: a streaming endpoint's parts); a model call waits for the one before."""
        call = (lambda: ENDPOINTS[path](self.explorer, payload)) if send is None else (
            lambda: ENDPOINTS[path](self.explorer, payload, send))
        if path not in MODEL_CALLS:
            return call()
        if not self.waiting.acquire(blocking=False):
            raise Busy(f"the server is busy with {MAX_WAITING} requests waiting for the model; try again shortly.")
        try:
            with self.model_lock:
                return call()
        finally:
            self.waiting.release()


class Busy(Exception):
    """More requests wait for the model than MAX_WAITING."""


class Handler(BaseHTTPRequestHandler):
    server_version = "minigpt-explore"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing is held open between requests
    timeout = TIMEOUT

    def log_message(self, format, *args):  # quiet: only errors are logged, one line each (log_error)
        pass

    def log_error(self, format, *args):
        print(f"minigpt explore: {format % args}", file=sys.stderr)

    def send(self, status: int, body: bytes, content_type: str):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                             "img-src 'self' data:")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def send_json(self, status: int, data):
        self.send(status, json.dumps(plain(data), ensure_ascii=False, allow_nan=False).encode(), "application/json")

    def refuse(self, status: int, sentence: str):
        if self.streamed:  # the status is sent: the refusal is the stream's last line
            self.write_line({"error": sentence})
        else:
            self.send_json(status, {"error": sentence})

    streamed = False  # whether a streamed answer has begun

    def write_line(self, data):
        """One line of a streamed answer: its headers first, with the first line (the status is then 200)."""
        if not self.streamed:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()  # no Content-Length: HTTP/1.0 ends the answer by closing the connection
            self.streamed = True
        self.wfile.write(json.dumps(plain(data), ensure_ascii=False, allow_nan=False).encode() + b"\n")
        self.wfile.flush()  # a client gone away raises here: the steps stop

    def stream_json(self, path: str, payload: dict):
        """A streaming endpoint's parts, one JSON line each as they come, then its answer."""
        self.write_line(self.server.answer(path, payload, self.write_line))

    def allowed(self) -> bool:
        """The Host header must name this server (DNS rebinding), and an Origin, if sent, must be this page's."""
        host = self.headers.get("Host", "")
        if host not in self.server.hosts:
            self.refuse(403, f"this server answers only requests addressed to {self.server.url} (or the address it "
                             f"was started with, --host), not to host {host[:80]!r}; start minigpt explore with "
                             f"--host set to the address you open the page at.")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.server.hosts:
            self.refuse(403, f"this server answers only its own page, not a page from {origin[:80]!r}.")
            return False
        return True

    def do_GET(self):
        if not self.allowed():
            return
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            self.send(200, (WEB / name).read_bytes(), content_type)
        elif path == "/api/options":
            self.send_json(200, self.server.explorer.options())
        elif path == "/favicon.ico":
            self.send(204, b"", "image/x-icon")  # none: the browser asks for one
        elif path in ENDPOINTS:
            self.refuse(405, f"{path} takes a POST with a JSON object, not a GET.")
        else:
            self.refuse(404, f"there is no {path[:80]} here; the page is at {self.server.url}.")

    def do_POST(self):
        if not self.allowed():
            return
        path = self.path.split("?", 1)[0]
        if path not in ENDPOINTS or path == "/api/options":
            self.refuse(404 if path not in ENDPOINTS else 405, f"there is no POST endpoint {path[:80]}; see "
                        "the docstring of minigpt/server.py for the endpoints.")
            return
        payload = self.read_payload()
        if payload is None:
            return
        streaming = path in STREAMS and payload.pop("stream", False) is True
        try:
            if streaming:
                self.stream_json(path, payload)
            else:
                self.send_json(200, self.server.answer(path, payload))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream
        except ValueError as e:  # the library's refusals and the explorer's: one sentence each
            self.refuse(400, str(e))
        except Busy as e:
            self.refuse(503, str(e))
        except MemoryError:
            self.refuse(507, "this request needs more memory than the machine has free; ask for less.")
        except Exception as e:  # a bug: one line in the log, one sentence in the page, never a traceback
            self.log_error("%s failed: %s: %s", path, type(e).__name__, e)
            self.refuse(500, f"the server failed on this request ({type(e).__name__}); its log says more.")

    def read_payload(self) -> dict | None:
        """The body as a JSON object, or None after refusing it (411, 413, 415, 400)."""
        if self.headers.get_content_type() != "application/json":
            self.refuse(415, "send the request body as JSON, with Content-Type: application/json.")
            return None
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self.refuse(411, "the request needs a Content-Length header giving the size of its JSON body.")
            return None
        if int(length) > MAX_BODY:
            self.refuse(413, f"the request body has {int(length)} bytes, more than the {MAX_BODY} this server "
                             "reads; send a shorter prompt.")
            return None
        try:
            payload = json.loads(self.rfile.read(int(length)).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self.refuse(400, f"the request body is not valid JSON ({e}).")
            return None
        if not isinstance(payload, dict):
            self.refuse(400, f"the request body must be a JSON object, got a {type(payload).__name__}.")
            return None
        return payload

    def method_not_allowed(self):
        self.refuse(405, f"this server answers GET and POST, not {self.command}.")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = method_not_allowed


def serve(server: ExploreServer):
    """Serve until Ctrl-C, then close the socket: no traceback, no thread left behind."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
