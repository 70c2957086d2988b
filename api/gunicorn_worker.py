"""The gunicorn worker of the API: gunicorn's threaded worker (``gthread``), with three changes.

1. A new connection waits for its first bytes on the worker's poller, not in a thread. Stock
   gthread gives it a thread for up to 5 s first: a few clients that connect and send nothing
   (browsers open spare connections; so does a slow or hostile client) held every thread, and
   ``/health`` waited 15 s and more behind them. Now an idle connection holds no thread; it is
   closed after ``FIRST_BYTES_SECONDS`` of silence.
2. An answer of the app that says ``Connection: close`` closes the connection. gunicorn drops an
   app's hop-by-hop headers (PEP 3333) and would announce keep-alive, then close anyway when the
   request's body was left unread (it reads at most 64 KiB of it): the client's next request on
   that connection failed. ``api.errors`` says ``Connection: close`` for exactly those answers.
3. Errors of gunicorn's own HTTP parser (a request line over 4094 bytes: 414, headers too large:
   431, a malformed request: 400) are answered in the API's JSON ``{"error", "detail"}``, like
   every other error, instead of an HTML page.

Not changed: a client that sends part of a request and then stalls holds one thread until it
sends the rest or goes away (gthread reads a request in a thread, without a time limit).

gunicorn is pinned (requirements.txt): these hooks use its ``ThreadWorker`` internals
(``pending_conns``, ``on_pending_socket_readable``, ``util.write_error``), which
``tests/test_api_connections.py`` checks against the real server.
"""

from __future__ import annotations

import errno
import json
import selectors
import time
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from api.errors import UNEXPECTED

FIRST_BYTES_SECONDS = 10  # a new connection that sends nothing for this long is closed


def write_json_error(sock, status: int, reason: str, message: str) -> None:
    """gunicorn's own error answer (``util.write_error``), as the API's JSON error."""
    body = json.dumps({"error": reason.lower(), "detail": message or UNEXPECTED}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class ClosingWhenAsked:
    """WSGI middleware: an answer with ``Connection: close`` makes gunicorn close the connection
    after it (gunicorn's ``start_response`` is a method of its response, which has ``force_close``)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            if any(name.lower() == "connection" and value.strip().lower() == "close" for name, value in headers):
                force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if force_close is not None:
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class ApiWorker(ThreadWorker):
    """``gthread`` with idle connections on the poller, ``Connection: close`` honoured and JSON
    parser errors (see the module's description)."""

    def init_process(self):
        util.write_error = write_json_error  # this worker process's answers only
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        if hasattr(self.wsgi, "wsgi_app"):  # Flask: the app stays the app (post_worker_init uses its test client)
            self.wsgi.wsgi_app = ClosingWhenAsked(self.wsgi.wsgi_app)
        else:
            self.wsgi = ClosingWhenAsked(self.wsgi)

    def accept(self, listener):
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking until it has bytes
        conn.timeout = time.monotonic() + FIRST_BYTES_SECONDS
        self.pending_conns.append(conn)  # closed by murder_pending when it stays silent
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
