"""A minigpt explore server on a free loopback port, in a thread, and plain HTTP requests to it."""

import http.client
import json
import threading
from contextlib import contextmanager

from minigpt import Tokenizer
from minigpt.web.explore import Explorer
from minigpt.web.server import ExploreServer


@contextmanager
def running_server(model, name="fixture", host="127.0.0.1"):
    """An ExploreServer on `host` and port 0 (the OS picks a free one), served by a thread until the block ends."""
    server = ExploreServer(Explorer(model, Tokenizer(), name=name), host=host, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def call(server, method, path, body=None, headers=None, timeout=60):
    """-> (status, decoded JSON or raw bytes). body: a dict (sent as JSON) or bytes (sent as they are)."""
    port = server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Host": f"127.0.0.1:{port}"}
    if data is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw
