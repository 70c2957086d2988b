"""The command line's tags: ``python -m training tags export [--out FILE.csv]``, the tags and notes
analysts gave images in the dashboard (``training.runs.tags``), one row per image.

The image ids come from the dataset's index (``--data-root``, ``--index``; read, never rewritten):
the store names images by city and stem, which outlive a rebuilt index. When the dataset cannot be
found the rows are still written, without ids, and a warning says why. Without ``--out`` the CSV
goes to the standard output. A cell a spreadsheet would run as a formula (one that starts with
``= + - @``, a tab or a carriage return) starts with an added ``'``, and so does one that starts
with ``'``: drop the one leading ``'`` of a cell to read its text back (``training.runs.tags.marks_csv``).
"""

from __future__ import annotations

import sys

from training.cli.common import add_artifacts, add_data_root, check_output
from training.data.cityscapes import DatasetError, resolve_data_root


def add_tags_parser(commands) -> None:
    """Register ``tags`` on the CLI's subcommands."""
    tags = commands.add_parser("tags", help="the tags and notes given to images in the dashboard")
    tag_commands = tags.add_subparsers(dest="tags_command", required=True)
    what = ("write every tagged or noted image as CSV (image_id, city, stem, tags, note, updated); a cell that "
            "starts with = + - @ ' (or a tab) gets a ' in front, so that a spreadsheet does not run it as a "
            "formula: drop one leading ' to read the text back")
    export = tag_commands.add_parser("export", help=what, description=what)
    export.add_argument("--out", help="CSV file to write, replaced if it exists (default: the standard output)")
    add_data_root(export)
    add_artifacts(export)
    export.set_defaults(handler=cmd_tags_export)


def image_ids(data_root: str | None, index: str | None) -> dict[tuple[str, str], int]:
    """(city, stem) -> id in the dataset's index; empty (and a warning) when it cannot be read."""
    from training.data.index import load_or_build_index

    try:
        opened = load_or_build_index(resolve_data_root(data_root), index, write=False,
                                     report=lambda message: print(f"warning: {message}", file=sys.stderr))
    except DatasetError as error:
        print(f"warning: no image ids in the CSV, the dataset cannot be read: {error}", file=sys.stderr)
        return {}
    return {(entry.city, entry.stem): entry.id for entry in opened.entries}


def cmd_tags_export(args) -> int:
    from training.files import write_text_atomic
    from training.runs.tags import TagStore, marks_csv

    check_output(args.out, "--out")
    store = TagStore(args.artifacts)
    marks = store.marks()  # first: a damaged tags file is the error, whatever the dataset
    text = marks_csv(marks.values(), image_ids(args.data_root, args.index) if marks else {})
    if args.out:
        write_text_atomic(args.out, text)
        print(f"wrote {len(marks)} tagged or noted image{'s' if len(marks) != 1 else ''} to {args.out}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
