"""What the server tests share: a live uvicorn server on 127.0.0.1 and the OpenAI error-shape check."""

import socket
import threading
import time

import httpx
import uvicorn


class Live:
    """A uvicorn server for `app` on a free port of 127.0.0.1, in a daemon thread."""

    def __init__(self, app, wait=True):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.01)
        if wait:
            self.wait_ready()

    def wait_ready(self, deadline=60):
        end = time.monotonic() + deadline
        while httpx.get(self.url + "/health").status_code != 200:
            assert time.monotonic() < end, "the server did not become ready"
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)


def assert_error(r, status, param=None, code=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    return err
