"""Shared set-up of the API tests: a tiny dataset with a tiny trained and deployed run, and a
real gunicorn server on a free loopback port.

The store is built once per test session (both API test modules use the same one; the API
only reads it), in a pytest temporary folder.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cityscapes_builder import build_tiny_dataset
from PIL import Image

READY = re.compile(r"worker \d+ ready: ")
REPO = Path(__file__).resolve().parent.parent
RUN_NAME = "tiny"
HEIGHT, WIDTH = 16, 32
IMAGES, TEST_IMAGES = 14, 4  # build_tiny_dataset: 2 train cities x 5, 4 val (our "test" split)
NUM_CLASSES = 8  # categories8, the default class set

TINY = ["data.height=16", "data.width=32", "data.batch_size=4", "train.epochs=1", "train.patience=0",
        "model.name=simple", "model.options.filters=[4, 8, 16]", "data.workers=1"]


@dataclass(frozen=True)
class TinyStore:
    data_root: Path
    artifacts: Path
    run: str = RUN_NAME


_STORE: dict[str, TinyStore] = {}


def tiny_store(tmp_path_factory) -> TinyStore:
    """Build (once per session) the tiny dataset, train one epoch of a tiny model, deploy it."""
    if "store" not in _STORE:
        from training.fit import runner as train_module
        from training.fit.config import load_config
        from training.runs.deployment import deploy

        base = tmp_path_factory.mktemp("api_store")
        root = build_tiny_dataset(base / "cityscapes", height=HEIGHT, width=WIDTH)
        artifacts = base / "artifacts"
        config = load_config(None, TINY + [f"data.root={root}", f"name={RUN_NAME}"])
        run_dir = train_module.train(config, artifacts, verbose=0)
        assert run_dir.name == RUN_NAME
        deploy(RUN_NAME, artifacts)
        _STORE["store"] = TinyStore(root, artifacts)
    return _STORE["store"]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


# ---------------------------------------------------------------------------- real server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A gunicorn process group serving ``api:create_app()`` on 127.0.0.1."""

    process: subprocess.Popen
    port: int
    log_path: Path
    log_file: object = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The master's children (the workers), from /proc."""
        pids = []
        task_dir = Path(f"/proc/{self.process.pid}/task")
        for task in task_dir.iterdir() if task_dir.is_dir() else ():
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return sorted(set(pids))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after ``timeout`` seconds."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=timeout)
        # The workers are in the same group; make sure none outlives the master.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log_file.close()


GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "api" / "gunicorn.conf.py"), "api:create_app()"]


def server_environment(env_overrides: dict[str, str], port: int, workers: int = 2, threads: int = 4) -> dict:
    """The environment ``GUNICORN`` runs in: loopback on ``port``, the repository importable."""
    env = {**os.environ, "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_WORKERS": str(workers),
           "API_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **env_overrides}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start_server(env_overrides: dict[str, str], log_path: Path, workers: int = 2, threads: int = 4,
                 start_timeout: float = 90.0, attempts: int = 3) -> Server:
    """Start gunicorn with ``api/gunicorn.conf.py`` and wait (bounded) until ``/health`` answers.

    A port taken between choosing and binding it is retried with another port (``attempts``).
    Raises RuntimeError with the server's log when it does not come up in ``start_timeout``.
    """
    import requests

    last_log = ""
    for _ in range(attempts):
        port = free_port()
        env = server_environment(env_overrides, port, workers, threads)
        log_file = open(log_path, "w")
        process = subprocess.Popen(
            GUNICORN, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: killed as a whole
        server = Server(process, port, log_path, log_file)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = requests.get(f"{server.url}/health", timeout=2).status_code == 200
            except requests.RequestException:
                healthy = False
            # every worker has built its app (post_worker_init in api/gunicorn.conf.py logs it)
            if healthy and len(READY.findall(server.log())) >= workers:
                return server
            time.sleep(0.25)  # bounded polling for the start only
        last_log = server.log()
        server.stop()
        if "Address already in use" not in last_log:
            break
    raise RuntimeError(f"the API server did not answer /health within {start_timeout:.0f} s; its log:\n"
                       f"{last_log[-6000:]}")


# ---------------------------------------------------------------------------- stores a test changes

def copy_store(store: TinyStore, target: Path) -> TinyStore:
    """A private copy of the tiny dataset and run store, for a test that changes them (the shared
    store is read by every API test)."""
    import shutil

    data_root = Path(shutil.copytree(store.data_root, target / "cityscapes"))
    artifacts = Path(shutil.copytree(store.artifacts, target / "artifacts"))
    return TinyStore(data_root, artifacts, store.run)


REPLACEMENT_SEED = 4242  # train.seed in the replacement's config.yaml: the card must show it


def replace_run(artifacts: Path, name: str, predicted_class: int) -> dict:
    """Delete run ``name`` and publish another run under the same name, as training would: a
    new folder renamed into place, with its own uid, config.yaml and metrics.json, and a model
    that predicts ``predicted_class`` at every pixel. Returns the new run's metrics."""
    import json
    import shutil
    import uuid

    import yaml

    from training.models import load_model

    runs = artifacts / "runs"
    staging = runs / f".staging-{name}-replacement"
    shutil.copytree(runs / name, staging)
    model = load_model(staging / "model.keras")
    head = model.get_layer("head_logits")
    kernel, bias = head.get_weights()
    bias = np.full_like(bias, -10.0)
    bias[predicted_class] = 10.0
    head.set_weights([np.zeros_like(kernel), bias])
    model.save(staging / "model.keras")
    config = yaml.safe_load((staging / "config.yaml").read_text())
    config["train"]["seed"] = REPLACEMENT_SEED
    (staging / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = json.loads((staging / "metrics.json").read_text())
    metrics.update(uid=uuid.uuid4().hex, miou=0.125, epochs=42, created="2030-01-01T00:00:00+0000")
    (staging / "metrics.json").write_text(json.dumps(metrics))
    shutil.rmtree(runs / name)
    os.replace(staging, runs / name)
    return metrics


def truncate(path: Path) -> None:
    """Cut a file to half its length (a write stopped halfway)."""
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def remove_pair(data_root: Path, entry) -> None:
    """Delete an image and its label from a dataset (an index entry's files)."""
    (data_root / entry.image).unlink()
    (data_root / entry.label).unlink()


# ---------------------------------------------------------------------------- raw HTTP/1.1

@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self):
        import json

        return json.loads(self.body)


def read_responses(sock: socket.socket, count: int) -> list[RawResponse]:
    """``count`` responses read off ``sock`` (each with a Content-Length), in the order they come;
    fewer when the server closes the connection first. The socket's timeout bounds each read."""
    buffer, responses = b"", []
    while len(responses) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            lines = buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {name.strip().lower(): value.strip()
                       for name, _, value in (line.partition(":") for line in lines[1:])}
            end = head_end + 4 + int(headers.get("content-length", 0))
            if len(buffer) >= end:
                responses.append(RawResponse(int(lines[0].split()[1]), headers, buffer[head_end + 4:end]))
                buffer = buffer[end:]
                continue
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
    return responses
