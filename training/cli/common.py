"""What the command groups share: the exit codes and the options several commands take."""

from __future__ import annotations

import argparse

from training.data.cityscapes import resolve_data_root
from training.data.labels import CLASS_SET_NAMES
from training.evaluation.formats import FORMATS
from training.evaluation.masks import RESIZE_CHOICES

EXIT_BAD_FILES, EXIT_ERROR = 1, 2


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="dataset in the Cityscapes layout "
                        "(default: $CITYSCAPES_DATASET, else the embedded dataset)")
    parser.add_argument("--index", help="index file (default: <data root>/segmentation_index.csv)")


def add_classes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", choices=CLASS_SET_NAMES, default="categories8",
                        help="class set (default: categories8)")


def add_prediction_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                        help="labelIds (official), trainIds (255 = no class) or color (official palette); "
                        "default: detected from the first file, and said")
    parser.add_argument("--resize", choices=RESIZE_CHOICES,
                        help="scale predictions of another size to the ground truth (default: an error)")


def add_artifacts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", help="run store (default: $ARTIFACTS_DIR, else artifacts/)")


def load_index(args):
    from training.data.index import load_or_build_index
    return load_or_build_index(resolve_data_root(args.data_root), args.index)


def rounded(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
