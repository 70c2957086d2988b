"""Reading one file of the run store, whatever it holds: the one place where a file becomes a value.

A store is copied by hand, filled up a disk, edited by a person, or written by a process killed
halfway: a file may be missing, a directory, a FIFO or a link to ``/dev/zero``, larger than any
real one, cut short, in another encoding, another format or another container, or hold a value of
another type. Every such failure becomes an ``ArtifactError`` whose message names the file (as
``where`` says it, e.g. "run unet: metrics.json"), never an exception of another kind, so the
listing, the health checks, the summaries, the API and every page can show the runs that are
whole and name what is wrong with the others.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import yaml

from training.data.cityscapes import MAX_IMAGE_PIXELS
from training.data.png import PngError, decode_png, read_header
from training.runs.layout import ArtifactError

MAX_TEXT_BYTES = 64 * 2**20  # far above any metrics.json, config.yaml or CSV of a run
MAX_PNG_BYTES = 512 * 2**20  # far above a 2048x1024 mask (~50 KB) or photo (~2 MB)
PARSERS = {"JSON": (json.loads, (json.JSONDecodeError, RecursionError)),
           "YAML": (yaml.safe_load, (yaml.YAMLError, RecursionError))}
KINDS = {("JSON", dict): "an object", ("YAML", dict): "a mapping"}


def _checked_file(path: Path, where: str, limit: int | None) -> os.stat_result:
    try:
        status = path.stat()  # follows a link: a link to a device is not a file of ours
    except FileNotFoundError:
        raise ArtifactError(f"{where}: missing") from None
    except OSError as error:
        raise ArtifactError(f"{where} cannot be read ({error.strerror or type(error).__name__})") from None
    if not stat.S_ISREG(status.st_mode):
        raise ArtifactError(f"{where} is not a regular file")
    if limit is not None and status.st_size > limit:
        raise ArtifactError(f"{where} holds {status.st_size:,} bytes, more than such a file ever holds ({limit:,})")
    return status


def read_bytes(path: Path, where: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    _checked_file(path, where, limit)
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        raise ArtifactError(f"{where} cannot be read ({error.strerror or type(error).__name__})") from None
    if len(data) > limit:  # it grew since its size was read
        raise ArtifactError(f"{where} holds more than {limit:,} bytes")
    return data


def read_text(path: Path, where: str) -> str:
    """A UTF-8 text file."""
    data = read_bytes(path, where)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArtifactError(f"{where} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x})") from None


def read_document(path: Path, where: str, format_name: str, expected: type) -> object:
    """A JSON or YAML file (``format_name``) holding a value of type ``expected``."""
    parse, errors = PARSERS[format_name]
    try:
        value = parse(read_text(path, where))
    except errors as error:
        raise ArtifactError(f"{where} is not valid {format_name} ({str(error).splitlines()[0][:200]})") from None
    if not isinstance(value, expected):
        wanted = KINDS.get((format_name, expected), "a " + expected.__name__)
        raise ArtifactError(f"{where} holds a {type(value).__name__}, not {wanted}")
    return value


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def read_rows(path: Path, where: str) -> list[dict]:
    """The rows of a CSV file with a header, cells as numbers where they are numbers; a row of
    another length than the header (a file cut inside a row) is an error naming its line."""
    text = read_text(path, where)
    if text and not text.endswith("\n"):  # every CSV of the store ends its rows with a line break
        raise ArtifactError(f"{where}: line {text.count(chr(10)) + 1} is cut short (no line break at the end "
                            "of the file)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                header = len(reader.fieldnames)
                fields = header + len(row[None]) if None in row else header - list(row.values()).count(None)
                raise ArtifactError(f"{where}: line {reader.line_num} is cut short or damaged ({fields} fields, "
                                    f"its header {header})")
            rows.append({key: _number(value) for key, value in row.items()})
    except csv.Error as error:
        raise ArtifactError(f"{where} is not a readable CSV ({error})") from None
    return rows


def read_array(path: Path, where: str, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array (memory-mapped with ``mmap``); an archive (``.npz``), a pickle or anything
    else is an error."""
    _checked_file(path, where, None)
    try:
        loaded = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception as error:  # numpy's readers raise many kinds (ValueError, EOFError, zipfile's, ...)
        raise ArtifactError(f"{where} is not a numpy array file ({type(error).__name__}: "
                            f"{str(error)[:200]})") from None
    if not isinstance(loaded, np.ndarray):
        close = getattr(loaded, "close", None)
        if close is not None:
            close()
        raise ArtifactError(f"{where} holds a numpy archive (.npz), not an array")
    return loaded


def read_png(path: Path, where: str, modes: tuple[str, ...], what: str) -> np.ndarray:
    """The pixels of a PNG of one of ``modes`` (``what`` says what it should be)."""
    data = read_bytes(path, where, MAX_PNG_BYTES)
    try:
        header = read_header(data)
        if header.mode not in modes:
            raise ArtifactError(f"{where} is {header.mode}, not {what}")
        return decode_png(data, MAX_IMAGE_PIXELS)
    except PngError as error:
        raise ArtifactError(f"{where} is not a readable PNG ({error})") from None
