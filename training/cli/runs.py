"""The run store at a glance and the deployed run: ``python -m training runs``, ``table`` and
``deploy``."""

from __future__ import annotations

from training.cli.common import add_artifacts, rounded


def add_table_parser(commands) -> None:
    table = commands.add_parser("table", help="comparison table of all runs")
    table.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    table.add_argument("--out", help="also write it to this file")
    add_artifacts(table)
    table.set_defaults(handler=cmd_table)


def add_deploy_parser(commands) -> None:
    deploy = commands.add_parser("deploy", help="make a run the one the API serves")
    deploy.add_argument("run", nargs="?")
    deploy.add_argument("--best", action="store_true", help="the run with the highest validation mIoU")
    deploy.add_argument("--export", metavar="NAME", help="serve this TFLite export of the run "
                        "(python -m training export) instead of its Keras model")
    add_artifacts(deploy)
    deploy.set_defaults(handler=cmd_deploy)


def add_runs_parser(commands) -> None:
    runs = commands.add_parser("runs", help="list the runs (* = deployed)")
    add_artifacts(runs)
    runs.set_defaults(handler=cmd_runs)


def cmd_table(args) -> int:
    from training.files import write_text_atomic
    from training.runs.summary import run_summaries, table_rows, to_csv, to_markdown

    rows = table_rows(run_summaries(args.artifacts))
    text = to_csv(rows) if args.format == "csv" else to_markdown(rows)
    if args.out:
        write_text_atomic(args.out, text + ("" if text.endswith("\n") else "\n"))
    print(text)
    return 0


def cmd_deploy(args) -> int:
    from training.runs.deployment import best_run, deploy

    if (args.run is None) == (not args.best):
        raise ValueError("deploy takes a run name or --best (the highest validation mIoU)")
    name = args.run or best_run(args.artifacts).name
    if args.export:
        from training.runs.deployment import deploy_export

        record = deploy_export(name, args.export, args.artifacts)
        print(f"deployed {record['run']}, export {record['export']} ({record['export_file']}, "
              f"{record['export_quantize']}; test mIoU {rounded(record['export_miou'])})")
        return 0
    record = deploy(name, args.artifacts)
    print(f"deployed {record['run']} (test mIoU {rounded(record['miou_test'])})")
    return 0


def cmd_runs(args) -> int:
    from training.runs.summary import coverage_text, run_summaries

    summaries = run_summaries(args.artifacts)
    if not summaries:
        print("no runs yet: python -m training train CONFIG")
    for s in summaries:
        if "error" in s:
            print(f"! {s['run']:<48} unreadable: {s['error']}")
            continue
        miou = "  n/a" if s["miou"] is None else f"{s['miou']:.3f}"
        params = "" if s["params"] is None else f"{s['params']:>10,} params"
        covered = coverage_text(s)
        extra = "  imported" + (f", {covered} images" if covered else "") if s["source"] == "imported" else ""
        latency = "" if s["inference_ms"] is None else f"  {s['inference_ms']:.1f} ms ({s['latency_measured']})"
        print(f"{'*' if s['deployed'] else ' '} {s['run']:<48} {s['model'] or '':<11} {s['split'] or ''} mIoU "
              f"{miou}  {params:>17}{latency}{extra}")
    return 0
