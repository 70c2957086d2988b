"""What the command groups share: the exit codes, the options several commands take, the checks of
their values (a bad one is a usage error that gives the allowed range, before any work) and of the
files they write."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from training.data.cityscapes import resolve_data_root
from training.data.labels import CLASS_SET_NAMES
from training.evaluation.formats import FORMATS
from training.evaluation.masks import RESIZE_CHOICES

EXIT_BAD_FILES, EXIT_ERROR = 1, 2
MAX_BOUNDARY_RATIO = 1.0  # a band as wide as the diagonal already covers the whole image


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


def whole_number(low: int, high: int, why: str = ""):
    """An argparse type: a whole number in ``low..high``, else a usage error that says so (and ``why``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}{why}, got {text!r}")
        return value
    return parse


def boundary_ratio(text: str) -> float:
    """An argparse type: a boundary width as a share of the image diagonal, a number above 0 and at
    most ``MAX_BOUNDARY_RATIO`` (NaN and infinity refused: no band has that width)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_BOUNDARY_RATIO:
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most {MAX_BOUNDARY_RATIO:g} "
                                         f"(a share of the image diagonal), got {text!r}")
    return value


def check_output(path: str | None, option: str) -> None:
    """Refuse at once, before the work, a file that ``option`` cannot write: a folder, or a path through
    a file (ValueError naming both). An existing file is replaced, as the options' help says."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path}: {target} is a folder: choose another name or remove it")
    existing = next((parent for parent in target.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder: choose another name or remove it")


def yaml_problem(error: yaml.YAMLError) -> str:
    """What PyYAML says is wrong, on one line."""
    return " ".join(str(getattr(error, "problem", None) or error).split())


def check_overrides(items: list[str] | None) -> None:
    """ValueError naming the first ``--set KEY=VALUE`` whose value is not plain YAML (a tag such as
    ``!!python/object``, which safe loading refuses, or an unclosed bracket)."""
    for item in items or []:
        try:
            yaml.safe_load(item.partition("=")[2])
        except yaml.YAMLError as error:
            raise ValueError(f"--set {item}: not a plain YAML value ({yaml_problem(error)})") from None
