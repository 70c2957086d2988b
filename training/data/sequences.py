"""Drive sequences: the official 30-frame snippets and demo videos, found on disk, never decoded.

Two layouts of the official download (``leftImg8bit_sequence_trainvaltest.zip`` and
``leftImg8bit_demoVideo.zip``) are read::

    <root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/leftImg8bit/demoVideo/<video>/<video>_<seq>_<frame>_leftImg8bit.png

A **snippet** is 30 consecutive frames; its 20th (position 19) is the annotated frame that also
sits in ``leftImg8bit/<split>/`` with its labels in ``gtFine/``: the snippet of
``frankfurt_000000_000294`` holds frames 000275 ... 000304. Several snippets may share one
``<city>_<seq>`` (frankfurt_000000 holds dozens), so snippets are cut around the annotated frames
found in ``leftImg8bit/<split>/``; frames that belong to none are cut where the frame numbers jump
by more than a snippet's length. A **drive** is every frame of one demo video folder, in frame
order (``stuttgart_00``: frames 000001 ...). The video name holds an underscore, so a drive's
file names are parsed from the right.

Names (URL-safe: letters, digits, ``-`` and ``_``; unique in a dataset):

- snippet: the stem of its annotated frame, ``frankfurt_000000_000294``; a snippet with no
  annotated frame in ``leftImg8bit/`` is named by the stem its position 19 would have;
- drive: the video folder's name, ``stuttgart_00`` (its split is ``demoVideo``, its city the name
  without the trailing ``_<digits>``: ``stuttgart``).

Missing frames, duplicate frame numbers, a snippet of other than 30 frames, files that are no
regular file and names of the wrong form are reported as problems (one message each, naming the
file or the sequence); the rest is still returned. The training and evaluation code never looks
here: pairs are discovered in ``leftImg8bit/train`` and ``leftImg8bit/val`` only.

``data index`` writes what it found to ``sequences.json`` beside the index (``save_sequences``);
``load_sequences`` reads it back.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.data.cityscapes import IMAGE_DIR, IMAGE_SUFFIX, STEM_PATTERN, DatasetError
from training.files import write_json_atomic

if TYPE_CHECKING:
    from training.data.index import DatasetIndex

SEQUENCE_DIR = "leftImg8bit_sequence"
DEMO_VIDEO_SPLIT = "demoVideo"  # leftImg8bit/demoVideo/<video>/
SNIPPET, DRIVE = "snippet", "drive"
SNIPPET_FRAMES = 30
ANNOTATED_POSITION = 19  # the 20th frame of a snippet is the annotated one
SEQUENCES_FILENAME = "sequences.json"
FORMAT = "cityscapes-sequences v1"
VIDEO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
VIDEO_STEM = re.compile(r"(?P<video>.+)_(?P<seq>\d+)_(?P<frame>\d+)")  # greedy video: parsed from the right
MAX_LISTED = 8  # frame numbers shown in one problem message


@dataclass(frozen=True)
class Sequence:
    """One snippet or drive.

    Attributes:
        name: URL-safe and unique in the dataset (see the module's naming scheme).
        kind: ``"snippet"`` or ``"drive"``.
        split: the official split of a snippet (``train``, ``val``, ``test``); ``demoVideo`` for a drive.
        city: the city of a snippet; a drive's video name without its trailing ``_<digits>``.
        frames: ``(frame number, path relative to the dataset root)`` by frame number.
        annotated_id: the id of the annotated frame in the dataset index, where it is indexed.
        annotated_stem: ``<city>_<seq>_<frame>`` of the annotated frame in ``leftImg8bit/``, if any.
    """

    name: str
    kind: str
    split: str
    city: str
    frames: tuple[tuple[int, str], ...]
    annotated_id: int | None = None
    annotated_stem: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "frames", tuple((int(n), str(p)) for n, p in self.frames))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_numbers(self) -> list[int]:
        return [number for number, _ in self.frames]

    @property
    def paths(self) -> list[str]:
        """Frame paths relative to the dataset root, in frame order."""
        return [path for _, path in self.frames]

    @property
    def annotated_position(self) -> int | None:
        """Position in ``frames`` of the annotated frame (19 in a whole snippet); None if absent."""
        if self.annotated_stem is None:
            return None
        try:
            number = int(self.annotated_stem.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            return None
        return next((i for i, (n, _) in enumerate(self.frames) if n == number), None)

    def frame_paths(self, root: str | os.PathLike) -> list[Path]:
        return [Path(root) / path for path in self.paths]

    def with_annotated_id(self, annotated_id: int | None) -> Sequence:
        return Sequence(self.name, self.kind, self.split, self.city, self.frames, annotated_id, self.annotated_stem)


# -- scanning --------------------------------------------------------------------------------------


def _frame_files(folder: Path, problems: list[str]) -> list[tuple[str, Path]]:
    """``(stem, path)`` of every ``*_leftImg8bit.png`` regular file in ``folder``, by name; an entry
    of that name that is no regular file (a FIFO, a link to nothing) is a problem."""
    found = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.append(f"{folder}: cannot be listed ({exc.strerror or exc})")
        return found
    for entry in entries:
        if not entry.name.endswith(IMAGE_SUFFIX):
            continue
        try:
            regular = entry.is_file()
            folder_entry = not regular and entry.is_dir()
        except OSError:
            regular = folder_entry = False
        if regular:
            found.append((entry.name[: -len(IMAGE_SUFFIX)], Path(entry.path)))
        elif not folder_entry:
            problems.append(f"{entry.path}: not a regular file (skipped)")
    return found


def _subfolders(folder: Path, problems: list[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        problems.append(f"{folder}: cannot be listed ({exc.strerror or exc})")
        return []


def _numbers(numbers) -> str:
    numbers = sorted(numbers)
    shown = ", ".join(f"{n:06d}" for n in numbers[:MAX_LISTED])
    return shown + (f" ... ({len(numbers)} in all)" if len(numbers) > MAX_LISTED else "")


def _unique_frames(files: list[tuple[int, str, Path]], where: str, problems: list[str]) -> list[tuple[int, str, Path]]:
    """Sort by frame number; a number seen twice is a problem and its other files are skipped (the
    official six-digit spelling is kept)."""
    kept: dict[int, tuple[int, str, Path]] = {}
    for number, stem, path in sorted(files, key=lambda f: (f[0], len(f[1].rsplit("_", 1)[-1]) != 6, f[2].name)):
        if number in kept:
            problems.append(f"{path}: {where}: frame {number:06d} appears twice (also "
                            f"{kept[number][2].name}); skipped")
            continue
        kept[number] = (number, stem, path)
    return list(kept.values())


def _annotated_frames(root: Path, split: str) -> dict[tuple[str, str], list[int]]:
    """(city, seq) -> frame numbers of the annotated images of ``leftImg8bit/<split>/``."""
    anchors: dict[tuple[str, str], list[int]] = defaultdict(list)
    for city_dir in _subfolders(root / IMAGE_DIR / split, []):
        for stem, _ in _frame_files(city_dir, []):  # their problems are discover_pairs' to report
            match = STEM_PATTERN.fullmatch(stem)
            if match and match["city"] == city_dir.name:
                anchors[(match["city"], match["seq"])].append(int(match["frame"]))
    return {key: sorted(set(value)) for key, value in anchors.items()}


def _snippet_problems(name: str, where: str, numbers: list[int], expected: range | None) -> list[str]:
    out = []
    if len(numbers) != SNIPPET_FRAMES:
        out.append(f"{where}: snippet {name}: {len(numbers)} frames, expected {SNIPPET_FRAMES}")
    wanted = expected if expected is not None else range(numbers[0], numbers[-1] + 1)
    missing = sorted(set(wanted) - set(numbers))
    if missing:
        out.append(f"{where}: snippet {name}: missing frame(s) {_numbers(missing)}")
    return out


def _cut_snippets(numbers: list[int], anchors: list[int]) -> list[tuple[int | None, list[int]]]:
    """Assign frame numbers to the snippet of an annotated frame (window -19 .. +10), the rest to
    runs cut where the numbers jump by more than a snippet."""
    groups: dict[int, list[int]] = {a: [] for a in anchors}
    rest = []
    for number in numbers:
        owner = next((a for a in anchors if a - ANNOTATED_POSITION <= number
                      < a - ANNOTATED_POSITION + SNIPPET_FRAMES), None)
        (groups[owner] if owner is not None else rest).append(number)
    cut: list[tuple[int | None, list[int]]] = [(a, frames) for a, frames in groups.items() if frames]
    run: list[int] = []
    for number in rest:
        if run and number - run[-1] > SNIPPET_FRAMES:
            cut.append((None, run))
            run = []
        run.append(number)
    if run:
        cut.append((None, run))
    return sorted(cut, key=lambda c: c[1][0])


def _discover_snippets(root: Path, problems: list[str]) -> list[Sequence]:
    out = []
    for split_dir in _subfolders(root / SEQUENCE_DIR, problems):
        split = split_dir.name
        anchors = _annotated_frames(root, split)
        for city_dir in _subfolders(split_dir, problems):
            groups: dict[str, list[tuple[int, str, Path]]] = defaultdict(list)
            for stem, path in _frame_files(city_dir, problems):
                match = STEM_PATTERN.fullmatch(stem)
                if not match:
                    problems.append(f"{path}: name is not <city>_<seq>_<frame>{IMAGE_SUFFIX} (skipped)")
                elif match["city"] != city_dir.name:
                    problems.append(f"{path}: city {match['city']!r} in folder {city_dir.name!r} (skipped)")
                else:
                    groups[match["seq"]].append((int(match["frame"]), stem, path))
            for seq, files in sorted(groups.items()):
                files = _unique_frames(files, f"{city_dir.name}_{seq}", problems)
                by_number = {number: path for number, _, path in files}
                for anchor, numbers in _cut_snippets(list(by_number), anchors.get((city_dir.name, seq), [])):
                    position = anchor if anchor is not None else numbers[0] + ANNOTATED_POSITION
                    name = f"{city_dir.name}_{seq}_{position:06d}"
                    expected = None if anchor is None else range(anchor - ANNOTATED_POSITION,
                                                                  anchor - ANNOTATED_POSITION + SNIPPET_FRAMES)
                    problems += _snippet_problems(name, str(city_dir), numbers, expected)
                    if anchor is None:
                        problems.append(f"{city_dir}: snippet {name}: no annotated frame in "
                                        f"{IMAGE_DIR}/{split}/{city_dir.name}/")
                    frames = [(n, by_number[n].relative_to(root).as_posix()) for n in numbers]
                    out.append(Sequence(name, SNIPPET, split, city_dir.name, frames, None,
                                        name if anchor is not None else None))
    return out


def _discover_drives(root: Path, problems: list[str]) -> list[Sequence]:
    out = []
    for video_dir in _subfolders(root / IMAGE_DIR / DEMO_VIDEO_SPLIT, problems):
        video = video_dir.name
        if not VIDEO_NAME.fullmatch(video):
            problems.append(f"{video_dir}: video name is not URL-safe (letters, digits, - and _); skipped")
            continue
        files, seqs = [], set()
        for stem, path in _frame_files(video_dir, problems):
            match = VIDEO_STEM.fullmatch(stem)
            if not match or match["video"] != video:
                problems.append(f"{path}: name is not {video}_<seq>_<frame>{IMAGE_SUFFIX} (skipped)")
                continue
            seqs.add(match["seq"])
            files.append((int(match["frame"]), stem, path))
        if len(seqs) > 1:
            problems.append(f"{video_dir}: drive {video}: frames of several sequence numbers "
                            f"({', '.join(sorted(seqs))}), ordered by frame number")
        files = _unique_frames(files, f"drive {video}", problems)
        if not files:
            problems.append(f"{video_dir}: drive {video}: no frames")
            continue
        numbers = [n for n, _, _ in files]
        missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if missing:
            problems.append(f"{video_dir}: drive {video}: missing frame(s) {_numbers(missing)}")
        city = re.sub(r"_\d+$", "", video)
        out.append(Sequence(video, DRIVE, DEMO_VIDEO_SPLIT, city,
                            [(n, p.relative_to(root).as_posix()) for n, _, p in files]))
    return out


def attach_ids(sequences: list[Sequence], index: DatasetIndex | None) -> list[Sequence]:
    """The sequences with ``annotated_id`` looked up in ``index`` by the annotated frame's stem
    (None where the frame is not indexed, or without an index)."""
    ids = {entry.stem: entry.id for entry in index.entries} if index is not None else {}
    return [s.with_annotated_id(ids.get(s.annotated_stem)) for s in sequences]


def discover_sequences(root: str | os.PathLike, index: DatasetIndex | None = None
                       ) -> tuple[list[Sequence], list[str]]:
    """Every snippet under ``leftImg8bit_sequence/`` and every drive under ``leftImg8bit/demoVideo/``.

    Args:
        root: the dataset root.
        index: the dataset index; gives each snippet the id of its annotated frame.

    Returns:
        The sequences (snippets by split, city and name, then drives by name), and one problem
        message per bad file or incomplete sequence. Never raises for the dataset's content.

    Example:
        >>> sequences, problems = discover_sequences("data/cityscapes-synthetic")  # doctest: +SKIP
        >>> sequences[0].name, sequences[0].annotated_position  # doctest: +SKIP
        ('ashcombe_000000_000019', 19)
    """
    root = Path(root)
    problems: list[str] = []
    snippets = sorted(_discover_snippets(root, problems), key=lambda s: (s.split, s.city, s.name))
    drives = []
    names = {s.name for s in snippets}
    for drive in _discover_drives(root, problems):
        if drive.name in names:
            problems.append(f"{root / IMAGE_DIR / DEMO_VIDEO_SPLIT / drive.name}: drive {drive.name}: "
                            "its name is also a snippet's; skipped")
            continue
        drives.append(drive)
    return attach_ids(snippets + drives, index), problems


# -- reporting -------------------------------------------------------------------------------------


def summary_line(sequences: list[Sequence], problems: list[str]) -> str:
    """One line: ``sequences: 3 snippets (val 3; 90 frames), 1 drive (120 frames); 0 problems``."""
    snippets = [s for s in sequences if s.kind == SNIPPET]
    drives = [s for s in sequences if s.kind == DRIVE]
    per_split: dict[str, int] = defaultdict(int)
    for s in snippets:
        per_split[s.split] += 1
    splits = ", ".join(f"{k} {v}" for k, v in sorted(per_split.items()))
    text = f"sequences: {len(snippets)} snippet{'s' * (len(snippets) != 1)}"
    if snippets:
        text += f" ({splits}; {sum(len(s) for s in snippets)} frames)"
    text += f", {len(drives)} drive{'s' * (len(drives) != 1)}"
    if drives:
        text += f" ({sum(len(s) for s in drives)} frames)"
    return text + f"; {len(problems)} problem{'s' * (len(problems) != 1)}"


def format_sequences(sequences: list[Sequence], problems: list[str]) -> str:
    """The summary line, then each problem on its own line."""
    return "\n".join([summary_line(sequences, problems)] + [f"  {p}" for p in problems])


# -- the sidecar beside the index -------------------------------------------------------------------


def sequences_path_for(index_path: str | os.PathLike) -> Path:
    """``sequences.json`` in the folder of the index file."""
    return Path(index_path).parent / SEQUENCES_FILENAME


def save_sequences(path: str | os.PathLike, sequences: list[Sequence], problems: list[str],
                   index: DatasetIndex | None = None) -> Path:
    """Write the sequences (frames as ``[number, file name]`` under each sequence's folder) and
    problems atomically, with the fingerprint of the index whose ids they carry."""
    data = {"format": FORMAT, "index_fingerprint": index.fingerprint() if index is not None else None,
            "sequences": [_sidecar_entry(s) for s in sequences], "problems": list(problems)}
    return write_json_atomic(path, data)


def _sidecar_entry(sequence: Sequence) -> dict:
    folder = Path(sequence.paths[0]).parent.as_posix() if sequence.frames else ""
    frames = [[n, path[len(folder) + 1:] if path.startswith(folder + "/") else path] for n, path in sequence.frames]
    return {"name": sequence.name, "kind": sequence.kind, "split": sequence.split, "city": sequence.city,
            "annotated_id": sequence.annotated_id, "annotated_stem": sequence.annotated_stem,
            "folder": folder, "frames": frames}


def load_sequences(path: str | os.PathLike, index: DatasetIndex | None = None
                   ) -> tuple[list[Sequence], list[str]]:
    """Read ``save_sequences``' file; with ``index``, annotated ids are looked up in it again (so
    a sidecar older than the index still gives the right ids). Raises ``DatasetError`` naming the
    file when it is not such a file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        sequences = []
        for item in data["sequences"]:
            folder = item["folder"]
            frames = [(int(n), f"{folder}/{name}" if folder and "/" not in name else name)
                      for n, name in item["frames"]]
            annotated_id = item["annotated_id"]
            sequences.append(Sequence(str(item["name"]), str(item["kind"]), str(item["split"]), str(item["city"]),
                                      frames, None if annotated_id is None else int(annotated_id),
                                      item["annotated_stem"]))
        problems = [str(p) for p in data["problems"]]
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: not a sequences file ({type(exc).__name__}: {exc}); "
                           "`python -m training data index` writes it again") from None
    if index is not None:
        sequences = attach_ids(sequences, index)
    return sequences, problems
