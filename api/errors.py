"""Every error the API returns is JSON ``{"error": ..., "detail": ...}`` with a fitting status."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

DEPLOY_HINT = ("deploy a run with `python -m training deploy RUN` (or `python -m training deploy --best`); "
               "`make demo` trains and deploys one")


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
        log.exception("unhandled error")
        return jsonify(error="internal server error", detail=f"{type(error).__name__}: {error}"), 500
