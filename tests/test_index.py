"""Stable integer ids, splits without leakage, sample subsets, the saved index."""

import pytest
from cityscapes_builder import build_tiny_dataset, image_path, label_path, street_label_ids, write_pair

from training.cli import main
from training.data.cityscapes import DatasetError
from training.data.index import INDEX_FILENAME, load_index, load_or_build_index


def test_splits_follow_the_source(tmp_path):
    root = build_tiny_dataset(tmp_path / "d", train_per_city=10, val=5)
    index = load_or_build_index(root)
    counts = index.counts()
    assert counts["test"] == 5 and counts["train"] + counts["validation"] == 20
    assert counts["validation"] == 4  # round(0.2 * 20)
    assert {e.official_split for e in index.split("test")} == {"val"}
    assert {e.official_split for e in index.split("train") + index.split("validation")} == {"train"}
    ids = [set(e.id for e in index.split(s)) for s in ("train", "validation", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert set().union(*ids) == set(range(25))


def test_sample_subsets_are_inside_their_split(tmp_path):
    root = build_tiny_dataset(tmp_path / "d", train_per_city=40, val=2)
    index = load_or_build_index(root, sample_ratio=0.1)
    train, sample = index.split("train"), index.split("train_sample")
    assert set(e.id for e in sample) < set(e.id for e in train)
    assert len(sample) == max(round(0.1 * len(train)), 8)
    assert set(e.id for e in index.split("validation_sample")) <= set(e.id for e in index.split("validation"))


def test_same_files_same_ids_and_splits_in_another_folder(tmp_path):
    first = load_or_build_index(build_tiny_dataset(tmp_path / "a"))
    second = load_or_build_index(build_tiny_dataset(tmp_path / "b"))
    assert [(e.id, e.stem, e.split, e.sample) for e in first.entries] == \
           [(e.id, e.stem, e.split, e.sample) for e in second.entries]
    assert first.fingerprint() == second.fingerprint()


def test_reindexing_after_adding_files_keeps_every_id(tiny_root):
    before = {e.stem: (e.id, e.split, e.sample) for e in load_or_build_index(tiny_root).entries}
    for seq in range(6):  # new images, some sorting before the old ones
        write_pair(tiny_root, "train", "aardvark", seq, 1, street_label_ids())
    write_pair(tiny_root, "val", "gamma", 99, 19, street_label_ids())
    after = load_or_build_index(tiny_root)
    by_stem = {e.stem: e for e in after.entries}
    for stem, kept in before.items():
        entry = by_stem[stem]
        assert (entry.id, entry.split, entry.sample) == kept
    new = [e for e in after.entries if e.stem not in before]
    assert sorted(e.id for e in new) == list(range(14, 21))
    assert by_stem["gamma_000099_000019"].split == "test"
    # the validation share is kept over the whole official train split
    assert len(after.split("validation")) == round(0.2 * 16)


def test_ids_of_removed_files_are_never_reused(tiny_root):
    index = load_or_build_index(tiny_root)
    last = index.entries[-1]
    image_path(tiny_root, last.official_split, last.stem).unlink()
    label_path(tiny_root, last.official_split, last.stem).unlink()
    assert last.id not in load_or_build_index(tiny_root)
    write_pair(tiny_root, "val", "gamma", 50, 19, street_label_ids())
    assert {e.stem: e.id for e in load_or_build_index(tiny_root).entries}["gamma_000050_000019"] == last.id + 1


def test_index_round_trip_and_lookup(tiny_root):
    index = load_or_build_index(tiny_root)
    loaded = load_index(tiny_root / INDEX_FILENAME)
    assert loaded.entries == index.entries and loaded.next_id == index.next_id
    assert index[3].id == 3
    with pytest.raises(KeyError, match="unknown image id 999"):
        index[999]
    with pytest.raises(ValueError, match="unknown split"):
        index.split("val")


def test_malformed_index_file_is_named(tiny_root):
    (tiny_root / INDEX_FILENAME).write_text("id,split\n1,train\n")
    with pytest.raises(DatasetError, match=f"{INDEX_FILENAME}: not a segmentation index"):
        load_or_build_index(tiny_root)


def test_data_index_cli(tiny_root, capsys):
    assert main(["data", "index", "--data-root", str(tiny_root), "--validation-ratio", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "14 images, ids 0..13" in out and "validation 5" in out
    # the saved ratio is kept until an explicit rebuild
    assert main(["data", "index", "--data-root", str(tiny_root)]) == 0
    assert "validation 5" in capsys.readouterr().out
    assert main(["data", "index", "--data-root", str(tiny_root), "--rebuild"]) == 0
    assert "validation 2" in capsys.readouterr().out


@pytest.mark.parametrize("damage, problem", [
    (lambda text: text[: len(text) // 2].encode(), "malformed index"),                  # cut mid-row
    (lambda text: b"\x00\xff\xfe garbage", "not a segmentation index"),
    (lambda text: text.replace("next_id=", "next_id").encode(), "malformed index"),       # a broken header
    (lambda text: text.replace(",test,", ",tset,", 1).encode(), "unknown split 'tset'"),
    (lambda text: (text + text.splitlines()[2] + "\n").encode(), "an id appears twice"),
    (lambda text: b"", "not a segmentation index"),
])
def test_a_damaged_index_is_named_with_the_fix(tiny_root, damage, problem):
    path = tiny_root / INDEX_FILENAME
    load_or_build_index(tiny_root)
    path.write_bytes(damage(path.read_text()))
    with pytest.raises(DatasetError, match=problem) as error:
        load_or_build_index(tiny_root)
    assert "data index --rebuild" in str(error.value) and str(path) in str(error.value)
    assert main(["data", "index", "--data-root", str(tiny_root), "--rebuild"]) == 0
    assert len(load_or_build_index(tiny_root)) == 14
