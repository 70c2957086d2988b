"""The dataset index: a stable integer id for every image, and the splits.

Splits follow the source document: the official ``train`` folder is divided into our
``train`` and ``validation`` (a seeded ratio); the official ``val`` folder is our ``test`` and
is never used for training or model selection. ``train_sample`` and ``validation_sample`` are
small seeded subsets for quick experiments.

The index is a CSV saved beside the data (``<root>/segmentation_index.csv``). Re-indexing
after files are added keeps every existing id and split and gives new files new ids; ids of
files that disappeared are never reused (the header remembers the next free id).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from training.data.cityscapes import DatasetError, Pair, check_pair_header, discover_pairs
from training.files import write_text_atomic

INDEX_FILENAME = "segmentation_index.csv"
FORMAT_LINE = "# segmentation-index v1"
SPLITS = ("train", "validation", "test")
SPLIT_OF_OFFICIAL = {"val": "test"}  # official train -> train or validation
SELECTABLE_SPLITS = SPLITS + ("train_sample", "validation_sample", "all")
DEFAULT_VALIDATION_RATIO = 0.2
DEFAULT_SAMPLE_RATIO = 0.1
MIN_SAMPLE_SIZE = 8


@dataclass(frozen=True)
class IndexEntry:
    id: int
    split: str
    official_split: str
    city: str
    stem: str
    image: str
    label: str
    height: int
    width: int
    sample: bool


COLUMNS = tuple(f.name for f in fields(IndexEntry))


@dataclass
class DatasetIndex:
    """Every indexed image, by id, with the parameters that assigned the splits."""

    root: Path
    entries: list[IndexEntry]
    seed: int = 0
    validation_ratio: float = DEFAULT_VALIDATION_RATIO
    sample_ratio: float = DEFAULT_SAMPLE_RATIO
    next_id: int = 0

    def __post_init__(self):
        self.entries = sorted(self.entries, key=lambda e: e.id)
        self._by_id = {entry.id: entry for entry in self.entries}
        self._fingerprint: str | None = None
        self.next_id = max([self.next_id] + [e.id + 1 for e in self.entries])

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, image_id: int) -> IndexEntry:
        try:
            return self._by_id[int(image_id)]
        except (KeyError, ValueError, TypeError):
            raise KeyError(f"unknown image id {image_id!r} (ids are 0..{self.next_id - 1})") from None

    def __contains__(self, image_id) -> bool:
        return image_id in self._by_id

    def split(self, name: str) -> list[IndexEntry]:
        """Entries of ``train``, ``validation``, ``test``, ``*_sample`` or ``all``, by id."""
        if name not in SELECTABLE_SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SELECTABLE_SPLITS)}")
        if name == "all":
            return list(self.entries)
        base, _, sample = name.partition("_")
        return [e for e in self.entries if e.split == base and (e.sample or not sample)]

    def counts(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in SELECTABLE_SPLITS}

    def fingerprint(self) -> str:
        """A short hash of ids, splits and files (paths relative to the root, so a copy of the
        dataset elsewhere agrees): two runs on the same data agree; a rebuilt index that gives an
        id to another file does not. Computed once (an index is not changed after it is made)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for e in self.entries:
                digest.update(f"{e.id}|{e.split}|{e.image}|{e.label}|{e.height}x{e.width}\n".encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def _rank(seed: int, purpose: str, stem: str) -> str:
    """A seeded, order-independent position for ``stem``: the same file always ranks the same."""
    return hashlib.sha256(f"{seed}:{purpose}:{stem}".encode()).hexdigest()


def _top_up(candidates: list[str], have: int, total: int, ratio: float, seed: int, purpose: str,
            minimum: int = 0) -> set[str]:
    """Choose from ``candidates`` so that ``have`` + chosen reaches ``ratio`` of ``total``."""
    target = max(round(ratio * total), min(minimum, total)) if ratio > 0 else 0
    wanted = max(0, min(len(candidates), target - have))
    return set(sorted(candidates, key=lambda stem: _rank(seed, purpose, stem))[:wanted])


def update_index(
    root: Path,
    previous: DatasetIndex | None = None,
    seed: int = 0,
    validation_ratio: float = DEFAULT_VALIDATION_RATIO,
    sample_ratio: float = DEFAULT_SAMPLE_RATIO,
) -> tuple[DatasetIndex, list[str]]:
    """Scan ``root`` and index new pairs, keeping every entry of ``previous`` that still exists.

    Headers of new files are checked (mode, size); a bad pair is reported and left out, the
    others are indexed.

    Returns:
        The index and the problem messages (one per bad file, naming it).
    """
    if not 0.0 <= validation_ratio < 1.0:
        raise ValueError(f"validation ratio must be in [0, 1), got {validation_ratio}")
    if previous is not None:
        seed, validation_ratio, sample_ratio = previous.seed, previous.validation_ratio, previous.sample_ratio
    pairs, problems = discover_pairs(root)
    present = {pair.stem for pair in pairs}
    kept = [e for e in (previous.entries if previous else []) if e.stem in present]
    known = {e.stem for e in kept}
    new_pairs: list[tuple[Pair, int, int]] = []
    for pair in pairs:
        if pair.stem in known:
            continue
        try:
            height, width = check_pair_header(root, pair)
        except DatasetError as error:
            problems.append(str(error))
            continue
        new_pairs.append((pair, height, width))

    official_train_total = sum(1 for e in kept if e.official_split == "train") + sum(
        1 for p, _, _ in new_pairs if p.official_split == "train")
    to_validation = _top_up(
        [p.stem for p, _, _ in new_pairs if p.official_split == "train"],
        have=sum(1 for e in kept if e.split == "validation"),
        total=official_train_total, ratio=validation_ratio, seed=seed, purpose="validation")

    next_id = previous.next_id if previous else 0
    added = []
    for pair, height, width in new_pairs:  # sorted by (split, city, stem): ids follow that order
        split = SPLIT_OF_OFFICIAL.get(pair.official_split) or (
            "validation" if pair.stem in to_validation else "train")
        added.append(IndexEntry(next_id, split, pair.official_split, pair.city, pair.stem,
                                pair.image, pair.label, height, width, False))
        next_id += 1

    entries = kept + added
    for split in ("train", "validation"):
        in_split = [e for e in entries if e.split == split]
        chosen = _top_up([e.stem for e in in_split if e.id >= (previous.next_id if previous else 0)],
                         have=sum(1 for e in in_split if e.sample), total=len(in_split),
                         ratio=sample_ratio, seed=seed, purpose=f"sample-{split}", minimum=MIN_SAMPLE_SIZE)
        entries = [replace(e, sample=True) if e.stem in chosen else e for e in entries]
    index = DatasetIndex(root, entries, seed, validation_ratio, sample_ratio, next_id)
    return index, problems


def index_path_for(root: Path, index_path: str | os.PathLike | None = None) -> Path:
    return Path(index_path) if index_path else root / INDEX_FILENAME


def save_index(index: DatasetIndex, path: Path) -> None:
    """Write the index atomically (temporary file, then rename)."""
    buffer = io.StringIO()
    buffer.write(f"{FORMAT_LINE} seed={index.seed} validation_ratio={index.validation_ratio} "
                 f"sample_ratio={index.sample_ratio} next_id={index.next_id}\n")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in index.entries:
        row = asdict(entry)
        row["sample"] = int(entry.sample)
        writer.writerow(row)
    write_text_atomic(path, buffer.getvalue())


REBUILD_HINT = "`python -m training data index --rebuild` makes a new one (ids change)"


def load_index(path: Path, root: Path | None = None) -> DatasetIndex:
    """Read an index written by ``save_index``; raises ``DatasetError`` naming the file and the fix."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the index ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a segmentation index (not text); {REBUILD_HINT}") from None
    first, _, body = text.partition("\n")
    if not first.startswith(FORMAT_LINE):
        raise DatasetError(f"{path}: not a segmentation index (first line should start {FORMAT_LINE!r}); "
                           f"{REBUILD_HINT}")
    try:
        settings = dict(item.split("=", 1) for item in first[len(FORMAT_LINE):].split())
        entries = [
            IndexEntry(int(r["id"]), r["split"], r["official_split"], r["city"], r["stem"], r["image"],
                       r["label"], int(r["height"]), int(r["width"]), r["sample"] == "1")
            for r in csv.DictReader(io.StringIO(body))
        ]
        unknown = sorted({e.split for e in entries} - set(SPLITS))
        if unknown:
            raise ValueError(f"unknown split {unknown[0]!r}")
        if len({e.id for e in entries}) != len(entries):
            raise ValueError("an id appears twice")
        return DatasetIndex(Path(root) if root else Path(path).parent, entries, int(settings["seed"]),
                            float(settings["validation_ratio"]), float(settings["sample_ratio"]),
                            int(settings["next_id"]))
    except (KeyError, ValueError, TypeError, csv.Error) as exc:
        raise DatasetError(f"{path}: malformed index ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from None


def load_or_build_index(
    root: Path,
    index_path: str | os.PathLike | None = None,
    seed: int = 0,
    validation_ratio: float = DEFAULT_VALIDATION_RATIO,
    sample_ratio: float = DEFAULT_SAMPLE_RATIO,
    write: bool = True,
    report=None,
) -> DatasetIndex:
    """Load the saved index, add any new files, and save it back if it changed.

    ``report`` receives each problem message (default: printed to stderr). When the index
    cannot be written beside the data (a read-only download), it is used from memory and the
    message says how to keep it (``--index PATH``).
    """
    report = report or (lambda message: print(f"warning: {message}", file=sys.stderr))
    path = index_path_for(root, index_path)
    previous = load_index(path, root) if path.exists() else None
    index, problems = update_index(root, previous, seed, validation_ratio, sample_ratio)
    for problem in problems:
        report(problem)
    if not index.entries:
        raise DatasetError(f"{root}: no image/label pairs found under leftImg8bit/ and gtFine/")
    changed = previous is None or [asdict(e) for e in previous.entries] != [asdict(e) for e in index.entries]
    if write and changed:
        try:
            save_index(index, path)
        except OSError as exc:
            report(f"{path}: cannot save the index ({exc.strerror}); ids are computed in memory, "
                   "pass --index PATH to keep them")
    return index
