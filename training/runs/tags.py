"""Tags and notes an analyst gives images: ``artifacts/tags.sqlite``, beside ``runs/``.

An image is named by its ``(city, stem)`` ("aachen", "aachen_000000_000019"), not by its id: a
rebuilt index may give an id to another file, a file keeps its name. The dashboard maps the names
to ids through the dataset index. A mark is about the image itself, not about one run's
prediction: the failure types it names (the ground truth is wrong, a reflection, a small object,
the border of the frame) are properties of the scene or its label that every run meets, and a
run's own mistakes are already in its files. A later mark of one run or one region is a new table
(and a new ``user_version``), not a change to these.

One SQLite file rather than JSON because two browser tabs (or a tab and a script) write at once:
every change is one ``BEGIN IMMEDIATE`` transaction (WAL journal, a busy timeout, so a writer
waits for the other instead of failing), and an image's tags are rows, so two tabs adding
different tags to one image both keep theirs. ``version()`` is a counter bumped by every write:
readers cache on it (SQLite's ``data_version`` is per connection, useless across processes).

What is written is text a person can see: a tag, a note or an image name holding a control
character (NUL, ESC...) or an invisible formatting one (a bidi override such as U+202E, which shows
"\\u202etxt.exe" as "exe.txt", a zero-width space) is refused with a ``TagError`` naming it; a note
keeps its line breaks and tabs. The CSV (``marks_csv``) is for spreadsheets: a cell one would run
as a formula starts with an added ``'`` (see there how to read it back).

Reading never creates the file (no file: no marks); the first write does. A file that is not a
tags store (damaged, another program's) is reported as an ``ArtifactError`` naming it, and is
never rewritten or removed: moving it away is the analyst's decision. Standard library only.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from training.runs.layout import ArtifactError, artifacts_dir

TAGS_FILE = "tags.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another before giving up
MAX_TAG_CHARS, MAX_NOTE_CHARS = 40, 4000
CSV_COLUMNS = ("image_id", "city", "stem", "tags", "note", "updated")
TAG_SEPARATOR = "; "  # how the CSV joins an image's tags: a tag never holds ";"
# Unicode categories never stored: controls, invisible formatting (bidi overrides and isolates,
# zero-width characters), lone surrogates, and the line and paragraph separators (a note's lines end
# with "\n"). A note's "\n" and "\t" are allowed; a tag's blanks become single spaces first.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
NOTE_BLANKS = frozenset("\n\t")
# A CSV cell starting with one of these is a formula (or may become one) to a spreadsheet; "'" is
# included so that reading back (drop one leading "'") is exact.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")

# The failure types the error analysis of the second source document names first, then others a
# street scene commonly shows. Short and lowercase, as ``normalise_tag`` makes every tag.
SUGGESTED_TAGS: tuple[str, ...] = (
    "ground truth wrong", "reflection", "small object", "border",
    "occlusion", "shadow", "night/dark", "glare", "blur", "crowd", "rare class",
)

SCHEMA = f"""
CREATE TABLE images (
    city TEXT NOT NULL, stem TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    PRIMARY KEY (city, stem));
CREATE TABLE tags (
    city TEXT NOT NULL, stem TEXT NOT NULL, tag TEXT NOT NULL,
    added TEXT NOT NULL,
    PRIMARY KEY (city, stem, tag));
CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 1), store TEXT NOT NULL, writes INTEGER NOT NULL);
INSERT INTO counter VALUES (1, lower(hex(randomblob(8))), 0);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class TagError(ValueError):
    """A tag, note or image name that cannot be stored; the message says why."""


@dataclass(frozen=True)
class ImageMark:
    """What the analyst said of one image: its tags (sorted), its note, when it last changed
    (UTC, ISO 8601 to the second)."""

    city: str
    stem: str
    tags: tuple[str, ...]
    note: str
    updated: str


def character_name(character: str) -> str:
    """``"\\u202e"`` -> ``"U+202E RIGHT-TO-LEFT OVERRIDE"`` (controls have no name: the code alone)."""
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" {name}" if name else "")


def check_visible(text: str, what: str, allowed: frozenset[str] = frozenset()) -> str:
    """``text`` when it holds no control or invisible formatting character (``REFUSED_CATEGORIES``)
    other than ``allowed``; else TagError naming the first one and where it is."""
    for position, character in enumerate(text, 1):
        if character not in allowed and unicodedata.category(character) in REFUSED_CATEGORIES:
            raise TagError(f"{what} cannot hold the control or invisible character {character_name(character)} "
                           f"(character {position})")
    return text


def normalise_tag(tag: str) -> str:
    """``"  Small   Object "`` -> ``"small object"``; TagError for an empty, long or ";" tag, or
    one with a control or invisible character."""
    if not isinstance(tag, str):
        raise TagError(f"a tag is text, not {type(tag).__name__}")
    name = check_visible(" ".join(tag.split()).lower(), "a tag")
    if not name:
        raise TagError("a tag cannot be empty")
    if ";" in name:
        raise TagError(f"a tag cannot hold ';' (it separates tags in the CSV): {name!r}")
    if len(name) > MAX_TAG_CHARS:
        raise TagError(f"a tag has at most {MAX_TAG_CHARS} characters: {name[:MAX_TAG_CHARS]!r}...")
    return name


def _check_image(city: str, stem: str) -> None:
    for what, value in (("city", city), ("stem", stem)):
        if not isinstance(value, str) or not value.strip():
            raise TagError(f"an image's {what} must be a non-empty name, not {value!r}")
        check_visible(value, f"an image's {what}")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_cell(text: str) -> str:
    """``text`` safe in a spreadsheet: ``'`` before a first character of ``FORMULA_STARTS``
    (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``), as OWASP's "CSV injection" page advises."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def marks_csv(marks: Iterable[ImageMark], ids: dict[tuple[str, str], int] | None = None) -> str:
    """``marks`` as CSV (``CSV_COLUMNS``), by image id, then city and stem; ``image_id`` is
    empty for an image the index ``ids`` does not hold (or when there is no index).

    The one CSV writer of the marks (``tags export``, the dashboard's download). Every cell is
    quoted, and a text cell that starts with ``= + - @``, a tab, a carriage return or ``'`` gets an
    added ``'`` in front (``csv_cell``), so that a spreadsheet shows a tag or note such as
    ``=HYPERLINK(...)`` instead of running it. To read the text back, drop the one leading ``'`` of
    any cell that starts with one.
    """
    ids = ids or {}

    def order(mark: ImageMark):
        image_id = ids.get((mark.city, mark.stem))
        return (image_id is None, image_id or 0, mark.city, mark.stem)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)  # a "\r" in a cell stays in it
    writer.writerow(CSV_COLUMNS)
    for mark in sorted(marks, key=order):
        image_id = ids.get((mark.city, mark.stem))
        writer.writerow(["" if image_id is None else image_id, *map(csv_cell, (
            mark.city, mark.stem, TAG_SEPARATOR.join(mark.tags), mark.note, mark.updated))])
    return buffer.getvalue()


class TagStore:
    """The tags and notes of one run store (``artifacts_dir`` as ``training.runs.layout`` finds it)."""

    def __init__(self, artifacts: str | os.PathLike | None = None):
        self.path = artifacts_dir(artifacts) / TAGS_FILE

    # ------------------------------------------------------------------ connections

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """A connection in autocommit mode (transactions are explicit); None when there is no
        file and ``create`` is false. ``mode=rw`` never creates the file, ``rwc`` does."""
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            return None
        uri = f"{self.path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.OperationalError as error:
            if not create and not self.path.exists():  # removed between the check and the open
                return None
            raise self._problem(error) from error
        return connection

    def _problem(self, error: Exception) -> ArtifactError:
        if _busy(error):  # another writer held it past the timeout
            return ArtifactError(f"{TAGS_FILE} is busy (another writer held it for over {BUSY_TIMEOUT_S:.0f} s): "
                                 "nothing was changed, try again")
        return ArtifactError(f"{TAGS_FILE} cannot be read ({error}): it is left as it is; "
                             f"move it away to start a new one (its tags and notes are then lost)")

    def _schema_version(self, connection: sqlite3.Connection) -> int:
        """The file's ``user_version``, once it is known to be a tags store (0: an empty file).
        One statement, one snapshot: another writer may make the schema between two."""
        version, tables = connection.execute(
            "SELECT user_version, (SELECT count(*) FROM sqlite_master) FROM pragma_user_version").fetchone()
        if version == 0 and tables:
            raise ArtifactError(f"{TAGS_FILE} is an SQLite file of another program (no tags schema): "
                                "it is left as it is; move it away to start a new one")
        if version > SCHEMA_VERSION:
            raise ArtifactError(f"{TAGS_FILE} was written by a newer version of this tool "
                                f"(schema {version}, this one reads {SCHEMA_VERSION}): update the tool")
        return version

    @contextmanager
    def _reading(self):
        """A read transaction (one consistent view), or None when there is nothing to read."""
        connection = self._connect(create=False)
        if connection is None:
            yield None
            return
        with closing(connection):
            try:
                connection.execute("BEGIN")
                ready = self._schema_version(connection) == SCHEMA_VERSION
                yield connection if ready else None
                connection.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                raise self._problem(error) from error

    @contextmanager
    def _writing(self):
        """One write transaction that makes the schema if the file is new and bumps the counter."""
        with closing(self._connect(create=True)) as connection:
            try:
                self._begin_writing(connection)
                try:
                    if self._schema_version(connection) == 0:
                        for statement in SCHEMA.split(";"):
                            if statement.strip():
                                connection.execute(statement)
                    yield connection
                    connection.execute("UPDATE counter SET writes = writes + 1")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                raise self._problem(error) from error

    def _begin_writing(self, connection: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` on a tags store in WAL mode. SQLite waits its busy timeout for
        another writer, except in a few races where it answers "locked" at once (two connections
        switching a new file to WAL together): those are tried again until the timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._schema_version(connection)  # before anything changes a file that is not ours
                connection.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers never block writers
                connection.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for another writer
                return
            except sqlite3.OperationalError as error:
                if not _busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    # ------------------------------------------------------------------ reading

    def version(self) -> str:
        """Changes with every write: "<file's random id>:<writes>" ("0" while there is no file;
        the id tells a file put in the place of another apart from it)."""
        with self._reading() as connection:
            if connection is None:
                return "0"
            store, writes = connection.execute("SELECT store, writes FROM counter").fetchone()
        return f"{store}:{writes}"

    def marks(self) -> dict[tuple[str, str], ImageMark]:
        """Every image with a tag or a note, by (city, stem)."""
        with self._reading() as connection:
            if connection is None:
                return {}
            rows = connection.execute(  # one row per image, its tags joined by ";" (never in a tag)
                "SELECT images.city, images.stem, note, updated, group_concat(tag, ';') FROM images "
                "LEFT JOIN tags ON tags.city = images.city AND tags.stem = images.stem "
                "GROUP BY images.city, images.stem").fetchall()
        return {(city, stem): ImageMark(city, stem, tuple(sorted(tags.split(";"))) if tags else (), note, updated)
                for city, stem, note, updated, tags in rows}

    def mark(self, city: str, stem: str) -> ImageMark | None:
        """The image's mark, None when it has neither tag nor note."""
        with self._reading() as connection:
            if connection is None:
                return None
            row = connection.execute("SELECT note, updated FROM images WHERE city = ? AND stem = ?",
                                     (city, stem)).fetchone()
            if row is None:
                return None
            tags = connection.execute("SELECT tag FROM tags WHERE city = ? AND stem = ? ORDER BY tag",
                                      (city, stem)).fetchall()
        return ImageMark(city, stem, tuple(tag for (tag,) in tags), row[0], row[1])

    def csv_text(self, ids: dict[tuple[str, str], int] | None = None) -> str:
        """Every mark as CSV (see ``marks_csv``)."""
        return marks_csv(self.marks().values(), ids)

    # ------------------------------------------------------------------ writing

    def add_tag(self, city: str, stem: str, tag: str) -> ImageMark | None:
        """Give the image ``tag`` (normalised; nothing changes if it has it already)."""
        _check_image(city, stem)
        name = normalise_tag(tag)
        with self._writing() as connection:
            now = _now()
            if connection.execute("INSERT OR IGNORE INTO tags VALUES (?, ?, ?, ?)",
                                  (city, stem, name, now)).rowcount:
                self._touch(connection, city, stem, now)
        return self.mark(city, stem)

    def remove_tag(self, city: str, stem: str, tag: str) -> ImageMark | None:
        """Take ``tag`` off the image (nothing changes if it does not have it)."""
        _check_image(city, stem)
        name = normalise_tag(tag)
        with self._writing() as connection:
            if connection.execute("DELETE FROM tags WHERE city = ? AND stem = ? AND tag = ?",
                                  (city, stem, name)).rowcount:
                self._touch(connection, city, stem, _now())
        return self.mark(city, stem)

    def set_note(self, city: str, stem: str, note: str) -> ImageMark | None:
        """Replace the image's note (surrounding blanks dropped, line breaks made "\\n"; an empty
        note removes it); TagError for a long one or one with a control or invisible character."""
        _check_image(city, stem)
        if not isinstance(note, str):
            raise TagError(f"a note is text, not {type(note).__name__}")
        text = check_visible(note.replace("\r\n", "\n").replace("\r", "\n").strip(), "a note", NOTE_BLANKS)
        if len(text) > MAX_NOTE_CHARS:
            raise TagError(f"a note has at most {MAX_NOTE_CHARS} characters (this one has {len(text)})")
        with self._writing() as connection:
            old = connection.execute("SELECT note FROM images WHERE city = ? AND stem = ?", (city, stem)).fetchone()
            if (old[0] if old else "") != text:
                self._touch(connection, city, stem, _now(), text)
        return self.mark(city, stem)

    @staticmethod
    def _touch(connection: sqlite3.Connection, city: str, stem: str, now: str, note: str | None = None) -> None:
        """Record that the image changed at ``now`` (and its new ``note``); an image left with
        neither tag nor note is no longer marked."""
        connection.execute("INSERT INTO images (city, stem, updated) VALUES (?, ?, ?) "
                           "ON CONFLICT (city, stem) DO UPDATE SET updated = excluded.updated", (city, stem, now))
        if note is not None:
            connection.execute("UPDATE images SET note = ? WHERE city = ? AND stem = ?", (note, city, stem))
        connection.execute("DELETE FROM images WHERE city = ? AND stem = ? AND note = '' AND NOT EXISTS "
                           "(SELECT 1 FROM tags WHERE city = ? AND stem = ?)", (city, stem, city, stem))


def _busy(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    return "locked" in str(error) or "busy" in str(error)
