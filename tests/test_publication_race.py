"""Two real processes publishing runs of one name at the same moment: every commit gets a name of
its own (``name``, ``name-2``, ...), and every published folder holds one writer's files only."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from training.runs.layout import RUN_FILES
from training.runs.writer import RunWriter, rename_no_replace

NAME, COMMITS = "race", 15


def publish_many(root: str, barrier, who: int) -> None:
    for attempt in range(COMMITS):
        writer = RunWriter(NAME, root)
        mark = f"{who}-{attempt}-{writer.uid}"
        for filename in RUN_FILES:
            writer.write_text(filename, mark)
        writer.write_json("metrics.json", {"mark": mark, "source": "trained"})
        barrier.wait(timeout=60)  # both commit at the same moment
        writer.commit()


def test_two_processes_publishing_one_name_get_two_whole_runs(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [context.Process(target=publish_many, args=(str(tmp_path), barrier, who)) for who in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0

    runs = sorted(folder for folder in (tmp_path / "runs").iterdir())
    expected = {NAME} | {f"{NAME}-{number}" for number in range(2, 2 * COMMITS + 1)}
    assert {folder.name for folder in runs} == expected  # no staging folder left, no name twice
    marks = set()
    for folder in runs:
        mark = json.loads((folder / "metrics.json").read_text())["mark"]
        assert {(folder / f).read_text() for f in RUN_FILES if f != "metrics.json"} == {mark}, folder
        assert sorted(p.name for p in folder.iterdir()) == sorted({*RUN_FILES, "predictions", "confidence"})
        marks.add(mark)
    assert len(marks) == 2 * COMMITS


def test_rename_no_replace_refuses_an_existing_empty_folder(tmp_path):
    source, target = tmp_path / "staged", tmp_path / "taken"
    source.mkdir()
    (source / "file").write_text("x")
    target.mkdir()  # empty: os.rename would silently replace it
    with pytest.raises(FileExistsError):
        rename_no_replace(source, target)
    assert list(target.iterdir()) == [] and (source / "file").exists()
    rename_no_replace(source, tmp_path / "free")
    assert (tmp_path / "free" / "file").read_text() == "x"

