"""Gunicorn settings for the segmentation API (``make api``).

    .venv/bin/python -m gunicorn -c api/gunicorn.conf.py "api:create_app()"

Everything comes from the environment:

    API_HOST      bind address                    127.0.0.1 (loopback only unless you say so)
    API_PORT      port                            8000
    API_WORKERS   worker processes                2
    API_THREADS   threads per worker (gthread)    4
    API_TIMEOUT   seconds before a silent worker is restarted   120
    API_ACCESS_LOG  "-" (stderr) or a file to turn the access log on; off by default
    API_LOG_LEVEL   gunicorn's log level          info

The ``SEGAPI_*`` settings are checked first (``api.settings``): a wrong one stops the start with
a message naming it and its value, before any worker. The workers are ``api.gunicorn_worker.ApiWorker``:
gunicorn's ``gthread`` whose idle connections hold no thread, which closes a connection an answer
says to close, and answers its own HTTP errors (414, 431, 400) in the API's JSON.

Each worker builds its own app (no ``preload_app``: TensorFlow must be imported after the
fork, never before) with ``SEGAPI_WARM_UP=true`` unless the environment says otherwise, so the
deployed model is loaded and has run one prediction before the worker takes its first request.
Where it will, ``post_fork`` first starts TensorFlow in the worker as the command line does
(``training.fit.predict.start_tensorflow_quietly``): without its start-up lines, above all the
``failed call to cuInit`` error a machine without a GPU logs (without warm-up, the app does the
same at its first model load). ``post_worker_init`` then asks the
worker's own app for ``/health`` and logs whether the model is loaded. Every ``SEGAPI_*``
variable reaches the app (``SEGAPI_RUN``, ``SEGAPI_DATA_ROOT``, ...).
"""

from __future__ import annotations

import json
import os

from api.settings import environment_problem  # no TensorFlow: the master stays light


def _int(name: str, default: int, minimum: int = 1) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name}={text!r} is not an integer") from None
    if value < minimum:
        raise SystemExit(f"{name}={value} must be at least {minimum}")
    return value


_problem = environment_problem()
if _problem:
    raise SystemExit(_problem)

_host = os.environ.get("API_HOST", "").strip() or "127.0.0.1"
_port = _int("API_PORT", 8000, minimum=0)
if _port > 65535:
    raise SystemExit(f"API_PORT={_port} is not a port")

bind = [f"[{_host}]:{_port}" if ":" in _host and not _host.startswith("[") else f"{_host}:{_port}"]
workers = _int("API_WORKERS", 2)
worker_class = "api.gunicorn_worker.ApiWorker"  # gthread, see its module
threads = _int("API_THREADS", 4)
timeout = _int("API_TIMEOUT", 120)
graceful_timeout = 30
keepalive = 5
preload_app = False  # TensorFlow is imported in each worker, after the fork

# Logs: errors to stderr, access log only when asked for.
accesslog = os.environ.get("API_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("API_LOG_LEVEL", "info")

# No control socket: several servers (make api, the tests, the benchmark) may run side by side,
# and they would all share the default $HOME/.gunicorn/gunicorn.ctl.
control_socket_disable = True

proc_name = "segapi"

# Warm-up: the app loads the model and predicts once while it is created, in each worker.
# An explicit SEGAPI_WARM_UP in the environment wins (e.g. SEGAPI_WARM_UP=false).
raw_env = [f"SEGAPI_WARM_UP={os.environ.get('SEGAPI_WARM_UP', 'true')}"]


def _loads_a_model_at_start() -> bool:
    """Whether a worker's app loads a model while it is created: warm-up on, and a run to serve
    (``SEGAPI_RUN``, or a deployed.json in the store). Otherwise TensorFlow waits for first use."""
    text = os.environ.get("SEGAPI_WARM_UP", "true")
    try:
        warm_up = json.loads(text)  # as Flask's from_prefixed_env reads it
    except ValueError:
        warm_up = text
    if not warm_up:
        return False
    if os.environ.get("SEGAPI_RUN", "").strip():
        return True
    from training.runs.layout import DEPLOYED, artifacts_dir

    return (artifacts_dir() / DEPLOYED).exists()


def post_fork(server, worker) -> None:
    """Start TensorFlow quietly in a worker that is about to load a model (the command line's quiet
    start: TensorFlow's import and first device listing with its start-up noise dropped, real
    errors kept). A failure here is only logged: the app's own start reports what is wrong."""
    try:
        if not _loads_a_model_at_start():
            return
        from training.fit.predict import start_tensorflow_quietly

        start_tensorflow_quietly()
    except Exception as exc:  # a report only: never stop a worker from starting
        worker.log.warning("worker %s: quiet TensorFlow start failed: %r", worker.pid, exc)


def post_worker_init(worker) -> None:
    """Report, once per worker, whether its app has the model loaded before serving."""
    try:
        response = worker.wsgi.test_client().get("/health")
        status = response.get_json(silent=True) or {}
        worker.log.info("worker %s ready: run=%s model_loaded=%s", worker.pid, status.get("run"),
                        status.get("model_loaded"))
    except Exception as exc:  # a report only: never stop a worker from serving
        worker.log.warning("worker %s: /health during start-up failed: %r", worker.pid, exc)
