"""Connections to the real server (gunicorn with ``api/gunicorn.conf.py``), at the level of the
socket: kept alive or closed cleanly after an early error, errors of gunicorn's own HTTP parser in
the API's JSON, a chunked body that is malformed or cut off, idle and pipelining clients.

One worker with two threads: the fewest threads a client has to hold to stall the server.
"""

from __future__ import annotations

import http.client
import re
import socket

import pytest
import requests
from api_fixtures import png_bytes, random_rgb, read_responses, start_server, tiny_store

pytestmark = pytest.mark.slow

MAX_BYTES = 1_000_000
TIMEOUT = 60  # seconds per request: a bound, not a measurement
IDLE_CONNECTIONS = 16
# Stock gthread gave each new connection a thread for 5 s to send its first byte: 16 idle
# connections and 2 threads held /health for 40 s. This bound is far above an answer (a few ms)
# and far below the stall.
HEALTH_BOUND = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tiny_store(tmp_path_factory)
    env = {"SEGAPI_ARTIFACTS_DIR": str(store.artifacts), "SEGAPI_DATA_ROOT": str(store.data_root),
           "SEGAPI_MAX_CONTENT_LENGTH": str(MAX_BYTES), "SEGAPI_WARM_UP": "false"}
    running = start_server(env, tmp_path_factory.mktemp("connections") / "server.log", workers=1, threads=2)
    try:
        yield running
    finally:
        running.stop()


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)


def _assert_json_error(response, status: int) -> dict:
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and all(isinstance(body[key], str) and body[key] for key in body)
    return body


@pytest.mark.parametrize("path, content_type, status", [("/api/predict", "text/plain", 415),
                                                        ("/api/predict?format=x", "image/png", 400),
                                                        ("/api/images", "image/png", 405)])
def test_an_error_before_a_large_body_is_read_leaves_the_connection_usable(server, path, content_type, status):
    """The answer says ``Connection: close`` (the unread 200 KB are still on the connection), so
    the client opens a new connection for its next request instead of losing it."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.request("POST", path, body=bytes(200_000), headers={"Content-Type": content_type})
        response = connection.getresponse()
        assert response.status == status and response.getheader("Connection") == "close"
        assert response.getheader("Content-Type").startswith("application/json") and response.read()
        connection.request("GET", "/health")  # the same connection object: it reconnects
        health = connection.getresponse()
        assert health.status == 200 and b'"status":"ok"' in health.read()
    finally:
        connection.close()


def test_a_body_over_the_byte_limit_is_refused_and_the_next_request_is_answered(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.request("POST", "/api/predict", body=bytes(MAX_BYTES + 1), headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        assert response.status == 413 and response.getheader("Connection") == "close"
        response.read()
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_an_invalid_chunk_size_is_400_json(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: api\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        (response,) = read_responses(sock, 1)
    assert _assert_json_error(response, 400)["error"] == "malformed body"
    assert response.headers["connection"] == "close"


UPLOAD_HEAD = b"POST /api/predict HTTP/1.1\r\nHost: api\r\nContent-Type: image/png\r\n"


@pytest.mark.parametrize("head, part", [(UPLOAD_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"1000\r\n\x89PNG"),
                                        (UPLOAD_HEAD + b"Content-Length: 4096\r\n\r\n", b"\x89PNG")],
                         ids=["chunked", "Content-Length"])
def test_a_client_leaving_in_the_middle_of_an_upload_leaves_no_traceback(server, head, part):
    """4 bytes of 4096, then the client is gone: a 400 in the API's JSON (were it still there to
    read it), one line in the log, no traceback; the server goes on."""
    with _connect(server) as sock:
        sock.sendall(head + part)
        sock.shutdown(socket.SHUT_WR)  # nothing more will come
        (response,) = read_responses(sock, 1)
    assert _assert_json_error(response, 400)["error"] == "incomplete upload"
    with requests.Session() as session:
        assert session.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200
    _wait_for_line(server, "upload cut short")
    assert "Traceback" not in server.log(), server.log()[-3000:]


def _wait_for_line(server, text: str) -> None:
    """Until the server's log holds ``text`` (written before the answer: at once when all is well)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{server.log()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: api\r\n\r\n", 414),  # request line over 4094 bytes
    (b"GET /health HTTP/1.1\r\nHost: api\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),  # a header over 8190
    (b"GET /health HTTP/1.1\r\nHost: api\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"BR0KEN\r\n\r\n", 400),
])
def test_gunicorns_own_errors_are_json(server, request_bytes, status):
    with _connect(server) as sock:
        sock.sendall(request_bytes)
        (response,) = read_responses(sock, 1)
    _assert_json_error(response, status)


def test_health_answers_while_idle_connections_are_open(server):
    """Connections that send nothing hold no thread: /health answers at once, however many."""
    idle = [_connect(server) for _ in range(IDLE_CONNECTIONS)]
    try:
        response = requests.get(f"{server.url}/health", timeout=HEALTH_BOUND)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        # and once they speak, they are answered
        for sock in idle[:3]:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n")
            assert read_responses(sock, 1)[0].status == 200
    finally:
        for sock in idle:
            sock.close()


def test_pipelined_requests_are_all_answered_in_order(server):
    upload = png_bytes(random_rgb(8, 8))
    requests_bytes = (b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n"
                      b"POST /api/predict?format=json HTTP/1.1\r\nHost: api\r\nContent-Type: image/png\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(upload) + upload
                      + b"GET /api/images?limit=1 HTTP/1.1\r\nHost: api\r\n\r\n"
                      b"GET /api/images/abc HTTP/1.1\r\nHost: api\r\n\r\n")
    with _connect(server) as sock:
        sock.sendall(requests_bytes)
        responses = read_responses(sock, 4)
    assert [response.status for response in responses] == [200, 200, 200, 400]
    assert responses[1].json()["width"] == 8 and responses[2].json()["limit"] == 1
    assert re.match(r"^application/json", responses[3].headers["content-type"])


def test_a_model_loaded_at_the_first_request_starts_tensorflow_quietly(server):
    """Without warm-up the worker loads the model at the first prediction: TensorFlow starts there
    as it does in a warmed-up worker, without its start-up lines in the log (above all the cuInit
    error of a machine without a GPU driver)."""
    from training import runtime_env

    assert "model_loaded=False" in server.log()  # post_worker_init: nothing loaded before serving
    response = requests.get(f"{server.url}/api/images/0/segmentation", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    assert requests.get(f"{server.url}/health", timeout=TIMEOUT).json()["model_loaded"] is True
    log = server.log()
    assert "I0000" not in log and "absl::InitializeLog" not in log, log[-3000:]
    if not runtime_env.has_nvidia_driver():
        assert "failed call to cuInit" not in log, log[-3000:]
