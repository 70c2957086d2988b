"""``python -m training report RUN [RUN ...] --out report.html``: a report to send, one HTML file
that opens offline in any browser (``training.report``): the runs' leaderboard, each run against
the first with its 95% intervals, the IoU per class, the chosen images (photo, ground truth, every
run's prediction, the image's IoU per class, the analyst's tags and note) and the confusion
matrices. The images: ``--images ID ...`` and/or ``--tag TAG``; neither: the 6 the first run does
worst on."""

from __future__ import annotations

import sys

from training.cli.common import add_artifacts, check_output


def add_report_parser(commands) -> None:
    what = ("write a self-contained HTML report of runs (the first is the reference) and chosen images, "
            "for people without the dashboard")
    report = commands.add_parser("report", help=what, description=what)
    report.add_argument("runs", nargs="+", metavar="RUN")
    report.add_argument("--images", nargs="+", type=int, metavar="ID", help="image ids to show")
    report.add_argument("--tag", help="also show the images carrying this tag (given in the dashboard)")
    report.add_argument("--out", required=True, help="HTML file to write (an existing file is replaced)")
    report.add_argument("--data-root", help="the dataset, when it is not where the first run found it")
    add_artifacts(report)
    report.set_defaults(handler=cmd_report)


def cmd_report(args) -> int:
    import time

    from training.report import write_report
    from training.runs.tags import TagError

    check_output(args.out, "--out")
    start = time.perf_counter()
    try:
        path = write_report(args.out, args.runs, args.images, args.tag, args.artifacts, args.data_root)
    except TagError as error:  # a ValueError already; named for what it is
        raise ValueError(f"--tag {args.tag!r}: {error}") from None
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
