"""Every error the API returns is JSON ``{"error": ..., "detail": ...}`` with a fitting status.

Details never carry the server's paths (``api.paths``), and an unexpected error is answered
with a generic sentence: what went wrong is in the server's log, not in the answer.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

DEPLOY_HINT = ("deploy a run with `python -m training deploy RUN` (or `python -m training deploy --best`); "
               "`make demo` trains and deploys one")
REPAIR_HINT = ("deploy a whole run with `python -m training deploy RUN` (`python -m training runs` lists "
               "the runs and what is wrong with the others)")
UNEXPECTED = "the server could not answer this request; the details are in its log"


class ApiError(Exception):
    """An error with its HTTP status, a short title and a sentence for the client."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def no_deployed_run() -> ApiError:
    return ApiError(503, "no deployed run", f"no model is deployed: {DEPLOY_HINT}")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error=error.error, detail=error.detail), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = jsonify(error=error.name.lower(), detail=error.description)
        for name, value in error.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")  # the exception's text may name files: it stays here
        return jsonify(error="internal server error", detail=UNEXPECTED), 500
