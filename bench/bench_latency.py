"""Do two ``python -m training benchmark`` passes a minute apart give the same latency?

The demo configs' models (``configs/demo/``, random weights, their training size) are timed in two
passes ``--gap`` seconds apart, each pass both ways:

* interleaved, as ``benchmark`` times runs now (``training.fit.latency.measure_interleaved``:
  ``--rounds`` rounds, every model ``--repeats`` calls in turn in each, the median of the rounds);
* one model after the other, as ``benchmark`` did before (``measure_latency``: ``--repeats``
  calls, their median).

For each model and way: both passes' figures and their difference ``|a - b| / min(a, b)``; the
target is at most 10 % for the interleaved figure. TensorFlow's threads: ``--threads`` (default:
its own, every core), as ``benchmark --threads``.

    .venv/bin/python bench/bench_latency.py [--gap 60] [--rounds 5] [--repeats 30] [--threads N]

Writes ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.results_file import write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def demo_models(configs: list[Path]) -> dict:
    """name -> (compiled model, input size) for each config."""
    from training.fit.config import load_config
    from training.fit.runner import build_compiled_model

    models = {}
    for path in configs:
        config = load_config(path)
        models[path.stem] = (build_compiled_model(config), (config["data"]["height"], config["data"]["width"]))
    return models


def one_pass(models: dict, repeats: int, rounds: int) -> dict:
    """Each model's figure both ways, in ms."""
    from training.fit.latency import measure_interleaved, measure_latency
    from training.runs.latency import BENCHMARK_PASS

    one_by_one = {name: measure_latency(model, size, repeats, how=BENCHMARK_PASS)["median_ms"]
                  for name, (model, size) in models.items()}
    interleaved = measure_interleaved(models, repeats, rounds, how=BENCHMARK_PASS)
    return {"one_by_one": one_by_one, "interleaved": {name: r["median_ms"] for name, r in interleaved.items()},
            "round_medians": {name: r["round_medians_ms"] for name, r in interleaved.items()},
            "others_cpu_cores": next(iter(interleaved.values()))["others_cpu_cores"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", type=Path, default=sorted(Path("configs/demo").glob("[!_]*.yaml")))
    parser.add_argument("--gap", type=float, default=60.0, help="seconds between the passes (default: 60)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: its own)")
    args = parser.parse_args()
    from training.fit.latency import set_threads

    set_threads(args.threads)
    models = demo_models(args.configs)
    passes = [one_pass(models, args.repeats, args.rounds)]
    time.sleep(args.gap)
    passes.append(one_pass(models, args.repeats, args.rounds))
    rows = []
    for name in models:
        row = {"model": name}
        for way in ("interleaved", "one_by_one"):
            first, second = passes[0][way][name], passes[1][way][name]
            row[way] = [first, second]
            row[f"{way}_difference"] = abs(first - second) / min(first, second)
        rows.append(row)
    print(f"two passes {args.gap:.0f} s apart; interleaved: {args.rounds} rounds x {args.repeats} calls, median of "
          f"the rounds; one by one: {args.repeats} calls per model, their median")
    print("| model | interleaved ms (pass 1, pass 2) | difference | one by one ms (pass 1, pass 2) | difference |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['interleaved'][0]:.1f}, {row['interleaved'][1]:.1f} | "
              f"{100 * row['interleaved_difference']:.1f} % | {row['one_by_one'][0]:.1f}, {row['one_by_one'][1]:.1f} | "
              f"{100 * row['one_by_one_difference']:.1f} % |")
    worst = max(row["interleaved_difference"] for row in rows)
    print(f"largest interleaved difference {100 * worst:.1f} % (target <= 10 %); other processes' cores during the "
          f"passes: {passes[0]['others_cpu_cores']}, {passes[1]['others_cpu_cores']}")
    write_results("latency", {"gap_s": args.gap, "rounds": args.rounds, "repeats": args.repeats,
                              "threads": args.threads, "rows": rows, "passes": passes})


if __name__ == "__main__":
    main()
