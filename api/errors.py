"""Every error the API returns is JSON ``{"error": ..., "detail": ...}`` with a fitting status.

Details never carry the server's paths (``api.paths``), and an unexpected error is answered
with a generic sentence: what went wrong is in the server's log, not in the answer.

An answer given without reading the request's body (an error found first: a wrong content type,
no deployed run) says ``Connection: close``: the unread body is still on the connection, where the
server would look for the client's next request (gunicorn reads at most 64 KiB of it, then drops
the connection its answer said it would keep, and the client's next request on it fails).
``api.gunicorn_worker`` makes gunicorn honour it.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

DEPLOY_HINT = ("deploy a run with `python -m training deploy RUN` (or `python -m training deploy --best`); "
               "`make demo` trains and deploys one")
REPAIR_HINT = ("deploy a whole run with `python -m training deploy RUN` (`python -m training runs` lists "
               "the runs and what is wrong with the others)")
UNEXPECTED = "the server could not answer this request; the details are in its log"
BODY_READ = "api.body_read"  # environ key: the view read the request's body to its end


class ApiError(Exception):
    """An error with its HTTP status, a short title, a sentence for the client, and any headers
    the answer needs (``Retry-After``)."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


def no_deployed_run() -> ApiError:
    return ApiError(503, "no deployed run", f"no model is deployed: {DEPLOY_HINT}")


def body_read() -> None:
    """Say that the current request's body was read to its end: its connection can serve the next."""
    request.environ[BODY_READ] = True


def _body_left_unread() -> bool:
    declared = (request.content_length or 0) > 0 or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return declared and not request.environ.get(BODY_READ)


def too_large_text(limit: int | None, sent: int | None) -> str:
    """The 413 of a body past ``limit`` bytes (``MAX_CONTENT_LENGTH``), with ``sent`` bytes when the
    request declared them."""
    if limit is None:
        return "the request body is larger than this server takes"
    size = f"{limit / 2**20:g} MB ({limit:,} bytes)" if limit >= 2**20 else f"{limit:,} bytes"
    body = f"the request body of {sent:,} bytes" if sent else "the request body"
    return f"{body} is more than the {size} this server takes (MAX_CONTENT_LENGTH)"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error=error.error, detail=error.detail), error.status, error.headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        detail = error.description
        if isinstance(error, RequestEntityTooLarge):
            detail = too_large_text(request.max_content_length, request.content_length)
        response = jsonify(error=error.name.lower(), detail=detail)
        for name, value in error.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")  # the exception's text may name files: it stays here
        return jsonify(error="internal server error", detail=UNEXPECTED), 500

    @app.after_request
    def close_after_an_unread_body(response):
        if _body_left_unread():
            response.headers["Connection"] = "close"
        return response
