"""Drives: ``python -m training temporal`` (how much a model's frames flicker) and ``video`` (the
photo and each run's overlay, side by side, as an MP4 or WebM)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from training.cli.common import add_artifacts, add_classes, check_output, whole_number
from training.evaluation.formats import FORMATS

FLOW_PRESET_NAMES = ("ultrafast", "fast", "medium")  # training.evaluation.temporal.FLOW_PRESETS


def _add_frames(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", required=True, help="folder of photos <city>_<seq>_<frame>_leftImg8bit.png "
                        "(e.g. leftImg8bit_sequence/val/frankfurt or leftImg8bit/demoVideo/stuttgart_00)")


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                        help="labelIds, trainIds (255 = no class) or color (official palette); default: detected "
                        "from the first file, and said")


def add_temporal_parser(commands) -> None:
    temporal = commands.add_parser("temporal", help="temporal consistency of per-frame predictions of drive sequences")
    _add_frames(temporal)
    temporal.add_argument("--pred-dir", required=True,
                          help="prediction PNGs, matched by <city>_<seq>_<frame> in their names")
    add_classes(temporal)
    _add_format(temporal)
    temporal.add_argument("--partial", action="store_true",
                          help="score the frames that have a prediction (default: a missing one is an error)")
    temporal.add_argument("--flow-width", type=whole_number(16, 100_000), default=None,
                          help="optical flow computed at most this wide (default: a quarter of the photo's "
                          "width, at least 256; see docs/metrics.md)")
    temporal.add_argument("--flow-preset", choices=FLOW_PRESET_NAMES, default="fast",
                          help="OpenCV DIS preset (default: fast)")
    temporal.add_argument("--workers", type=whole_number(1, 256), default=None,
                          help="threads that decode and compute flow (default: every core)")
    temporal.add_argument("--json", help="also write the numbers, per sequence and per pair, as JSON "
                          "(an existing file is replaced)")
    temporal.set_defaults(handler=cmd_temporal)


def run_directory(text: str) -> tuple[str, str]:
    """An argparse type: ``NAME=DIR``."""
    name, equals, folder = text.partition("=")
    if not equals or not name.strip() or not folder:
        raise argparse.ArgumentTypeError(f"must be NAME=DIR (a run name, then its prediction folder), got {text!r}")
    return name.strip(), folder


def frames_per_second(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 240:
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most 240, got {text!r}")
    return value


def add_video_parser(commands) -> None:
    video = commands.add_parser("video", help="a drive as a video: the photo and each run's overlay side by side",
                                description="Either runs of the store that predicted the sequence (predict-sequence "
                                "or import-sequences), or any tool's prediction PNGs: --frames and --pred-dir.")
    video.add_argument("runs", nargs="*", metavar="RUN", help="runs of the store, in the order shown")
    video.add_argument("--data-root", help="with RUN: the runs' dataset, if it moved (default: the first run's)")
    add_artifacts(video)
    video.add_argument("--frames", help="without RUN: folder of photos <city>_<seq>_<frame>_leftImg8bit.png (e.g. "
                       "leftImg8bit_sequence/val/frankfurt or leftImg8bit/demoVideo/stuttgart_00)")
    video.add_argument("--pred-dir", action="append", type=run_directory, metavar="NAME=DIR",
                       help="without RUN: a run's prediction PNGs, shown under NAME (repeat for more runs)")
    video.add_argument("--sequence", required=True,
                       help="the sequence: with RUN its name (a snippet's annotated frame <city>_<seq>_<frame>, a "
                       "demo drive's video name); with --frames its first frame <city>_<seq>_<frame>, or "
                       "<city>_<seq> if it has one")
    video.add_argument("--out", required=True, help="the video: .mp4 (H.264) or .webm (VP9); replaced if it exists")
    video.add_argument("--fps", type=frames_per_second, default=17, help="frames per second (default: 17, "
                       "the rate Cityscapes recorded at)")
    video.add_argument("--layout", choices=("grid", "row"), default="grid", help="panels in a grid (default) or a row")
    video.add_argument("--width", type=whole_number(64, 7680), default=1024,
                       help="video width in pixels (default 1024)")
    add_classes(video)
    _add_format(video)
    video.add_argument("--workers", type=whole_number(1, 256), default=None,
                       help="threads that read and draw frames (default: every core)")
    video.set_defaults(handler=cmd_video)


def _bar(total: int, quiet: bool, unit: str):
    from tqdm import tqdm
    return tqdm(total=total, unit=unit, disable=quiet)


def cmd_temporal(args) -> int:
    from training.evaluation.temporal import evaluate_temporal, format_temporal
    from training.files import write_json_atomic

    check_output(args.json, "--json")
    with _bar(None, args.quiet, "frame") as bar:
        result = evaluate_temporal(Path(args.frames), Path(args.pred_dir), args.classes, args.format, args.partial,
                                   args.flow_width, args.flow_preset, args.workers,
                                   progress=lambda: bar.update(1))
    print(format_temporal(result))
    print(f"{result['counts']['frames']} frames in {result['seconds']:.1f} s "
          f"({result['frames_per_second']:.1f} frames/s)")
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0


class _Predictions(Sequence):
    """A run's class maps of a sequence, read when a frame is drawn (in the drawing threads)."""

    def __init__(self, paths: list[Path], reader):
        self.paths, self.reader = paths, reader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        return self.reader(self.paths[index])


def pick_sequence(runs, name: str):
    """The sequence called ``name`` (its first frame's key, or ``<city>_<seq>`` naming one)."""
    exact = [run for run in runs if run.name == name]
    if exact:
        return exact[0]
    prefixed = [run for run in runs if f"{run.frames[0].city}_{run.frames[0].seq}" == name]
    if len(prefixed) == 1:
        return prefixed[0]
    names = [run.name for run in (prefixed or runs)]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    if prefixed:
        raise ValueError(f"--sequence {name}: {len(prefixed)} sequences of {name}; name one: {shown}")
    raise ValueError(f"--sequence {name}: no such sequence under the frames folder; there are {shown}")


def cmd_video(args) -> int:
    from training.viz_video import ENCODINGS, render_video

    check_output(args.out, "--out")
    if Path(args.out).suffix.lower() not in ENCODINGS:
        raise ValueError(f"--out {args.out}: a video must end in {' or '.join(ENCODINGS)}")
    if args.runs and (args.frames or args.pred_dir):
        raise ValueError("give runs of the store (RUN ...) or prediction folders (--frames and --pred-dir), not both")
    if args.runs:
        title, frames, predictions, class_set = _runs_video(args)
    elif args.frames and args.pred_dir:
        title, frames, predictions, class_set = _folders_video(args)
    else:
        raise ValueError("name the runs (video RUN [RUN ...] --sequence NAME), or give --frames and --pred-dir")
    with _bar(len(frames), args.quiet, "frame") as bar:
        done = render_video(frames, predictions, class_set, Path(args.out), args.fps, args.layout, args.width,
                            progress=lambda n, total: bar.update(1), workers=args.workers)
    print(f"wrote {done['path']}: {done['frames']} frames of {title}, {done['width']}x{done['height']}, "
          f"{done['codec']} at {done['fps']:g} frames/s ({done['frames'] / done['seconds']:.1f} frames/s rendered)")
    return 0


def _runs_video(args):
    """The photos of sequence ``args.sequence`` and each run's stored predictions of it."""
    from training.data.labels import get_class_set
    from training.runs.layout import ArtifactError
    from training.runs.reader import get_run
    from training.runs.sequences import SequencePredictions, dataset_sequences, find_sequence, sequence_names

    if args.format != "auto" or args.classes != "categories8":
        raise ValueError("--format and --classes are for --pred-dir: a run's stored frames are its own classes")
    if len(set(args.runs)) != len(args.runs):
        raise ValueError(f"a run named twice ({', '.join(args.runs)})")
    runs = [get_run(name, args.artifacts) for name in args.runs]
    classes = {run.name: run.data_settings.classes for run in runs}
    if len(set(classes.values())) > 1:
        raise ValueError("the runs predict different class sets (" + ", ".join(f"{n}: {c}" for n, c in classes.items())
                         + "): one video shows one legend; make one video per class set")
    for run in runs:
        if args.sequence not in sequence_names(run):
            command = "import-sequences" if run.metrics.get("source") == "imported" else "predict-sequence"
            raise ArtifactError(f"run {run.name} has not predicted sequence {args.sequence}: "
                                f"python -m training {command} {run.name} ...")
    settings = runs[0].data_settings
    dataset = settings.open(args.data_root)
    sequences, _ = dataset_sequences(dataset.root, settings.index_file(dataset.root), dataset.index)
    sequence = find_sequence(sequences, args.sequence)
    predictions = {run.name: SequencePredictions(run, sequence.name, sequence.frame_numbers) for run in runs}
    return sequence.name, sequence.frame_paths(dataset.root), predictions, get_class_set(settings.classes)


def _folders_video(args):
    """The photos under ``args.frames`` of sequence ``args.sequence`` and each folder's predictions."""
    from training.data.cityscapes import DatasetError
    from training.evaluation.temporal import find_frames, group_sequences, match_frame_predictions, prediction_reader

    names = [name for name, _ in args.pred_dir]
    if len(set(names)) != len(names):
        raise ValueError(f"--pred-dir: a run name given twice ({', '.join(names)})")
    frames = find_frames(Path(args.frames))
    sequence = pick_sequence(group_sequences(frames), args.sequence)
    predictions = {}
    for name, folder in args.pred_dir:
        found = match_frame_predictions(frames, Path(folder), partial=True).paths
        missing = [f.key for f in sequence.frames if f.key not in found]
        if missing:
            raise DatasetError(f"{folder}: no prediction for {len(missing)} of the {len(sequence.frames)} frames of "
                               f"{sequence.name} (run {name}): {', '.join(missing[:5])}")
        paths = [found[f.key] for f in sequence.frames]
        predictions[name] = _Predictions(paths, prediction_reader(paths[0], args.classes, args.format))
    class_set = next(iter(predictions.values())).reader.class_set
    return sequence.name, [f.path for f in sequence.frames], predictions, class_set
