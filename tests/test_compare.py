"""``python -m training compare A B``: the paired bootstrap of two published runs.

Runs are written to disk with ``RunWriter`` as an import would publish them (no model, no
TensorFlow). The bootstrap is checked against hand-computed values and against a slow loop over
the resamples written here, drawn from the same documented stream of image indices, for both mIoU
variants (all classes, official) and both averagings (pooled, per image).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.cli import main
from training.data.labels import get_class_set
from training.evaluation.metrics import iou_per_class, mean_iou
from training.evaluation.significance import block, compare_runs, format_comparison, paired_bootstrap, verdict
from training.runs.health import inspect_run
from training.runs.reader import get_run
from training.runs.writer import RunWriter

REPO = Path(__file__).resolve().parent.parent


def _publish(root: Path, name: str, confusions: np.ndarray, ids=None, classes: str = "categories8",
             split: str = "test", fingerprint: str = "f00d", official: np.ndarray | None = None) -> str:
    """A whole imported run holding ``confusions`` (N x E x E) for the images ``ids``, and
    ``official`` as its per-image confusions under the official rules (None: a run stored before
    them, without the file)."""
    class_set = get_class_set(classes)
    ids = list(range(len(confusions))) if ids is None else list(ids)
    total = confusions.sum(axis=0)
    iou = iou_per_class(total)[: class_set.num_classes]
    metrics = {"run": name, "source": "imported", "classes": classes, "split": split,
               "class_names": list(class_set.names), "miou": mean_iou(iou),
               "iou": dict(zip(class_set.names, iou.tolist())),
               "coverage": {"images": len(ids), "split_images": 10}, "dataset": {"fingerprint": fingerprint}}
    writer = RunWriter(name, root)
    if official is not None:
        official_iou = iou_per_class(official.sum(axis=0))[: class_set.num_classes]
        metrics["miou_official"] = mean_iou(official_iou, class_set.scored)
        writer.write_array("per_image_official_confusion.npy", official.astype(np.int64))
    writer.write_text("config.yaml", f"name: {name}\nsource: imported\ndata: {{classes: {classes}}}\n")
    writer.write_csv("history.csv", [{"epoch": 1}])
    writer.write_json("metrics.json", metrics)
    writer.write_array("confusion.npy", total)
    writer.write_csv("per_image.csv", [{"id": image_id, "miou": mean_iou(iou_per_class(c)[: class_set.num_classes])}
                                       for image_id, c in zip(ids, confusions)])
    writer.write_array("per_image_confusion.npy", confusions.astype(np.int64))
    run = get_run(writer.commit().name, root)
    assert inspect_run(run).ok, inspect_run(run).reason
    return run.name


def _random_confusions(rng, images: int, size: int, correct: int = 50) -> np.ndarray:
    """Per-image counts with a heavy diagonal and some classes absent from some images."""
    confusions = rng.integers(0, 6, size=(images, size, size))
    confusions[:, np.arange(size), np.arange(size)] += rng.integers(0, correct, size=(images, size))
    absent = rng.random((images, size)) < 0.3
    confusions[absent] = 0  # the class is absent from that image's ground truth
    return confusions.astype(np.int64)


def _embedded(small: np.ndarray, size: int = 8) -> np.ndarray:
    """2 x 2 matrices as classes 0 and 1 of ``size`` x ``size`` ones (the other classes absent)."""
    full = np.zeros((len(small), size, size), dtype=np.int64)
    full[:, :2, :2] = small
    return full


# Hand-computable: A confuses 2 pixels of class 0 in image 0, B is perfect on both images.
HAND_A = np.array([[[8, 2], [0, 10]], [[10, 0], [0, 10]]])
HAND_B = np.array([[[10, 0], [0, 10]], [[10, 0], [0, 10]]])


def test_identical_runs_give_a_zero_width_interval_at_zero(tmp_path):
    confusions = _random_confusions(np.random.default_rng(1), 12, 8)
    a, b = _publish(tmp_path, "a", confusions), _publish(tmp_path, "b", confusions)
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=300, seed=4)
    for summary in (block(result), block(result, averaging="per-image")):
        assert summary["difference"] == summary["ci95_low"] == summary["ci95_high"] == 0
        assert not summary["significant"] and summary["b_wins"] == 0 and summary["ties"] == 1
        assert verdict(summary) == "not significant (the interval holds 0)"
    # The pooled mIoU is the runs' own metric: mean_iou of confusion.npy.
    published = get_run(a, tmp_path).metrics["miou"]
    assert block(result)["a"] == pytest.approx(published, abs=1e-12) and result["run_a"]["miou"] == published
    assert result["images"] == 12 and result["resamples"] == 300 and result["seed"] == 4
    assert result["miou"]["label"] == "mIoU (all classes)"


def test_a_clearly_better_run_wins_every_resample(tmp_path):
    rng = np.random.default_rng(2)
    confusions = _random_confusions(rng, 20, 8, correct=10)
    better = confusions.copy()
    better[:, np.arange(8), np.arange(8)] += 500 * (confusions.sum(axis=2) > 0)  # far more correct pixels
    a, b = _publish(tmp_path, "a", confusions), _publish(tmp_path, "b", better)
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=500)
    pooled = block(result)
    assert pooled["ci95_low"] > 0 and pooled["b_wins"] == 1.0 and pooled["significant"]
    per_image = block(result, averaging="per-image")
    assert per_image["ci95_low"] > 0 and per_image["b_wins"] == 1.0
    assert verdict(pooled) == "B better than A"
    # Swapped, everything mirrors (images in id order, the same resamples).
    swapped = block(compare_runs(get_run(b, tmp_path), get_run(a, tmp_path), resamples=500))
    assert swapped["ci95_high"] == pytest.approx(-pooled["ci95_low"]) and swapped["b_wins"] == 0.0
    assert verdict(swapped) == "B worse than A"


def test_hand_computed_pooled_and_per_image_differences(tmp_path):
    a, b = _publish(tmp_path, "a", _embedded(HAND_A)), _publish(tmp_path, "b", _embedded(HAND_B))
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=2000, seed=3)
    pooled = block(result)
    # Pooled A: [[18, 2], [0, 20]] -> IoU 18/20 and 20/22; B: 1 and 1.
    assert pooled["a"] == pytest.approx((0.9 + 10 / 11) / 2)
    assert pooled["b"] == 1.0 and pooled["difference"] == pytest.approx(21 / 220)
    # Resamples: {0, 0} (p = 1/4) gives 1 - (16/20 + 20/24) / 2 = 11/60, {0, 1} 21/220, {1, 1} 0.
    assert pooled["ci95_low"] == 0 and pooled["ci95_high"] == pytest.approx(11 / 60)
    assert pooled["b_wins"] == pytest.approx(0.75, abs=0.04) and pooled["ties"] == pytest.approx(0.25, abs=0.04)
    assert not pooled["significant"]
    # Per image: A's mIoUs are 49/60 and 1, so the difference of the means is 11/120 (not 21/220).
    per_image = block(result, averaging="per-image")
    assert per_image["difference"] == pytest.approx(11 / 120) and per_image["images"] == 2
    assert per_image["ci95_high"] == pytest.approx(11 / 60) and per_image["ci95_low"] == 0
    # Per class: class 0 goes from 0.9 to 1; classes 2..7 never appear, so they have no numbers.
    void = result["miou"]["per_class"][0]
    assert void["name"] == "void" and void["difference"] == pytest.approx(0.1)
    assert void["resamples_used"] == 2000 and void["ci95_high"] == pytest.approx(0.2)
    for row in result["miou"]["per_class"][2:]:
        assert row["a"] is row["difference"] is row["ci95_low"] is row["b_wins"] is None
        assert row["resamples_used"] == 0 and not row["significant"]


def test_hand_computed_official_interval_leaves_void_out(tmp_path):
    # The official rules drop void from the mean (categories8): only class 1 (flat) counts. Its
    # per-image matrices differ from the all-classes ones (void ground truth is not counted there).
    official_a = _embedded(np.array([[[0, 0], [0, 10]], [[0, 0], [2, 8]]]))
    official_b = _embedded(np.array([[[0, 0], [0, 10]], [[0, 0], [0, 10]]]))
    a = _publish(tmp_path, "a", _embedded(HAND_A), official=official_a)
    b = _publish(tmp_path, "b", _embedded(HAND_B), official=official_b)
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=2000, seed=3)
    official = block(result, "miou_official")
    # A's flat: 18 of 20 right, the 2 others predicted void: IoU 18/20; B 1.
    assert official["a"] == pytest.approx(0.9) == result["run_a"]["miou_official"] and official["b"] == 1.0
    assert official["difference"] == pytest.approx(0.1)
    # Resamples: {1, 1} (p = 1/4) gives 1 - 16/20 = 0.2, {0, 1} 0.1, {0, 0} 0.
    assert official["ci95_low"] == 0 and official["ci95_high"] == pytest.approx(0.2)
    assert [row["name"] for row in result["miou_official"]["per_class"]] == list(
        get_class_set("categories8").names[1:])  # void is not scored
    per_image = block(result, "miou_official", "per-image")
    assert per_image["a"] == pytest.approx((1 + 0.8) / 2) and per_image["difference"] == pytest.approx(0.1)
    assert result["miou_official"]["label"] == "mIoU (official)"


def test_a_run_stored_before_official_confusions_says_what_is_missing(tmp_path):
    rng = np.random.default_rng(13)
    confusions = _random_confusions(rng, 6, 8)
    a = _publish(tmp_path, "old", confusions)  # no per_image_official_confusion.npy
    b = _publish(tmp_path, "new", confusions, official=confusions)
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=100)
    assert block(result, "miou_official") is None and block(result)["difference"] == 0
    assert result["miou_official"]["missing"].startswith("old was evaluated before per-image confusions under the "
                                                         "official rules were stored")
    assert "python -m training rescore RUN" in format_comparison(result)


def test_cityscapes19_official_confusions_are_the_all_classes_ones(tmp_path):
    rng = np.random.default_rng(14)
    a = _publish(tmp_path, "a", _random_confusions(rng, 5, 20), classes="cityscapes19")
    b = _publish(tmp_path, "b", _random_confusions(rng, 5, 20), classes="cityscapes19")
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=100)
    assert {k: v for k, v in result["miou_official"].items() if k != "label"} == {
        k: v for k, v in result["miou"].items() if k != "label"}


def test_an_image_without_scored_pixels_counts_in_no_per_image_mean():
    # A third image whose ground truth is all ignored: no mIoU of its own, no pixel in the pooled counts.
    empty = np.zeros((1, 2, 2), dtype=np.int64)
    result = paired_bootstrap(np.concatenate([HAND_A, empty]), np.concatenate([HAND_B, empty]), resamples=500)
    assert result["images"] == 3 and result["per_image"]["images"] == 2
    assert result["difference"] == pytest.approx(21 / 220)
    assert result["per_image"]["a"] == pytest.approx((49 / 60 + 1) / 2)
    assert result["per_image"]["difference"] == pytest.approx(11 / 120)
    assert result["per_image"]["ci95_high"] == pytest.approx(11 / 60)
    # A resample drawing only the empty image has no mIoU in either mode: left out of the intervals.
    draws = np.random.default_rng(0).integers(0, 3, size=(500, 3))
    drew_pixels = int((draws != 2).any(axis=1).sum())
    assert drew_pixels < 500 and result["resamples_used"] == result["per_image"]["resamples_used"] == drew_pixels


def _slow_reference(a, b, resamples, seed, classes):
    """One resample at a time, with the metrics module: the differences of pooled mIoU, of the mean
    per-image mIoU, and of each class's IoU (the mean over ``classes``)."""
    indices = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    pooled, per_image, per_class = [], [], []
    for draw in indices:
        iou_a, iou_b = iou_per_class(a[draw].sum(axis=0))[classes], iou_per_class(b[draw].sum(axis=0))[classes]
        pooled.append(mean_iou(iou_b) - mean_iou(iou_a))
        per_image.append(np.mean([mean_iou(iou_per_class(b[i])[classes]) - mean_iou(iou_per_class(a[i])[classes])
                                  for i in draw]))
        per_class.append(iou_b - iou_a)
    return np.array(pooled), np.array(per_image), np.array(per_class)


@pytest.mark.parametrize("classes", [[0, 1, 2, 3, 4], [1, 2, 3, 4]], ids=["all", "without class 0"])
def test_the_vectorised_bootstrap_equals_a_slow_loop(classes):
    rng = np.random.default_rng(5)
    a, b = _random_confusions(rng, 7, 6), _random_confusions(rng, 7, 6)
    a[2:, 4, :] = b[2:, 4, :] = 0  # class 4 only in the truth of images 0 and 1 ...
    a[:2, 4, 4] = b[:2, 4, 4] = 30
    a[:, :, 4] = 0  # ... and A never predicts it: A has no IoU in resamples without images 0 and 1
    a[:, 3, :] = b[:, 3, :] = 0
    a[:, :, 3] = 0  # class 3 never in the truth: B's predictions of it give IoU 0, A has none
    # Column 5 is a sink (E = 6, K = 5): its pixels are misses of the true class, never a class.
    result = paired_bootstrap(a, b, classes, resamples=120, seed=11)
    pooled, per_image, per_class = _slow_reference(a, b, 120, 11, classes)
    assert [result["ci95_low"], result["ci95_high"]] == pytest.approx(np.percentile(pooled, [2.5, 97.5]), abs=1e-12)
    assert result["b_wins"] == pytest.approx(np.mean(pooled > 0))
    assert [result["per_image"]["ci95_low"], result["per_image"]["ci95_high"]] == pytest.approx(
        np.percentile(per_image, [2.5, 97.5]), abs=1e-12)
    assert [row["class"] for row in result["per_class"]] == classes
    for c, row in enumerate(result["per_class"]):
        defined = per_class[:, c][np.isfinite(per_class[:, c])]
        assert row["resamples_used"] == defined.size
        if defined.size:
            assert [row["ci95_low"], row["ci95_high"]] == pytest.approx(np.percentile(defined, [2.5, 97.5]), abs=1e-12)
            assert row["b_wins"] == pytest.approx(np.mean(defined > 0))
    by_class = {row["class"]: row for row in result["per_class"]}
    assert by_class[3]["resamples_used"] == 0 and by_class[3]["b"] == 0.0
    assert 0 < by_class[4]["resamples_used"] < 120  # only resamples holding class 4 in the truth
    # A loop that drew other images would disagree: the check can fail.
    shifted, _, _ = _slow_reference(a, b, 120, 12, classes)
    assert not np.allclose(np.percentile(shifted, [2.5, 97.5]), [result["ci95_low"], result["ci95_high"]])


def test_runs_on_different_images_are_compared_on_the_shared_ones(tmp_path):
    rng = np.random.default_rng(6)
    images = _random_confusions(rng, 8, 8)  # the ground truth of ids 0..7 is the same for both runs
    other = _random_confusions(rng, 8, 8)
    order_b = [7, 2, 5, 3, 6, 4]  # B lacks ids 0 and 1, in another order
    a = _publish(tmp_path, "a", images[:6], ids=range(6), official=images[:6])
    b = _publish(tmp_path, "b", other[order_b], ids=order_b, official=other[order_b])
    result = compare_runs(get_run(a, tmp_path), get_run(b, tmp_path), resamples=200, seed=1)
    assert result["images"] == 4 and result["run_a"]["images"] == 6 and result["run_b"]["images"] == 6
    for key, classes in (("miou", list(range(8))), ("miou_official", list(range(1, 8)))):
        expected = paired_bootstrap(images[2:6], other[2:6], classes, resamples=200, seed=1)
        for field in ("a", "b", "ci95_low", "ci95_high", "b_wins", "per_image", "per_class"):
            assert result[key][field] == expected[field] if field != "per_class" else [
                {k: v for k, v in row.items() if k != "name"} for row in result[key][field]] == expected[field]
    report = format_comparison(result)
    assert "compared on the 4 images both runs evaluated (A evaluated 6, B 6" in report


def test_runs_that_cannot_be_compared_are_refused_with_both_names(tmp_path):
    rng = np.random.default_rng(7)
    a = _publish(tmp_path, "eight", _random_confusions(rng, 4, 8))
    nineteen = _publish(tmp_path, "nineteen", _random_confusions(rng, 4, 20), classes="cityscapes19")
    validation = _publish(tmp_path, "validation", _random_confusions(rng, 4, 8), split="validation")
    rebuilt = _publish(tmp_path, "rebuilt", _random_confusions(rng, 4, 8), fingerprint="beef")
    elsewhere = _publish(tmp_path, "elsewhere", _random_confusions(rng, 4, 8), ids=[3, 10, 11, 12])
    cases = {nineteen: "runs eight and nineteen predict different class sets (categories8 and cityscapes19)",
             validation: "runs eight and validation were scored on different splits (test and validation)",
             rebuilt: "different dataset indexes (fingerprints f00d and beef)",
             elsewhere: "runs eight and elsewhere share 1 image(s) (A evaluated 4, B 4)"}
    for other, message in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            compare_runs(get_run(a, tmp_path), get_run(other, tmp_path), resamples=10)


def test_cityscapes19_runs_use_their_sink_as_misses_only(tmp_path):
    """The sink column (a prediction of no class of the 19) makes misses of the true class and has
    no IoU of its own: A predicts 4 of road's 10 pixels per image as no class, B none."""
    a, b = np.zeros((2, 20, 20), dtype=np.int64), np.zeros((2, 20, 20), dtype=np.int64)
    a[:, 0, 0], a[:, 0, 19], a[:, 13, 13] = 6, 4, 5  # road: 6 right, 4 no class; car: 5 right
    b[:, 0, 0], b[:, 13, 13] = 10, 5
    run_a = _publish(tmp_path, "a", a, classes="cityscapes19", official=a)
    run_b = _publish(tmp_path, "b", b, classes="cityscapes19", official=b)
    result = compare_runs(get_run(run_a, tmp_path), get_run(run_b, tmp_path), resamples=100)
    rows = result["miou"]["per_class"]
    assert len(rows) == 19 and rows[-1]["name"] == "bicycle"  # no row for the sink
    road, car = rows[0], rows[13]
    assert (road["a"], road["b"], road["difference"]) == pytest.approx((0.6, 1.0, 0.4))  # 12 / 20 against 20 / 20
    assert car["a"] == car["b"] == 1.0 and rows[5]["a"] is None  # pole: absent, no IoU
    assert block(result)["a"] == pytest.approx((0.6 + 1.0) / 2) and block(result)["b"] == 1.0
    assert block(result)["b"] == pytest.approx(get_run(run_b, tmp_path).metrics["miou"], abs=1e-12)


def test_the_per_image_file_is_read_memory_mapped(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    a, b = (get_run(_publish(tmp_path, name, _random_confusions(rng, 6, 8)), tmp_path) for name in "ab")
    asked = []
    for run in (a, b):
        def spy(mmap=False, read=run.per_image_confusion):
            asked.append(mmap)
            return read(mmap)
        monkeypatch.setattr(run, "per_image_confusion", spy)
    result = compare_runs(a, b, resamples=100)
    assert asked == [True, True] and result["images"] == 6


def test_bad_arguments_are_refused():
    a = np.ones((3, 4, 4), dtype=np.int64)
    for call, message in ((lambda: paired_bootstrap(a, a[:2]), "one shape"),
                          (lambda: paired_bootstrap(a[:1], a[:1]), "at least 2 images"),
                          (lambda: paired_bootstrap(a, a, resamples=0), "resamples"),
                          (lambda: paired_bootstrap(a, a, resamples=99), "fewer than 100 cannot give"),
                          (lambda: paired_bootstrap(a, a, [0, 4]), "classes must be indices")):
        with pytest.raises(ValueError, match=message):
            call()


def test_cli_compare_prints_the_report_and_writes_json(tmp_path):
    a = _publish(tmp_path, "a", _embedded(HAND_A))
    b = _publish(tmp_path, "b", _embedded(HAND_B))
    out = tmp_path / "out" / "compare.json"
    done = subprocess.run([sys.executable, "-m", "training", "compare", a, b, "--artifacts", str(tmp_path),
                           "--resamples", "400", "--seed", "2", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "A = a, B = b: categories8, test split" in done.stdout
    assert "2 images, evaluated by both runs" in done.stdout
    assert "B - A +0.0955  95% interval [+0.0000, +0.1833]" in done.stdout
    assert "not significant (the interval holds 0)" in done.stdout
    assert [line.split()[-1] for line in done.stdout.splitlines() if line.startswith(("construction", "object"))] == [
        "n/a", "n/a"]  # classes no image holds: no numbers
    saved = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert saved["resamples"] == 400 and saved["seed"] == 2 and saved["run_b"]["name"] == "b"
    pooled = saved["miou"]
    assert pooled["per_class"][0]["name"] == "void" and pooled["per_class"][5]["a"] is None
    assert f"B wins in {pooled['b_wins']:.1%} of resamples, ties in {pooled['ties']:.1%}" in done.stdout
    assert 0.7 < pooled["b_wins"] < 0.8 and pooled["ci95_high"] == pytest.approx(11 / 60)
    assert "per-image confusions under the official rules" in saved["miou_official"]["missing"]


def test_cli_compare_json_has_both_pooled_differences_with_intervals(tmp_path):
    rng = np.random.default_rng(15)
    stacks = [_random_confusions(rng, 10, 8) for _ in range(4)]
    a = _publish(tmp_path, "a", stacks[0], official=stacks[1])
    b = _publish(tmp_path, "b", stacks[2], official=stacks[3])
    out = tmp_path / "compare.json"
    assert main(["compare", a, b, "--artifacts", str(tmp_path), "--resamples", "300", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    for key, classes in (("miou", list(range(8))), ("miou_official", list(range(1, 8)))):
        expected = paired_bootstrap(stacks[0 if key == "miou" else 1], stacks[2 if key == "miou" else 3], classes,
                                    resamples=300)
        assert saved[key]["difference"] == pytest.approx(expected["difference"])
        assert [saved[key]["ci95_low"], saved[key]["ci95_high"]] == pytest.approx(
            [expected["ci95_low"], expected["ci95_high"]])
    assert saved["miou_official"]["a"] == pytest.approx(get_run(a, tmp_path).metrics["miou_official"])


def test_cli_compare_errors_are_one_line(tmp_path, capsys):
    rng = np.random.default_rng(10)
    a = _publish(tmp_path, "a", _random_confusions(rng, 3, 8))
    b = _publish(tmp_path, "b", _random_confusions(rng, 3, 20), classes="cityscapes19")
    assert main(["compare", a, b, "--artifacts", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "predict different class sets" in error
    assert main(["compare", a, "missing", "--artifacts", str(tmp_path)]) == 2
    assert "no run named 'missing'" in capsys.readouterr().err
