"""The Gallery's table and thumbnails (``dashboard.readers.image_numbers``, ``dashboard.views.image_table``,
``dashboard.pictures.thumbnails``) on a small real store: two runs imported from prediction PNGs
written from the tiny dataset's ground truth with known mistakes, so every number has a known answer. No TensorFlow."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cityscapes_builder import build_tiny_dataset
from PIL import Image

import dashboard.pictures.images as pictures
import dashboard.pictures.thumbnails as thumbnails
import dashboard.readers.image_numbers as image_numbers
import dashboard.readers.store as store
import dashboard.views.image_table as image_table
from training import viz
from training.data.cityscapes import read_image, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.memory import ByteLRU
from training.runs.reader import get_run

RUN_A, RUN_B = "exact", "worse"
WRONG_COLUMNS = (3, 0, 9, 1)  # per test image in id order: the leftmost columns RUN_B gets wrong


def build_store(base: Path) -> SimpleNamespace:
    """A tiny dataset (16x32 PNGs; 4 test images) and two imported categories8 runs of its test
    split: ``RUN_A`` predicts the ground truth, ``RUN_B`` gets ``WRONG_COLUMNS`` columns wrong."""
    from training.runs.imported import import_predictions

    root = build_tiny_dataset(base / "cityscapes")
    index = load_or_build_index(root, report=lambda message: None)
    class_set = get_class_set("categories8")
    label_of_class = np.array([int(np.flatnonzero(class_set.lut == c)[0]) for c in range(8)], dtype=np.uint8)
    entries = index.split("test")
    for run, columns in ((RUN_A, (0,) * len(entries)), (RUN_B, WRONG_COLUMNS)):
        folder = base / "predictions" / run
        folder.mkdir(parents=True)
        for entry, wrong in zip(entries, columns, strict=True):
            truth = class_set.lut[read_label_ids(root / entry.label)]
            predicted = np.where(truth == 255, 0, truth).astype(np.uint8)
            predicted[:, :wrong] = (predicted[:, :wrong] + 1) % class_set.num_classes
            Image.fromarray(label_of_class[predicted]).save(folder / f"{entry.stem}_prediction.png")
        import_predictions(folder, run, root, classes="categories8", format="labelIds", artifacts=base / "artifacts",
                           workers=1, progress=False)
    return SimpleNamespace(artifacts=base / "artifacts", data_root=root, runs=[RUN_A, RUN_B],
                           test_ids=[entry.id for entry in entries], index=index,
                           wrong=dict(zip([entry.id for entry in entries], WRONG_COLUMNS, strict=True)))


@pytest.fixture(scope="module")
def gallery_store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("gallery"))


@pytest.fixture
def gallery_env(gallery_store, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_DIR", str(gallery_store.artifacts))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(gallery_store.data_root))
    return gallery_store


def _csv(store, run: str, filename: str = "per_image.csv") -> pd.DataFrame:
    rows = get_run(run, store.artifacts).per_image() if filename == "per_image.csv" else \
        get_run(run, store.artifacts).per_image_anatomy()
    return pd.DataFrame(rows).set_index("id")


# ---------------------------------------------------------------------------- the table

def test_the_table_holds_every_number_of_each_image(gallery_env):

    env = gallery_env
    made = image_numbers.gallery_table(store.store_key(), "all", env.runs)
    table = made.table.set_index("id")
    assert list(table.index) == [entry.id for entry in env.index.entries]  # every image of the split, by id
    assert made.notes == () and made.share_run == RUN_A
    for run in env.runs:
        expected = _csv(env, run)
        for column in ("miou", "pixel_accuracy"):
            shown = table.loc[env.test_ids, image_table.run_column(column, run)]
            assert np.allclose(shown, expected.loc[env.test_ids, column])
        anatomy = _csv(env, run, "per_image_anatomy.csv")
        assert np.allclose(table.loc[env.test_ids, image_table.run_column("boundary_miou", run)],
                           anatomy.loc[env.test_ids, "boundary_miou"])
        assert list(table.loc[env.test_ids, image_table.run_column("objects", run)]) == list(
            anatomy.loc[env.test_ids, "objects"])
    difference = table[image_table.DIFFERENCE]
    assert np.allclose(difference.loc[env.test_ids], table.loc[env.test_ids, "miou:exact"]
                       - table.loc[env.test_ids, "miou:worse"])
    assert difference.loc[env.test_ids[1]] == 0 and (difference.loc[env.test_ids[2]] > 0)  # 0 and 9 wrong columns
    # images the runs did not evaluate (train, validation) have no numbers
    others = [entry.id for entry in env.index.entries if entry.id not in env.test_ids]
    assert table.loc[others, ["miou:exact", "share:flat"]].isna().all().all()
    # class shares: the ground truth's, counted on the label file
    class_set = get_class_set("categories8")
    for image_id in env.test_ids:
        truth = class_set.lut[read_label_ids(env.data_root / env.index[image_id].label)]
        counted = truth[truth != 255]
        for number, name in enumerate(class_set.names):
            assert table.loc[image_id, f"share:{name}"] == pytest.approx(np.mean(counted == number))
    assert image_table.column_label("share:flat") == "share of flat"
    assert image_table.column_label(image_table.DIFFERENCE, env.runs) == "mIoU, exact minus worse"
    assert image_table.column_label("boundary_miou:worse") == "boundary mIoU, worse"


def test_an_anatomy_computed_again_under_new_file_names_is_shown(gallery_env, tmp_path, monkeypatch):
    """``anatomy --replace`` writes ``per_image_anatomy-<hex>.csv`` and switches anatomy.json's
    "files" map to it: the gallery follows the map, not the default name."""
    import json
    import shutil

    artifacts = shutil.copytree(gallery_env.artifacts, tmp_path / "artifacts")
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    run_dir = artifacts / "runs" / RUN_B
    before = image_numbers.gallery_table(store.store_key(), "test", gallery_env.runs).table["boundary_miou:worse"]
    (run_dir / "per_image_anatomy.csv").rename(run_dir / "per_image_anatomy-0a1b2c.csv")
    document = json.loads((run_dir / "anatomy.json").read_text())
    document["files"] = {**(document.get("files") or {}), "per_image": "per_image_anatomy-0a1b2c.csv"}
    (run_dir / "anatomy.json").write_text(json.dumps(document))
    made = image_numbers.gallery_table(store.store_key(), "test", gallery_env.runs)
    assert not made.notes
    assert made.table["boundary_miou:worse"].equals(before)


def test_a_damaged_anatomy_file_is_a_note_and_the_rest_is_shown(gallery_env, tmp_path, monkeypatch):
    import shutil

    artifacts = shutil.copytree(gallery_env.artifacts, tmp_path / "artifacts")
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    (artifacts / "runs" / RUN_B / "per_image_anatomy.csv").write_bytes(bytes(range(128, 256)) * 4)
    made = image_numbers.gallery_table(store.store_key(), "test", gallery_env.runs)
    assert made.notes == ("**worse**: no anatomy columns (per_image_anatomy.csv is not UTF-8 text (byte 0 is "
                          "0x80)).",)
    assert "boundary_miou:worse" not in made.table and "boundary_miou:exact" in made.table
    assert made.table["miou:worse"].notna().all()
    assert str(tmp_path) not in "".join(made.notes)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [5, 1, 3, 2, 4], "city": list("abcde"), "stem": list("vwxyz"),
                         "miou:a": [0.5, np.nan, 0.2, 0.5, 0.9], "tags": [("dark",), (), ("dark", "rain"),
                                                                          ("rain",), ()]})


def test_sorting_puts_missing_values_last_either_way_ties_by_id():

    frame = _frame()
    assert list(image_table.sort_rows(frame, "miou:a")["id"]) == [3, 2, 5, 4, 1]
    assert list(image_table.sort_rows(frame, "miou:a", descending=True)["id"]) == [4, 2, 5, 3, 1]
    assert list(image_table.sort_rows(frame, "id", descending=True)["id"]) == [5, 4, 3, 2, 1]
    assert image_table.numeric_columns(frame) == ["id", "miou:a"]
    with pytest.raises(ValueError, match="no column 'miou:b' to sort by; columns: id, miou:a"):
        image_table.sort_rows(frame, "miou:b")


def test_range_and_tag_filters_narrow_the_rows():

    frame = _frame()
    assert list(image_table.filter_range(frame, "miou:a", 0.5, None)["id"]) == [5, 2, 4]  # bounds included, NaN out
    assert list(image_table.filter_range(frame, "miou:a", None, 0.5)["id"]) == [5, 3, 2]
    assert list(image_table.filter_range(frame, "miou:a", 0.3, 0.6)["id"]) == [5, 2]
    assert len(image_table.filter_range(frame, "miou:a")) == 5  # no bound: every row, NaN included
    with pytest.raises(ValueError, match="no column 'share:sky' to filter by"):
        image_table.filter_range(frame, "share:sky", 0.1)
    assert list(image_table.filter_tags(frame, ["dark"])["id"]) == [5, 3]
    assert list(image_table.filter_tags(frame, ["dark", "rain"])["id"]) == [3]
    assert len(image_table.filter_tags(frame, [])) == 5
    tagged = image_table.with_tags(frame, {2: ("blurred",)})
    assert list(tagged["tags"]) == [(), (), (), ("blurred",), ()]


def test_paging_clamps_to_the_pages_there_are():

    frame = pd.DataFrame({"id": range(14)})
    rows, page, pages = image_table.page_of(frame, 2, 12)
    assert (list(rows["id"]), page, pages) == ([12, 13], 2, 2)
    assert image_table.page_of(frame, 9, 12)[1:] == (2, 2)
    assert image_table.page_of(frame, 0, 12)[1] == 1
    assert len(image_table.page_of(frame, 1)[0]) == 14 and image_table.page_of(frame, 1)[2] == 1
    assert image_table.page_of(frame.iloc[0:0], 3, 24)[1:] == (1, 1)
    assert [image_table.value_text(v, "miou:a") for v in (np.nan, 1.0, 0.25)] == ["-", "1.000", "0.250"]
    assert [image_table.value_text(v, column) for v, column in ((3.0, "missed:a"), (7, "id"))] == ["3", "7"]


# ---------------------------------------------------------------------------- thumbnails

def _decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)


def _requests(env, mode: str, image_id: int, width: int = 320):

    key = store.store_key()
    image = pictures.image_ref(key, image_id)
    run = pictures.run_refs(key, [RUN_B], image)[RUN_B]
    return thumbnails.request(image, run, mode, width)


def test_thumbnails_show_the_photo_the_prediction_and_the_errors(gallery_env):

    env = gallery_env
    image_id = env.test_ids[2]  # RUN_B gets its 9 leftmost columns wrong
    wanted = [_requests(env, mode, image_id) for mode in thumbnails.MODES] + [_requests(env, "photo", image_id, 16)]
    photo, overlay, errors, half = thumbnails.thumbnails(wanted, None, ByteLRU(2**20))
    assert all(t.note is None for t in (photo, overlay, errors, half))
    assert _decoded(photo.jpeg).shape == (16, 32, 3) and _decoded(half.jpeg).shape == (8, 16, 3)
    # each thumbnail is nearest to the picture it should be (JPEG is lossy: compared, not equal)
    class_set = get_class_set("categories8")
    full = read_image(env.data_root / env.index[image_id].image)
    truth = class_set.lut[read_label_ids(env.data_root / env.index[image_id].label)]
    predicted = get_run(RUN_B, env.artifacts).prediction(image_id)
    expected = {"photo": full, "overlay": viz.overlay(full, class_set.colorize(predicted), thumbnails.OPACITY),
                "error map": viz.error_map(full, truth, predicted, class_set)}
    for mode, thumbnail in zip(thumbnails.MODES, (photo, overlay, errors), strict=True):
        distances = {other: np.abs(_decoded(thumbnail.jpeg) - picture.astype(int)).mean()
                     for other, picture in expected.items()}
        assert min(distances, key=distances.get) == mode, (mode, distances)


def test_a_thumbnail_without_a_readable_prediction_is_the_photo_with_a_note(gallery_env, tmp_path, monkeypatch):
    import shutil

    env = gallery_env
    artifacts = shutil.copytree(env.artifacts, tmp_path / "artifacts")
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    (artifacts / "runs" / RUN_B / "predictions" / f"{env.test_ids[0]}.png").write_bytes(b"\x89PNG\r\n\x1a\n bad")
    train_id = env.index.split("train")[0].id
    damaged, absent = thumbnails.thumbnails([_requests(env, "overlay", env.test_ids[0]),
                                             _requests(env, "error map", train_id)], None, ByteLRU(2**20))
    assert damaged.note.startswith(f"photo only: predictions/{env.test_ids[0]}.png is not a readable PNG (")
    assert absent.note == "photo only: worse has no prediction of this image"
    assert _decoded(damaged.jpeg).shape == (16, 32, 3)


def test_the_disk_layer_serves_a_new_process_and_never_a_stale_picture(gallery_env, tmp_path, monkeypatch):
    import shutil

    env = gallery_env
    artifacts = shutil.copytree(env.artifacts, tmp_path / "artifacts")
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    wanted = [_requests(env, "overlay", image_id) for image_id in env.test_ids]
    first = thumbnails.thumbnails(wanted, str(artifacts), ByteLRU(2**20))
    files = sorted((artifacts / thumbnails.FOLDER).rglob("*.jpg"))
    assert len(files) == len(env.test_ids) and not list((artifacts / thumbnails.FOLDER).rglob("*.tmp"))

    def never(request):
        raise AssertionError("drawn again")

    drawing = thumbnails.draw
    monkeypatch.setattr(thumbnails, "draw", never)
    again = thumbnails.thumbnails(wanted, str(artifacts), ByteLRU(2**20))  # a new process: an empty memory
    assert [t.jpeg for t in again] == [t.jpeg for t in first]
    monkeypatch.setattr(thumbnails, "draw", drawing)
    files[0].write_bytes(files[0].read_bytes()[:100])  # a damaged file of the disk layer is drawn again
    assert [t.jpeg for t in thumbnails.thumbnails(wanted, str(artifacts), ByteLRU(2**20))] == [t.jpeg for t in first]
    # a rewritten prediction has another stamp, so another name: drawn again, not read
    path = artifacts / "runs" / RUN_B / "predictions" / f"{env.test_ids[1]}.png"
    exact = get_run(RUN_A, artifacts).prediction(env.test_ids[1])
    Image.fromarray((exact + 1) % 8, mode="L").save(path)
    changed = thumbnails.thumbnails([_requests(env, "overlay", env.test_ids[1])], str(artifacts), ByteLRU(2**20))
    assert changed[0].jpeg != first[1].jpeg
    assert len(sorted((artifacts / thumbnails.FOLDER).rglob("*.jpg"))) == len(env.test_ids) + 1


def test_the_next_page_is_drawn_in_the_background(gallery_env, tmp_path, monkeypatch):

    env = gallery_env
    lru = ByteLRU(2**20)
    wanted = [_requests(env, "error map", image_id) for image_id in env.test_ids]
    thumbnails.prefetch(wanted[:2], str(tmp_path), lru).result(timeout=60)
    assert all(request in lru for request in wanted[:2]) and not any(request in lru for request in wanted[2:])
    assert len(list((tmp_path / thumbnails.FOLDER).rglob("*.jpg"))) == 2
    assert thumbnails.prefetch(wanted[:2], str(tmp_path), lru) is None  # nothing left to draw
    drawn = thumbnails.thumbnails(wanted, None, ByteLRU(2**20))
    assert [lru.get(request).jpeg for request in wanted[:2]] == [t.jpeg for t in drawn[:2]]
