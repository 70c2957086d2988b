"""The API under gunicorn: latency and throughput of /segmentation, cold and cached, next to the
bare model forward time; then 2,000 mixed requests (good and bad) with the workers' memory.

Serves the real run store (``artifacts/`` with a deployed run; ``make demo`` makes one) with
``api/gunicorn.conf.py`` on a free loopback port, started and stopped by this script. Writes
``bench/results/api.json`` and prints Markdown tables.

    .venv/bin/python bench/bench_api.py [--artifacts DIR] [--workers 2] [--threads 4]
                                        [--cold 40] [--cached 200] [--mixed 2000] [--cache-bytes N]

- bare forward: the deployed model loaded here with ``training.models.load_model``,
  ``model.predict_on_batch`` on one image at the run's size (batch 1), median of 50, measured
  before the server starts (no competition for the 2 cores);
- cold: ids never requested before (a fresh server, disjoint ids for each concurrency);
- cached: the same ids again after each worker has seen them (the hit ratio is reported from
  the responses' ``cached`` field);
- clients are threads, each with its own ``requests.Session`` (keep-alive).
"""

from __future__ import annotations

import argparse
import io
import json
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

RESULTS = REPO / "bench" / "results"
READY = re.compile(r"worker \d+ ready: ")
REQUEST_TIMEOUT = 120  # seconds: a bound for one request
PHASE_SECONDS = 300  # a bound for each measured phase


# ---------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, artifacts: Path, workers: int, threads: int, log_path: Path, extra_env: dict | None = None):
        import requests

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        env = {**os.environ, "ARTIFACTS_DIR": str(artifacts), "API_HOST": "127.0.0.1", "API_PORT": str(self.port),
               "API_WORKERS": str(workers), "API_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "api" / "gunicorn.conf.py"), "api:create_app()"],
            cwd=REPO, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        start = time.monotonic()
        deadline = start + 120
        while time.monotonic() < deadline and self.process.poll() is None:
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

    def worker_rss_mib(self) -> dict[int, float]:
        rss = {}
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss[pid] = round(int(line.split()[1]) / 1024, 1)  # kB -> MiB
            except OSError:
                pass
        return rss

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=30)
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


def load(url: str, paths: list[str], clients: int) -> dict:
    """GET every path once, ``clients`` threads with a Session each; latency and throughput."""
    import requests

    lock = threading.Lock()
    queue = list(reversed(paths))
    latencies, statuses, cached, server_ms = [], Counter(), Counter(), []
    deadline = time.monotonic() + PHASE_SECONDS

    def client():
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                start = time.perf_counter()
                response = session.get(url + path, timeout=REQUEST_TIMEOUT)
                body = response.content
                elapsed = 1000 * (time.perf_counter() - start)
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        payload = json.loads(body)
                        cached[bool(payload.get("cached"))] += 1
                        server_ms.append(payload.get("inference_ms") or 0.0)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "statuses": dict(statuses),
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "mean_ms": round(sum(latencies) / max(1, len(latencies)), 2),
            "throughput_rps": round(len(latencies) / wall, 1),
            "cache_hit_ratio": round(cached[True] / max(1, sum(cached.values())), 3),
            "model_ms_p50": round(percentile(server_ms, 50), 2) if server_ms else None}


def bare_forward(run, repeats: int = 50) -> dict:
    import numpy as np

    from training.models import load_model

    height, width = run.input_size
    start = time.perf_counter()
    model = load_model(run.model_path)
    load_seconds = time.perf_counter() - start
    batch = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
    for _ in range(5):
        model.predict_on_batch(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(1000 * (time.perf_counter() - start))
    return {"size": f"{height}x{width}", "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2), "load_seconds": round(load_seconds, 2)}


def pipeline_breakdown(run, repeats: int = 20) -> dict:
    """Where an uncached /segmentation spends its time, stage by stage, in this process
    (medians in ms; one test image of the run's dataset)."""
    import base64

    from api.imaging import png_bytes
    from training.data.cityscapes import read_pair
    from training.evaluation.evaluator import Evaluator, summarize
    from training.fit.predict import predict_classes
    from training.models import load_model

    dataset = run.data_settings.open()
    root, class_set, size = dataset.root, dataset.class_set, run.input_size
    entry = dataset.index.split("test")[0]
    model = load_model(run.model_path)
    image, label_ids = read_pair(root, entry.image, entry.label)
    predicted = predict_classes(model, image, size)

    def encode():
        truth = class_set.lut[label_ids]
        pngs = [png_bytes(truth), png_bytes(class_set.colorize(truth)), png_bytes(predicted),
                png_bytes(class_set.colorize(predicted))]
        return json.dumps({"pngs": [base64.b64encode(p).decode("ascii") for p in pngs]})

    def score():
        confusion = Evaluator(class_set).add(label_ids, predicted)
        return summarize(class_set, confusion, confusion, 1)

    stages = {"read photo + ground truth (PNG decode)": lambda: read_pair(root, entry.image, entry.label),
              "predict_classes (resize, forward, argmax, upsample)": lambda: predict_classes(model, image, size),
              "score (confusion, IoU)": score,
              "encode 4 PNGs + base64 + JSON": encode}
    out = {"image": f"{image.shape[0]}x{image.shape[1]}"}
    for name, stage in stages.items():
        stage()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stage()
            times.append(1000 * (time.perf_counter() - start))
        out[name] = round(percentile(times, 50), 2)
    return out


def png(height: int, width: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def mixed(url: str, ids: list[int], cached_ids: list[int], count: int, clients: int, seed: int = 0) -> dict:
    """``count`` requests of every kind, good and bad; statuses by kind."""
    import requests

    rng = random.Random(seed)
    upload, garbage = png(96, 160, 1), bytes(rng.randrange(256) for _ in range(2048))
    kinds = [  # (weight, name, method, path, kwargs)
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
    plan = rng.choices(kinds, weights=[k[0] for k in kinds], k=count)
    plan = [(kind[1], *kind[2]()) for kind in plan]
    lock = threading.Lock()
    queue = list(reversed(plan))
    by_kind: dict[str, Counter] = {}
    statuses, failures = Counter(), []
    deadline = time.monotonic() + PHASE_SECONDS

    def client():
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if not queue:
                        return
                    name, method, path, kwargs = queue.pop()
                try:
                    status = session.request(method, url + path, timeout=REQUEST_TIMEOUT, **kwargs).status_code
                except requests.RequestException as error:
                    status = f"connection error: {type(error).__name__}"
                with lock:
                    statuses[status] += 1
                    by_kind.setdefault(name, Counter())[status] += 1
                    if not isinstance(status, int) or status >= 500:
                        failures.append(f"{method} {path} -> {status}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    done = sum(statuses.values())
    return {"requests": done, "planned": count, "seconds": round(wall, 1), "throughput_rps": round(done / wall, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
            "by_kind": {k: {str(s): n for s, n in sorted(v.items(), key=str)} for k, v in sorted(by_kind.items())},
            "server_errors": sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500),
            "failures": failures[:20]}


# ---------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=None, help="run store (default $ARTIFACTS_DIR or artifacts/)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cold", type=int, default=40, help="distinct never-requested ids per concurrency level")
    parser.add_argument("--cached", type=int, default=200, help="cached requests per concurrency level")
    parser.add_argument("--mixed", type=int, default=2000)
    parser.add_argument("--cache-bytes", type=int, default=None,
                        help="the server's SEGAPI_CACHE_BYTES (default: the app's); "
                             "0 tells a leak from a cache filling up")
    parser.add_argument("--out", type=Path, default=RESULTS / "api.json")
    args = parser.parse_args()

    from training.runs.store import ArtifactError, artifacts_dir, deployed_run

    artifacts = artifacts_dir(args.artifacts).resolve()
    try:
        run = deployed_run(artifacts)
    except ArtifactError as error:
        raise SystemExit(f"{error}\nmake one with `make demo` (trains the demo models and deploys the best)") from None
    if run is None:
        raise SystemExit(f"no deployed run in {artifacts}: run `make demo` (or `python -m training deploy --best`)")
    print(f"deployed run: {run.name} ({artifacts})", flush=True)

    forward = bare_forward(run)
    print(f"bare forward {forward['size']}, batch 1: p50 {forward['p50_ms']} ms", flush=True)
    try:
        breakdown = pipeline_breakdown(run)
    except Exception as error:  # informative only: never stops the benchmark
        breakdown = {"error": f"{type(error).__name__}: {error}"}

    levels = (1, 4, 8)
    log_path = Path(tempfile.mkdtemp(prefix="bench_api_")) / "gunicorn.log"
    extra_env = {} if args.cache_bytes is None else {"SEGAPI_CACHE_BYTES": str(args.cache_bytes)}
    server = Server(artifacts, args.workers, args.threads, log_path, extra_env)
    results = {"run": run.name, "cache_bytes": args.cache_bytes, "workers": args.workers, "threads": args.threads,
               "cpus": os.cpu_count(),
               "server_start_seconds": round(server.start_seconds, 1), "bare_forward": forward,
               "uncached_breakdown_ms": breakdown}
    try:
        import requests

        rss = {"after start": server.worker_rss_mib()}
        listing = requests.get(f"{server.url}/api/images?split=all&limit=1000", timeout=REQUEST_TIMEOUT).json()
        test_ids = [image["id"] for image in listing["images"]]
        random.Random(0).shuffle(test_ids)
        need = args.cold * len(levels)
        if len(test_ids) < need:
            raise SystemExit(f"{len(test_ids)} images: need {need} for the cold phase (lower --cold)")
        segmentation = lambda ids: [f"/api/images/{i}/segmentation" for i in ids]  # noqa: E731

        rows = []
        for n, clients in enumerate(levels):  # cold: ids nobody asked for yet
            ids = test_ids[n * args.cold:(n + 1) * args.cold]
            row = load(server.url, segmentation(ids), clients)
            rows.append({"mode": "cold", **row})
            print(f"cold   x{clients}: p50 {row['p50_ms']} ms, {row['throughput_rps']} req/s", flush=True)
        hot = test_ids[:args.cold]  # every worker sees each of them (4 sessions each, on fresh connections)
        load(server.url, segmentation(hot) * 8, 8)
        for clients in levels:
            paths = (segmentation(hot) * (args.cached // len(hot) + 1))[:args.cached]
            row = load(server.url, paths, clients)
            rows.append({"mode": "cached", **row})
            print(f"cached x{clients}: p50 {row['p50_ms']} ms, {row['throughput_rps']} req/s, "
                  f"hits {row['cache_hit_ratio']:.0%}", flush=True)
        results["segmentation"] = rows
        rss["before mixed"] = server.worker_rss_mib()

        parts, done = [], 0
        for quarter in range(4):  # RSS after each quarter: a cache filling up flattens, a leak does not
            count = args.mixed // 4 if quarter < 3 else args.mixed - done
            parts.append(mixed(server.url, test_ids, hot, count, clients=4, seed=quarter + 1))
            done += count
            rss[f"after {done} mixed"] = server.worker_rss_mib()
        combined = {"requests": sum(p["requests"] for p in parts), "planned": args.mixed,
                    "seconds": round(sum(p["seconds"] for p in parts), 1),
                    "server_errors": sum(p["server_errors"] for p in parts),
                    "statuses": dict(sum((Counter(p["statuses"]) for p in parts), Counter())),
                    "by_kind": {k: dict(sum((Counter(p["by_kind"].get(k, {})) for p in parts), Counter()))
                                for k in sorted({k for p in parts for k in p["by_kind"]})},
                    "failures": [f for p in parts for f in p["failures"]][:20]}
        results["mixed"] = combined
        results["worker_rss_mib"] = rss
        results["workers_restarted"] = sorted(rss["after start"]) != sorted(rss[f"after {done} mixed"])
        results["tracebacks_in_log"] = server.log().count("Traceback")
    finally:
        server.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    print(f"\nwritten to {args.out}")


def report(results: dict) -> None:
    forward = results["bare_forward"]
    print(f"\n### /api/images/<id>/segmentation ({results['run']}, {results['workers']} workers x "
          f"{results['threads']} threads, {results['cpus']} CPUs)\n")
    print(f"Bare model forward (`predict_on_batch`, batch 1, {forward['size']}): p50 {forward['p50_ms']} ms, "
          f"p95 {forward['p95_ms']} ms.\n")
    breakdown = results.get("uncached_breakdown_ms", {})
    if "error" not in breakdown:
        print(f"Uncached request, stage by stage in one process (median ms, {breakdown.get('image')} photo): "
              + "; ".join(f"{k} {v}" for k, v in breakdown.items() if k != "image") + ".\n")
    print("| mode | clients | requests | p50 ms | p95 ms | p99 ms | req/s | cache hits | server model ms (p50) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results["segmentation"]:
        print(f"| {row['mode']} | {row['clients']} | {row['requests']} | {row['p50_ms']} | {row['p95_ms']} | "
              f"{row['p99_ms']} | {row['throughput_rps']} | {row['cache_hit_ratio']:.0%} | "
              f"{row['model_ms_p50'] if row['mode'] == 'cold' else '-'} |")
    cold = next(row for row in results["segmentation"] if row["mode"] == "cold" and row["clients"] == 1)
    added = cold["p50_ms"] - forward["p50_ms"]
    print(f"\nUncached, 1 client: the API adds {added:.1f} ms to the bare forward "
          f"({100 * added / forward['p50_ms']:.0f} %): reading and resizing the photo and its ground truth, "
          "the argmax and upsampling, scoring, PNG encoding, HTTP.")
    mix = results["mixed"]
    print(f"\n### {mix['requests']} mixed requests (4 clients, {mix['seconds']} s): "
          f"{mix['server_errors']} server errors\n")
    print("| kind | statuses |")
    print("|---|---|")
    for kind, statuses in mix["by_kind"].items():
        print(f"| {kind} | {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))} |")
    print(f"| **all** | {', '.join(f'{s}: {n}' for s, n in sorted(mix['statuses'].items()))} |")
    print("\n| worker RSS (MiB) | " + " | ".join(results["worker_rss_mib"]) + " |")
    print("|---|" + "---|" * len(results["worker_rss_mib"]))
    pids = sorted({pid for values in results["worker_rss_mib"].values() for pid in values})
    for pid in pids:
        rss = [str(values.get(pid, "-")) for values in results["worker_rss_mib"].values()]
        print(f"| worker {pid} | " + " | ".join(rss) + " |")
    print(f"\nworkers restarted: {results['workers_restarted']}; tracebacks in the server log: "
          f"{results['tracebacks_in_log']}")


if __name__ == "__main__":
    main()
