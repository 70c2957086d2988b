"""The API under gunicorn at the demo's resolution (256x512) or Cityscapes' own (2048x1024):
uncached /segmentation next to its floor, every cached route, the largest upload's time and
memory, then 2,000 mixed requests (good and bad) with the workers' memory.

    .venv/bin/python bench/bench_api.py --resolution demo|full [--artifacts DIR] [--workers 2]
        [--threads 4] [--uncached 24] [--cached 200] [--mixed 2000] [--uploads 3]

Without ``--artifacts`` it serves a store of its own, ``data/bench-api-<dataset>/``: the fastest
demo config (simple, 128x256) trained for one epoch on the generated dataset of
``bench/datasets.py`` and deployed (made once, ~30 s). With ``--artifacts`` it serves that store's
deployed run on the run's dataset. Writes ``bench/results/api-<resolution>.json`` and prints tables.

- floor: what any server must do for an uncached answer, measured in this process before the
  server starts: decoding the photo and its labels with Pillow, and the bare forward pass
  (``predict_on_batch``, batch 1, at the model's size); medians over the test images;
- uncached: a server started with both caches off (``SEGAPI_CACHE_BYTES=0``,
  ``SEGAPI_INPUT_CACHE_BYTES=0``), so every request decodes, predicts, scores and encodes;
- cached: a server with its caches, each route asked until every worker has answered it, then
  measured; pictures without ``If-None-Match`` (a 304 costs less still);
- upload: the largest square PNG the server takes (``MAX_UPLOAD_PIXELS``: 4000x4000) of a
  street-like scene, ``POST /api/predict``; the worker's peak RSS over what it held before
  (``/proc/<pid>/clear_refs`` resets the peak);
- clients are threads, each with its own ``requests.Session`` (keep-alive).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import training  # noqa: E402,F401  (import-time environment)
from api.settings import DEFAULTS as API_DEFAULTS  # noqa: E402
from bench.datasets import add_resolution_argument, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402

RESULTS = REPO / "bench" / "results"
UPLOAD_SIDE = math.isqrt(API_DEFAULTS["MAX_UPLOAD_PIXELS"])
READY = re.compile(r"worker \d+ ready: ")
REQUEST_TIMEOUT = 120  # seconds: a bound for one request
PHASE_SECONDS = 300  # a bound for each measured phase
BENCH_CONFIG = REPO / "configs" / "demo" / "simple_scratch_cce_v1_128x256.yaml"
CACHED_ROUTES = ("segmentation", "", "image.png", "ground_truth.png", "prediction.png", "prediction.png?overlay=0.5")


# ---------------------------------------------------------------------------- the store and the server

def bench_store(resolution: str) -> Path:
    """A run store with one run trained on the bench dataset and deployed (made once)."""
    root = bench_dataset(resolution)
    artifacts = REPO / "data" / f"bench-api-{root.name}"
    if not (artifacts / "deployed.json").exists():
        print(f"training a bench model on {root.name} into {artifacts} (once)", file=sys.stderr, flush=True)
        name = f"bench_api_{resolution}"
        python = [sys.executable, "-m", "training"]
        subprocess.run(python + ["train", str(BENCH_CONFIG), "--set", "train.epochs=1", "--set", f"name={name}",
                                 "--set", f"data.root={root}", "--artifacts", str(artifacts)], check=True, cwd=REPO)
        subprocess.run(python + ["deploy", name, "--artifacts", str(artifacts)], check=True, cwd=REPO)
    return artifacts


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, artifacts: Path, workers: int, threads: int, log_path: Path, extra_env: dict | None = None):
        import requests

        self.port, self.log_path, self.log_file = free_port(), log_path, open(log_path, "w")
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ARTIFACTS_DIR": str(artifacts), "API_HOST": "127.0.0.1", "API_PORT": str(self.port),
               "API_WORKERS": str(workers), "API_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "api" / "gunicorn.conf.py"), "api:create_app()"],
            cwd=REPO, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        start = time.monotonic()
        while time.monotonic() < start + 120 and self.process.poll() is None:
            try:
                healthy = requests.get(f"{self.url}/health", timeout=2).status_code == 200
            except requests.RequestException:
                healthy = False
            if healthy and len(READY.findall(self.log())) >= workers:
                self.start_seconds = time.monotonic() - start
                return
            time.sleep(0.25)
        log = self.log()
        self.stop()
        raise SystemExit(f"the server did not start in 120 s; its log:\n{log[-5000:]}")

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        pids = set()
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                pids.update(int(p) for p in (task / "children").read_text().split())
            except OSError:
                pass
        return sorted(pids)

    def worker_memory(self, field: str = "VmRSS") -> dict[int, float]:
        """``field`` of /proc/<pid>/status (VmRSS: now, VmHWM: the peak) of each worker, MiB."""
        values = {}
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(f"{field}:"):
                        values[pid] = round(int(line.split()[1]) / 1024, 1)  # kB -> MiB
            except OSError:
                pass
        return values

    def reset_peaks(self) -> None:
        for pid in self.worker_pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait)
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass
        self.log_file.close()


# ---------------------------------------------------------------------------- measuring

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def send(url: str, plan: list[tuple], clients: int) -> dict:
    """Send every ``(name, method, path, kwargs)`` of ``plan`` once, ``clients`` threads with a
    Session each: latencies, statuses by name, the ``cached`` flags of JSON answers, wall time."""
    import requests

    lock, queue = threading.Lock(), list(reversed(plan))
    out = {"latencies": [], "by_kind": {}, "cached": Counter(), "failures": []}
    deadline = time.monotonic() + PHASE_SECONDS

    def client():
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if not queue:
                        return
                    name, method, path, kwargs = queue.pop()
                start, response = time.perf_counter(), None
                try:
                    response = session.request(method, url + path, timeout=REQUEST_TIMEOUT, **kwargs)
                    status, body = response.status_code, response.content
                except requests.RequestException as error:
                    status = f"connection error: {type(error).__name__}"
                elapsed = 1000 * (time.perf_counter() - start)
                json_answer = status == 200 and response.headers.get("Content-Type") == "application/json"
                cached = json.loads(body).get("cached") if json_answer else None
                with lock:
                    out["latencies"].append(elapsed)
                    out["by_kind"].setdefault(name, Counter())[status] += 1
                    if cached is not None:
                        out["cached"][bool(cached)] += 1
                    if not isinstance(status, int) or status >= 500:
                        out["failures"].append(f"{method} {path} -> {status}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    out["seconds"] = time.perf_counter() - start
    return out


def load(url: str, paths: list[str], clients: int) -> dict:
    """GET every path once: latency percentiles and throughput."""
    sent = send(url, [("GET", "GET", path, {}) for path in paths], clients)
    latencies, cached = sent["latencies"], sent["cached"]
    return {"clients": clients, "requests": len(latencies), "statuses": dict(sent["by_kind"].get("GET", {})),
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "throughput_rps": round(len(latencies) / sent["seconds"], 1),
            "cache_hit_ratio": round(cached[True] / sum(cached.values()), 3) if cached else None}


def floor(run, entries, root: Path, repeats: int = 50) -> dict:
    """Medians (ms) of what an uncached answer cannot avoid: Pillow decoding the photo and its
    labels, and the bare forward pass at the model's size."""
    import numpy as np
    from PIL import Image

    from training.models import load_model

    def timed(action, *arguments) -> float:
        start = time.perf_counter()
        action(*arguments)
        return 1000 * (time.perf_counter() - start)

    photo = [timed(lambda path: np.asarray(Image.open(path).convert("RGB")), root / e.image) for e in entries]
    label = [timed(lambda path: np.asarray(Image.open(path)), root / e.label) for e in entries]
    model = load_model(run.model_path)
    batch = np.random.default_rng(0).random((1, *run.input_size, 3), dtype=np.float32)
    for _ in range(5):
        model.predict_on_batch(batch)
    forward = [timed(lambda: model.predict_on_batch(batch)) for _ in range(repeats)]
    out = {"photo_decode_ms": percentile(photo, 50), "label_decode_ms": percentile(label, 50),
           "forward_ms": percentile(forward, 50)}
    return {**{k: round(v, 2) for k, v in out.items()}, "total_ms": round(sum(out.values()), 2),
            "model_size": "x".join(map(str, run.input_size))}


def scene_png(height: int, width: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (70, 130, 180))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height // 2, width, height), fill=(128, 64, 128))
    draw.rectangle((width // 5, height // 4, width // 2, height * 3 // 4), fill=(70, 70, 70))
    draw.ellipse((width * 3 // 5, height // 3, width * 4 // 5, height * 2 // 3), fill=(0, 0, 142))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def big_upload(server: Server, count: int) -> dict:
    """``count`` of the largest square uploads the server takes (a bigger one is a 413 since
    ``MAX_UPLOAD_PIXELS``), one at a time: latency and each worker's peak RSS growth."""
    import requests

    data, times, growth = scene_png(UPLOAD_SIDE, UPLOAD_SIDE), [], []
    for _ in range(count):
        server.reset_peaks()
        before = server.worker_memory()
        start = time.perf_counter()
        response = requests.post(f"{server.url}/api/predict", data=data, headers={"Content-Type": "image/png"},
                                 timeout=REQUEST_TIMEOUT)
        times.append(1000 * (time.perf_counter() - start))
        assert response.status_code == 200, response.text[:300]
        peaks = server.worker_memory("VmHWM")
        growth.append(max(peaks[pid] - before.get(pid, peaks[pid]) for pid in peaks))
    return {"pixels": f"{UPLOAD_SIDE}x{UPLOAD_SIDE}", "bytes": len(data), "p50_ms": round(percentile(times, 50), 1),
            "peak_rss_growth_mib": max(growth), "worker_rss_mib": server.worker_memory()}


def mixed(url: str, ids: list[int], cached_ids: list[int], count: int, clients: int, seed: int = 0) -> dict:
    """``count`` requests of every kind, good and bad; statuses by kind."""
    rng = random.Random(seed)
    upload, garbage = scene_png(96, 160), bytes(rng.randrange(256) for _ in range(2048))
    kinds = [  # (weight, name, () -> (method, path, kwargs))
        (20, "segmentation (any id)", lambda: ("GET", f"/api/images/{rng.choice(ids)}/segmentation", {})),
        (20, "segmentation (cached id)", lambda: ("GET", f"/api/images/{rng.choice(cached_ids)}/segmentation", {})),
        (8, "prediction.png", lambda: ("GET", f"/api/images/{rng.choice(cached_ids)}/prediction.png?overlay=0.5", {})),
        (12, "metadata", lambda: ("GET", f"/api/images/{rng.choice(ids)}", {})),
        (8, "list", lambda: ("GET", f"/api/images?split=test&offset={rng.randrange(100)}&limit=20", {})),
        (10, "bad id", lambda: ("GET", "/api/images/" + rng.choice(["abc", "-1", "1.5", "99999999", "%00", "1e9"])
                                + rng.choice(["", "/segmentation", "/image.png"]), {})),
        (4, "bad query", lambda: ("GET", rng.choice(["/api/images?limit=0", "/api/images?split=nope",
                                                      f"/api/images/{ids[0]}/segmentation?format=x",
                                                      f"/api/images/{ids[0]}/prediction.png?overlay=2"]), {})),
        (8, "bad upload", lambda: ("POST", "/api/predict", rng.choice([
            {"data": garbage, "headers": {"Content-Type": "image/png"}},
            {"data": b"hello", "headers": {"Content-Type": "text/plain"}},
            {"data": upload[: len(upload) // 2], "headers": {"Content-Type": "image/png"}},
            {"files": {"image": ("x.png", garbage, "image/png")}},
            {"data": b"", "headers": {"Content-Type": "image/png"}}]))),
        (10, "predict upload", lambda: ("POST", "/api/predict", rng.choice([
            {"files": {"image": ("street.png", upload, "image/png")}},
            {"data": upload, "headers": {"Content-Type": "image/png", "Accept": "application/json"}}]))),
    ]
    plan = [(kind[1], *kind[2]()) for kind in rng.choices(kinds, weights=[k[0] for k in kinds], k=count)]
    return send(url, plan, clients)


# ---------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resolution_argument(parser)
    parser.add_argument("--artifacts", type=Path, default=None, help="serve this store's deployed run instead")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--uncached", type=int, default=24, help="uncached requests per concurrency level")
    parser.add_argument("--cached", type=int, default=200, help="cached requests per route and concurrency level")
    parser.add_argument("--uploads", type=int, default=3, help="largest uploads (16 megapixels)")
    parser.add_argument("--mixed", type=int, default=2000, help="mixed requests (0: none)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from training.runs.deployment import deployed_run
    from training.runs.layout import ArtifactError

    artifacts = (args.artifacts or bench_store(args.resolution)).resolve()
    try:
        run = deployed_run(artifacts)
    except ArtifactError as error:
        raise SystemExit(f"{artifacts}: {error}") from None
    if run is None:
        raise SystemExit(f"no deployed run in {artifacts}: `python -m training deploy RUN --artifacts {artifacts}`")
    dataset = run.data_settings.open()
    tests = dataset.index.split("test")
    entry = tests[0]
    print(f"run {run.name} on {dataset.root.name} ({entry.width}x{entry.height} photos)", flush=True)
    results = {"run": run.name, "dataset": dataset.root.name, "photo": f"{entry.width}x{entry.height}",
               "workers": args.workers, "threads": args.threads, "cpus": os.cpu_count(),
               "floor": floor(run, tests, dataset.root)}
    print(f"floor: {results['floor']}", flush=True)
    ids = [e.id for e in tests]
    uncached_paths = [f"/api/images/{ids[i % len(ids)]}/segmentation" for i in range(args.uncached)]
    log_dir = Path(tempfile.mkdtemp(prefix="bench_api_"))

    server = Server(artifacts, args.workers, args.threads, log_dir / "uncached.log",
                    {"SEGAPI_CACHE_BYTES": "0", "SEGAPI_INPUT_CACHE_BYTES": "0"})
    try:
        results["uncached"] = [load(server.url, uncached_paths, clients) for clients in (1, 4)]
    finally:
        server.stop()
    for row in results["uncached"]:
        print(f"uncached x{row['clients']}: p50 {row['p50_ms']} ms, {row['throughput_rps']} req/s", flush=True)
    results["uncached_over_floor"] = round(results["uncached"][0]["p50_ms"] / results["floor"]["total_ms"], 2)

    server = Server(artifacts, args.workers, args.threads, log_dir / "cached.log")
    try:
        rss = {"after start": server.worker_memory()}
        hot = ids[: min(8, len(ids))]
        results["cached"] = []
        for route in CACHED_ROUTES:
            paths = [f"/api/images/{i}/{route}".rstrip("/") for i in hot]
            load(server.url, paths * 16, 8)  # every worker answers each (8 sessions on new connections)
            for clients in (1, 4):
                row = load(server.url, (paths * (args.cached // len(paths) + 1))[: args.cached], clients)
                results["cached"].append({"route": route or "metadata", **row})
                print(f"cached {route or 'metadata'} x{clients}: p50 {row['p50_ms']} ms", flush=True)
        row = load(server.url, ["/api/images?split=all&limit=100"] * args.cached, 1)
        results["cached"].append({"route": "listing (100 ids)", **row})
        if args.uploads:
            results["upload"] = big_upload(server, args.uploads)
            print(f"largest upload: {results['upload']}", flush=True)
        rss["before mixed"] = server.worker_memory()
        if args.mixed:
            by_kind, failures = {}, []
            for quarter in range(4):  # RSS after each quarter: a cache filling up flattens, a leak does not
                part = mixed(server.url, ids, hot, args.mixed // 4, clients=4, seed=quarter + 1)
                for kind, counts in part["by_kind"].items():
                    by_kind.setdefault(kind, Counter()).update(counts)
                failures += part["failures"]
                rss[f"after {(quarter + 1) * (args.mixed // 4)} mixed"] = server.worker_memory()
            statuses = sum(by_kind.values(), Counter())
            results["mixed"] = {"statuses": {str(k): v for k, v in statuses.items()}, "server_errors": len(failures),
                                "by_kind": {k: {str(s): n for s, n in v.items()} for k, v in sorted(by_kind.items())},
                                "failures": failures[:20]}
        results["worker_rss_mib"] = rss
        results["tracebacks_in_log"] = server.log().count("Traceback")
    finally:
        server.stop()

    out = write_results(f"api-{args.resolution if args.artifacts is None else 'store'}", results, out=args.out)
    report(results)
    print(f"\nwritten to {out}")


def report(results: dict) -> None:
    floor_, uncached = results["floor"], results["uncached"][0]
    print(f"\n### {results['run']}, {results['photo']} photos, model at {floor_['model_size']} "
          f"({results['workers']} workers x {results['threads']} threads, {results['cpus']} CPUs)\n")
    print(f"Floor: Pillow decode photo {floor_['photo_decode_ms']} ms + labels {floor_['label_decode_ms']} ms "
          f"+ bare forward {floor_['forward_ms']} ms = {floor_['total_ms']} ms. Uncached /segmentation, "
          f"1 client: p50 {uncached['p50_ms']} ms = {results['uncached_over_floor']}x the floor.\n")
    print("| route | mode | clients | p50 ms | p95 ms | p99 ms | req/s |")
    print("|---|---|---|---|---|---|---|")
    for row in results["uncached"]:
        print(f"| segmentation | uncached | {row['clients']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
              f"{row['throughput_rps']} |")
    for row in results["cached"]:
        print(f"| {row['route']} | cached | {row['clients']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
              f"{row['throughput_rps']} |")
    if "upload" in results:
        upload = results["upload"]
        print(f"\n{upload['pixels']} upload ({upload['bytes']} bytes of PNG): p50 {upload['p50_ms']} ms, "
              f"worker peak RSS +{upload['peak_rss_growth_mib']} MiB over what it held before.")
    if "mixed" in results:
        mix = results["mixed"]
        print(f"\nMixed requests: {mix['server_errors']} server errors; statuses {mix['statuses']}.")
    print("\nworker RSS (MiB): " + "; ".join(f"{when}: {values}" for when, values in results["worker_rss_mib"].items()))
    print(f"\ntracebacks in the server log: {results['tracebacks_in_log']}")


if __name__ == "__main__":
    main()
