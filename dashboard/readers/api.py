"""What the dashboard reads from the segmentation API (the Deployed model page): its health, its
segmentation of a dataset image (cached a minute), its prediction of an uploaded photo. Every
failure becomes an ``ApiProblem`` whose message says, for people, whether the API is unreachable or
answered an error, never a stack trace.
"""

from __future__ import annotations

import os
import time

import requests
import streamlit as st

DEFAULT_API_URL = "http://127.0.0.1:8000"
HEALTH_TIMEOUT_S = 2.0
SEGMENTATION_TIMEOUT_S = 30.0
PREDICT_TIMEOUT_S = 60.0
SEGMENTATION_TTL_S = 60  # a redeploy shows within a minute; repeated reruns cost nothing


def api_base_url() -> str:
    """``$SEGMENTATION_API_URL``, else ``api_url`` in Streamlit secrets, else the local default."""
    url = os.environ.get("SEGMENTATION_API_URL")
    if not url:
        try:
            url = st.secrets.get("api_url")
        except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
            url = None
    return (url or DEFAULT_API_URL).rstrip("/")


class ApiProblem(Exception):
    """The API could not be reached, or answered an error: ``message`` says which, for people."""

    def __init__(self, message: str, url: str, unreachable: bool):
        super().__init__(message)
        self.message, self.url, self.unreachable = message, url, unreachable


def _call(method: str, url: str, timeout: float, **kwargs) -> tuple[dict, float]:
    """(JSON answer, round trip in ms); ApiProblem for every failure, with a readable message."""
    started = time.perf_counter()
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise ApiProblem(f"The API did not answer within {timeout:g} s.", url, unreachable=True) from None
    except requests.ConnectionError:
        raise ApiProblem("Nothing answers at this address: the API is not running (or listens elsewhere).",
                         url, unreachable=True) from None
    except requests.RequestException as error:
        raise ApiProblem(f"The request failed: {type(error).__name__}.", url, unreachable=True) from None
    milliseconds = (time.perf_counter() - started) * 1000.0
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code != 200:
        if isinstance(payload, dict) and "error" in payload:  # the API's own {"error", "detail"}
            detail = f"{payload['error']}: {payload.get('detail', '')}".rstrip(": ")
            raise ApiProblem(f"The API answered {response.status_code}: {detail}", url, unreachable=False)
        raise ApiProblem(f"The server at this address answered {response.status_code} {response.reason or ''}"
                         ", not as the segmentation API does: another program may hold the port.",
                         url, unreachable=True)
    if not isinstance(payload, dict):
        raise ApiProblem("The server at this address answered 200 but not with JSON: another program may "
                         "hold the port.", url, unreachable=True)
    return payload, milliseconds


def fetch_health(api: str) -> dict:
    """``GET /health`` (never cached: it is the page's liveness probe)."""
    payload, _ = _call("GET", f"{api}/health", HEALTH_TIMEOUT_S)
    return payload


@st.cache_data(ttl=SEGMENTATION_TTL_S, show_spinner=False, max_entries=64)
def fetch_segmentation(api: str, image_id: int) -> tuple[dict, float]:
    """``GET /api/images/<id>/segmentation?format=color`` and its round trip in ms (idempotent,
    cached by (url, id) for a minute; failures raise and are never cached)."""
    return _call("GET", f"{api}/api/images/{int(image_id)}/segmentation?format=color", SEGMENTATION_TIMEOUT_S)


def predict_upload(api: str, name: str, data: bytes, mime: str) -> tuple[dict, float]:
    """``POST /api/predict?format=json`` with the photo in multipart field ``image``."""
    return _call("POST", f"{api}/api/predict?format=json", PREDICT_TIMEOUT_S,
                 files={"image": (name, data, mime or "application/octet-stream")})
