"""Results kept in the run store for the next process (``training.runs.derived``): written
atomically, read back, and anything that cannot be read counts as missing."""

from __future__ import annotations

import json

import numpy as np

from training.runs.derived import CACHE, VERSION, cache_key, derived_path, read_derived, write_derived


def test_a_result_is_kept_under_its_key_and_read_back(tmp_path):
    key = cache_key(("uid-a", "uid-b"), "categories8", "fingerprint", ((0, "gtFine/a.png"),), 50)
    assert read_derived(tmp_path, "scans", key) is None
    assert write_derived(tmp_path, "scans", key, {"rows": [{"pixels": np.int64(3), "runs": np.arange(3)}]})
    assert derived_path(tmp_path, "scans", key) == tmp_path / CACHE / "scans" / f"{key}.json"
    assert read_derived(tmp_path, "scans", key) == {"rows": [{"pixels": 3, "runs": [0, 1, 2]}]}
    assert not list((tmp_path / CACHE / "scans").glob("*.tmp*"))  # nothing half written left beside it


def test_the_key_is_what_decides_the_result():
    assert cache_key(("a",), 1) == cache_key(("a",), 1)
    assert len({cache_key(("a",), 1), cache_key(("b",), 1), cache_key(("a",), 2), cache_key(("a", "b"), 1)}) == 4


def test_what_cannot_be_read_is_missing(tmp_path):
    key = cache_key("x")
    path = derived_path(tmp_path, "scans", key)
    path.parent.mkdir(parents=True)
    for text in ("", "{", "[]", "\xff\xfe", json.dumps({"version": VERSION + 1, "key": key, "result": 1}),
                 json.dumps({"version": VERSION, "key": cache_key("y"), "result": 1})):  # another file's, copied here
        path.write_text(text, encoding="latin-1")
        assert read_derived(tmp_path, "scans", key) is None, text
    assert write_derived(tmp_path, "scans", key, [1, 2])  # replaced
    assert read_derived(tmp_path, "scans", key) == [1, 2]


def test_a_store_that_cannot_be_written_is_not_cached(tmp_path):
    (tmp_path / CACHE).write_text("a file where the folder would be")
    assert write_derived(tmp_path, "scans", cache_key("x"), 1) is False
    assert read_derived(tmp_path, "scans", cache_key("x")) is None


def test_a_kind_keeps_its_most_recent_results(tmp_path):
    import os

    for number in range(5):
        assert write_derived(tmp_path, "scans", cache_key(number), number, keep=3)
        os.utime(derived_path(tmp_path, "scans", cache_key(number)), ns=(number * 10**9, number * 10**9))
    assert write_derived(tmp_path, "scans", cache_key(5), 5, keep=3)  # the newest: the others are older
    assert [read_derived(tmp_path, "scans", cache_key(n)) for n in range(6)] == [None, None, None, 3, 4, 5]
    assert write_derived(tmp_path, "other", cache_key(0), 0, keep=3)  # another kind is counted apart
    assert read_derived(tmp_path, "scans", cache_key(5)) == 5
