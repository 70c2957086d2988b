"""The cache of the dataset at training size: the same arrays as decoding and resizing, an entry
rebuilt when its files change, written atomically, beside the data or in the user's cache."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cityscapes_builder import build_tiny_dataset, image_path, label_path, street_label_ids, write_pair

from training.data.cache import FrameCache, user_cache_dir
from training.data.cityscapes import DatasetError, read_pair
from training.data.index import load_or_build_index
from training.data.resize import resize_mask, resize_pair
from training.fit.augment import AUGMENTATIONS, build_augmentation
from training.fit.batches import SegmentationBatches

SIZE = (8, 16)  # training size; the frames are 32x64, so every size is a real resize


@pytest.fixture
def index(tmp_path):
    root = build_tiny_dataset(tmp_path / "cityscapes", height=32, width=64)
    for entry in load_or_build_index(root).split("train"):  # noise: a mismatch cannot hide in flat colours
        noisy = np.random.default_rng(entry.id).integers(0, 256, (32, 64, 3), dtype=np.uint8)
        write_pair(root, "train", entry.city, int(entry.stem.split("_")[1]), 19,
                   street_label_ids(32, 64, entry.id), noisy)
    return load_or_build_index(root)


def _entries_in(cache: FrameCache) -> list:
    return sorted(cache.directory.rglob("*.npy"))


def _all_batches(batches, epochs=2):
    loaded = []
    for _ in range(epochs):
        loaded.append([tuple(a.tobytes() for a in batches[b]) for b in range(len(batches))])
        batches.on_epoch_end()
    return loaded


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_cached_batches_are_those_of_decoding_and_resizing(index, name):
    entries = index.split("train")
    cache = FrameCache(index.root)

    def batches(cache):
        return SegmentationBatches(index.root, entries, size=SIZE, batch_size=3, shuffle=True, seed=1,
                                   augment=build_augmentation(name, SIZE, seed=2), cache=cache)

    direct = _all_batches(batches(None))
    assert _all_batches(batches(cache)) == direct  # the first epoch writes, the second reads
    expected = len(entries) * (2 if name == "scale" else 1)
    assert len(_entries_in(cache)) == expected
    assert _all_batches(batches(cache)) == direct  # a new loader, a warm cache


def test_an_entry_holds_the_resized_pair(index):
    entry = index.split("train")[0]
    cache = FrameCache(index.root)
    (image, label_ids), (big_image, big_label_ids) = cache.load(entry.image, entry.label, [SIZE, (16, 32)])
    full = read_pair(index.root, entry.image, entry.label)
    for (got_image, got_labels), size in zip(((image, label_ids), (big_image, big_label_ids)), (SIZE, (16, 32))):
        want_image, want_labels = resize_pair(*full, size)
        assert got_image.dtype == np.uint8 and got_image.flags.c_contiguous
        np.testing.assert_array_equal(got_image, want_image)
        np.testing.assert_array_equal(got_labels, want_labels)
    path = cache.entry_path(entry.image, entry.label, SIZE)
    assert path.is_relative_to(index.root / ".cache" / "training")
    assert path.name.startswith(f"{entry.stem}_leftImg8bit.") and np.load(path).shape == (*SIZE, 4)


def _replace(path, data: bytes) -> None:
    """As a download tool replaces a file: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def test_a_changed_file_rebuilds_its_entry_and_only_its_entry(index):
    entries = index.split("train")
    cache = FrameCache(index.root)
    for entry in entries:
        cache.load(entry.image, entry.label, [SIZE])
    before = {p: os.stat(p).st_mtime_ns for p in _entries_in(cache)}
    changed, photo_source = entries[0], entries[1]
    _replace(index.root / changed.image, (index.root / photo_source.image).read_bytes())
    image, _ = cache.load(changed.image, changed.label, [SIZE])[0]
    np.testing.assert_array_equal(image, resize_pair(*read_pair(index.root, photo_source.image, photo_source.label),
                                                     SIZE)[0])
    after = {p: os.stat(p).st_mtime_ns for p in _entries_in(cache)}
    old = [p for p in before if p.name.startswith(changed.stem)]
    new = [p for p in after if p.name.startswith(changed.stem)]
    assert len(old) == len(new) == 1 and old != new  # rebuilt under a new key, the stale one removed
    assert {p: t for p, t in after.items() if p not in new} == {p: t for p, t in before.items() if p not in old}

    # a label rewritten in place (same inode) with a new modification time counts too
    path = label_path(index.root, "train", changed.stem)
    labels = street_label_ids(32, 64, 99)
    write_pair(index.root, "train", changed.city, int(changed.stem.split("_")[1]), 19, labels,
               read_pair(index.root, changed.image, changed.label)[0])
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _, cached_labels = cache.load(changed.image, changed.label, [SIZE])[0]
    np.testing.assert_array_equal(cached_labels, resize_mask(labels, SIZE))


def test_a_file_that_disappears_names_itself_though_cached(index):
    entry = index.split("train")[0]
    cache = FrameCache(index.root)
    cache.load(entry.image, entry.label, [SIZE])
    label_path(index.root, "train", entry.stem).unlink()
    with pytest.raises(DatasetError, match=f"{entry.stem}_gtFine_labelIds.png: file not found"):
        cache.load(entry.image, entry.label, [SIZE])
    image_path(index.root, "train", entry.stem).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DatasetError, match=f"{entry.stem}_leftImg8bit.png"):
        cache.load(entry.image, entry.label, [SIZE])


def test_a_killed_writer_leaves_no_entry_that_reads_as_valid(index):
    """SIGKILL after the data is written and before the rename, then a torn file at the entry's
    own name (what a crash of the machine could leave): both are rebuilt, never read."""
    entry = index.split("train")[0]
    script = textwrap.dedent(f"""
        import os, signal
        import training.data.cache as cache_module
        def killed(descriptor):
            os.kill(os.getpid(), signal.SIGKILL)
        cache_module.os.fsync = killed
        cache_module.FrameCache({str(index.root)!r}).load({entry.image!r}, {entry.label!r}, [{SIZE!r}])
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-2000:]
    cache = FrameCache(index.root)
    leftovers = [p for p in cache.directory.rglob("*") if p.is_file()]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".") and leftovers[0].suffix == ".tmp"
    assert _entries_in(cache) == []

    expected = resize_pair(*read_pair(index.root, entry.image, entry.label), SIZE)
    path = cache.entry_path(entry.image, entry.label, SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.zeros((*SIZE, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])  # the header promises more than is there
    for _ in range(2):  # rebuilt, then read back
        image, label_ids = cache.load(entry.image, entry.label, [SIZE])[0]
        np.testing.assert_array_equal(image, expected[0])
        np.testing.assert_array_equal(label_ids, expected[1])
    assert np.load(path).shape == (*SIZE, 4)


def test_a_read_only_dataset_is_cached_in_the_users_cache(index, tmp_path, monkeypatch):
    import training.data.cache as cache_module

    writable = cache_module._writable_folder
    monkeypatch.setattr(cache_module, "_writable_folder",
                        lambda folder: not folder.is_relative_to(index.root) and writable(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = FrameCache(index.root)
    assert cache.directory == user_cache_dir(index.root)
    assert cache.directory.is_relative_to(tmp_path / "xdg" / "street-segmentation" / "training")
    entry = index.split("train")[0]
    cache.load(entry.image, entry.label, [SIZE])
    assert len(_entries_in(cache)) == 1 and not (index.root / ".cache").exists()

    monkeypatch.setattr(cache_module, "_writable_folder", lambda folder: False)
    with pytest.warns(UserWarning, match="no writable cache folder"):
        nowhere = FrameCache(index.root)
    image, _ = nowhere.load(entry.image, entry.label, [SIZE])[0]  # still works, decoding every time
    np.testing.assert_array_equal(image, resize_pair(*read_pair(index.root, entry.image, entry.label), SIZE)[0])


def test_the_runner_caches_unless_told_not_to(index, tmp_path):
    from training.fit.config import load_config
    from training.fit.runner import make_batches

    base = ["data.height=8", "data.width=16", f"data.root={index.root}"]
    train, validation = make_batches(load_config(None, base), index.root, index)
    assert train.cache is validation.cache and train.cache.directory == index.root / ".cache" / "training"
    train, _ = make_batches(load_config(None, base + [f"data.cache_dir={tmp_path / 'elsewhere'}"]), index.root, index)
    assert train.cache.directory == tmp_path / "elsewhere"
    train, validation = make_batches(load_config(None, base + ["data.cache=false"]), index.root, index)
    assert train.cache is None and validation.cache is None
