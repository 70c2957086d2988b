"""``python -m training data make|index|check|preview``: make, index, check or preview a dataset.

``make`` and ``index`` also write ``sequences.json`` beside the index (the snippets and drives of
``training.data.sequences``, with the ids of their annotated frames); ``check`` reports them.
"""

from __future__ import annotations

from pathlib import Path

from training.cli.common import EXIT_BAD_FILES, add_classes, add_data_root, load_index, whole_number
from training.data.cityscapes import resolve_data_root

DEFAULT_SNIPPETS = 3


def add_data_parser(commands) -> None:
    data = commands.add_parser("data", help="make, index, check or preview a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    make = data_commands.add_parser("make", help="generate the embedded street-scene dataset")
    make.add_argument("--out", required=True, help="output folder (Cityscapes layout)")
    make.add_argument("--train", type=int, default=300, help="images in the official train split")
    make.add_argument("--val", type=int, default=100, help="images in the official val split")
    make.add_argument("--height", type=int, default=256)
    make.add_argument("--width", type=int, default=512)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    make.add_argument("--sequences", type=whole_number(0, 10_000), default=None, metavar="N",
                      help="30-frame snippets around the first N val images, in leftImg8bit_sequence/ "
                           f"(default: {DEFAULT_SNIPPETS}, or as many as there are val images; 0: none)")
    make.add_argument("--drive-frames", type=whole_number(0, 100_000), default=120, metavar="N",
                      help="frames of the demo drive leftImg8bit/demoVideo/synthetic_00/ (default: 120; 0: none)")
    make.set_defaults(handler=cmd_data_make)

    index = data_commands.add_parser("index", help="assign ids and splits (keeps existing ids)")
    add_data_root(index)
    index.add_argument("--seed", type=int, default=0, help="seed of the splits (new index only)")
    index.add_argument("--validation-ratio", type=float, default=0.2,
                       help="share of official train used for validation (new index only)")
    index.add_argument("--sample-ratio", type=float, default=0.1, help="size of the *_sample subsets")
    index.add_argument("--rebuild", action="store_true", help="discard the saved index: ids change")
    index.set_defaults(handler=cmd_data_index)

    check = data_commands.add_parser("check", help="decode every file; summary and bad files")
    add_data_root(check)
    add_classes(check)
    check.add_argument("--workers", type=int, default=None)
    check.add_argument("--json", help="also write the summary as JSON")
    check.set_defaults(handler=cmd_data_check)

    preview = data_commands.add_parser("preview", help="contact sheet PNG: photo | ground truth | overlay")
    add_data_root(preview)
    add_classes(preview)
    preview.add_argument("--out", default="docs/dataset_preview.png")
    preview.add_argument("--split", default="train")
    preview.add_argument("--count", type=int, default=6)
    preview.set_defaults(handler=cmd_data_preview)


def cmd_data_make(args) -> int:
    from training.data.synthetic import make_dataset

    summary = make_dataset(args.out, train=args.train, val=args.val, height=args.height,
                           width=args.width, seed=args.seed, workers=args.workers,
                           progress=not args.quiet, drive_frames=args.drive_frames,
                           sequences=min(DEFAULT_SNIPPETS, args.val) if args.sequences is None else args.sequences)
    from training.data.index import index_path_for, load_or_build_index
    index = load_or_build_index(Path(args.out))
    print(f"wrote {summary['images']} images and {summary['sequence_frames']} sequence frames to {args.out} "
          f"in {summary['seconds']:.1f} s ({summary['images_per_second']:.0f} images/s); indexed: "
          + ", ".join(f"{k} {v}" for k, v in index.counts().items()))
    print(_write_sequences(index, index_path_for(index.root)))
    return 0


def _write_sequences(index, index_path: Path) -> str:
    """Find the dataset's sequences, save them beside the index; the summary line (and where a
    problem or an unwritable folder is, what it is)."""
    from training.data.sequences import discover_sequences, save_sequences, sequences_path_for, summary_line

    sequences, problems = discover_sequences(index.root, index)
    path = sequences_path_for(index_path)
    lines = [summary_line(sequences, problems) + (f" ({path.name})" if sequences or problems else "")]
    if sequences or problems or path.exists():
        try:
            save_sequences(path, sequences, problems, index)
        except OSError as exc:
            lines.append(f"warning: {path}: cannot save the sequences ({exc.strerror or exc})")
    return "\n".join(lines + [f"  {p}" for p in problems])


def cmd_data_index(args) -> int:
    from training.data.index import index_path_for, load_or_build_index

    root = resolve_data_root(args.data_root)
    path = index_path_for(root, args.index)
    if args.rebuild and path.exists():
        path.unlink()  # explicit request: new ids and splits from the given seed and ratios
    index = load_or_build_index(root, args.index, seed=args.seed, validation_ratio=args.validation_ratio,
                                sample_ratio=args.sample_ratio)
    print(f"{path}: {len(index)} images, ids 0..{index.next_id - 1}; "
          + ", ".join(f"{k} {v}" for k, v in index.counts().items()))
    print(_write_sequences(index, path))
    return 0


def cmd_data_check(args) -> int:
    """Exit ``EXIT_BAD_FILES`` when an image or label is bad; the sequences' problems are reported
    but do not fail the check (no training or evaluation reads a sequence)."""
    from training.data.sequences import discover_sequences, format_sequences
    from training.data.summary import format_summary, summarize_dataset
    from training.files import write_json_atomic

    index = load_index(args)
    summary = summarize_dataset(index, args.classes, args.workers, progress=not args.quiet)
    sequences, problems = discover_sequences(index.root, index)
    print(format_summary(summary))
    print()
    print(format_sequences(sequences, problems))
    if args.json:
        kinds = [s.kind for s in sequences]
        write_json_atomic(args.json, {**summary, "sequences": {
            "snippets": kinds.count("snippet"), "drives": kinds.count("drive"),
            "frames": sum(len(s) for s in sequences), "names": [s.name for s in sequences], "problems": problems}})
    return EXIT_BAD_FILES if summary["problems"] else 0


def cmd_data_preview(args) -> int:
    from training.viz import write_contact_sheet

    out = write_contact_sheet(load_index(args), Path(args.out), args.count, args.split, args.classes)
    print(f"wrote {out}")
    return 0
