"""A report to send: runs and chosen images in one self-contained HTML file.

``build_report`` reads what the product shows elsewhere, from the same core functions, and lays it
out for a person who has neither the dashboard nor the run store:

1. when and from what store (and dataset) it was made, and which runs (name, uid);
2. the leaderboard of the runs (``training.runs.summary.run_summary``, the mIoU named as
   ``training.evaluation.variants`` names them);
3. every other run against the first (the reference): the paired bootstrap of
   ``training.evaluation.significance.compare_runs`` (B - A, its 95% interval and verdict, each mIoU
   variant pooled and per image);
4. the IoU of each class per run (pooled, metrics.json) as one bar chart per class set;
5. the chosen images: photo, ground truth (one per class set of the runs) and every run's
   prediction in the class set's colours (shrunk by a whole factor to at most ``WIDTH`` pixels
   wide: 1024 for Cityscapes' 2048x1024 frames), the analyst's tags and note of the image
   (``training.runs.tags``), and each run's IoU per class on that image alone
   (``training.evaluation.confusions.image_table`` of the run's stored per-image confusion);
6. each run's confusion matrix, row-normalised (``confusions.row_normalised``), as a heatmap.

The images: ``image_ids`` and/or those carrying ``tag``; neither: the ``DEFAULT_IMAGES`` the
first run does worst on (lowest per-image mIoU of its per_image.csv). At most ``MAX_IMAGES``.

Errors: a missing or damaged run, or one whose dataset index is not the first run's, is an
``ArtifactError`` naming it; an image id the dataset does not hold, a tag no image carries, too many
images, a ValueError that says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from training.data.dataset import Dataset
from training.data.labels import ClassSet, get_class_set
from training.evaluation.confusions import image_table, row_normalised
from training.evaluation.significance import block, compare_runs, verdict
from training.evaluation.variants import MIOU, MIOU_OFFICIAL, PER_IMAGE, POOLED, VARIANTS
from training.files import write_text_atomic
from training.raster import shrink
from training.report import html as page
from training.runs.health import inspect_run
from training.runs.layout import ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run
from training.runs.summary import coverage_text, deployed_name, run_summary
from training.runs.tags import ImageMark, TagStore, normalise_tag
from training.viz import legend_html

WIDTH = 1024  # pictures at most this wide: 2048x1024 frames are shrunk by 2
DEFAULT_IMAGES = 6
MAX_IMAGES = 48  # about 0.4 MB per image and run at 2048x1024: beyond, the file is no longer one to send
RESAMPLES, SEED = 1000, 0  # the dashboard's comparison uses the same
COLORS = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880")


@dataclass
class _Run:
    """A chosen run and what the report reads of it once."""

    run: Run
    summary: dict
    class_set: ClassSet
    positions: dict[int, int]  # image id -> row of per_image.csv and of the per-image confusions
    miou_by_id: dict[int, float]

    @property
    def name(self) -> str:
        return self.run.name


def _open_runs(run_names: Sequence[str], root) -> list[_Run]:
    names = list(dict.fromkeys(run_names))
    if not names:
        raise ValueError("a report needs at least one run")
    deployed = deployed_name(root)
    opened = []
    for name in names:
        run = get_run(name, root)
        health = inspect_run(run)
        if not health.ok:
            raise ArtifactError(f"run {name} cannot be reported: {health.reason}")
        try:
            class_set = get_class_set(run.metrics.get("classes"))
        except ValueError as error:
            raise ArtifactError(f"run {name}: metrics.json: {error}") from None
        positions, mious = {}, {}
        for row_number, row in enumerate(run.per_image()):
            try:
                image_id = int(row["id"])
            except (KeyError, TypeError, ValueError):
                continue
            positions[image_id] = row_number
            try:
                mious[image_id] = float(row.get("miou"))
            except (TypeError, ValueError):
                pass
        opened.append(_Run(run, run_summary(run, deployed), class_set, positions, mious))
    return opened


def _dataset(runs: list[_Run], data_root) -> Dataset:
    """The first run's dataset; every other run must have been scored on the same index."""
    first = runs[0]
    data = first.run.open_dataset(data_root)
    fingerprint = data.index.fingerprint()
    for other in runs[1:]:
        recorded = (other.run.metrics.get("dataset") or {}).get("fingerprint")
        if recorded and recorded != fingerprint:
            raise ArtifactError(f"run {other.name} was scored on another index of the data than run {first.name} "
                                f"(fingerprints {recorded} and {fingerprint}): the same image id names other "
                                "images; report them separately")
    return data


def _worst_images(run: _Run, count: int) -> list[int]:
    ranked = sorted((miou, image_id) for image_id, miou in run.miou_by_id.items() if math.isfinite(miou))
    return [image_id for _, image_id in ranked[:count]]


def choose_images(runs: list[_Run], data: Dataset, image_ids: Sequence[int] | None, tag: str | None,
                  marks: dict[tuple[str, str], ImageMark]) -> list[int]:
    """The ids asked for (in the order given), then those carrying ``tag`` (by id); neither: the
    first run's worst. ValueError for an id the dataset lacks, a tag no image carries, or more than
    ``MAX_IMAGES``."""
    chosen = [int(i) for i in image_ids or []]
    unknown = [i for i in chosen if i not in data.index]
    if unknown:
        raise ValueError(f"no image {', '.join(map(str, unknown))} in the dataset at {data.root} "
                         f"(ids are 0 to {data.index.next_id - 1}, some may be missing)")
    if tag is not None:
        wanted = normalise_tag(tag)
        ids = {(entry.city, entry.stem): entry.id for entry in data.index.entries}
        tagged = sorted(ids[name] for name, mark in marks.items() if wanted in mark.tags and name in ids)
        if not tagged:
            raise ValueError(f"no image of the dataset at {data.root} carries the tag {wanted!r}")
        chosen += tagged
    if image_ids is None and tag is None:
        chosen = _worst_images(runs[0], DEFAULT_IMAGES)
        if not chosen:
            raise ValueError(f"run {runs[0].name} has no per-image mIoU to find its worst images: "
                             "choose them with --images")
    chosen = list(dict.fromkeys(chosen))
    if len(chosen) > MAX_IMAGES:
        raise ValueError(f"{len(chosen)} images chosen; a report holds at most {MAX_IMAGES}: choose fewer")
    return chosen


# ---------------------------------------------------------------------------- numbers

def _number(value, digits: int = 3, sign: bool = False) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return ""
    return f"{value:{'+' if sign else ''}.{digits}f}"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


LEADERBOARD = ("run", "source", "model", "backbone", "loss", "augmentation", "size", "class set", "split",
               "images", "params", "train time", "val mIoU", MIOU.label(), MIOU_OFFICIAL.label(),
               "boundary mIoU", "iIoU", "ms / image")


def leaderboard_rows(runs: list[_Run]) -> list[list[str]]:
    """One row per run, in ``LEADERBOARD`` order, from its ``run_summary``."""
    rows = []
    for run in runs:
        s = run.summary
        size = s.get("image_size")
        rows.append([
            run.name + (" (deployed)" if s.get("deployed") else ""), s.get("source") or "", s.get("model") or "",
            s.get("backbone") or "", s.get("loss_name") or "", s.get("augmentation") or "",
            "x".join(map(str, size)) if isinstance(size, list) else "", s.get("classes") or "", s.get("split") or "",
            coverage_text(s) or "all", "" if s.get("params") is None else f"{s['params']:,}",
            _duration(s.get("train_seconds")), _number(s.get("val_miou")), _number(s.get("miou")),
            _number(s.get("miou_official")), _number(s.get("mean_boundary_iou")), _number(s.get("mean_iiou")),
            _number(s.get("inference_ms"), 1)])
    return rows


COMPARISON = ("run B", "mIoU", "A", "B", "B - A", "95% interval", "verdict", "images")
PER_CLASS = ("run B", "class", "IoU A", "IoU B", "B - A", "95% interval", "verdict")


def comparisons(runs: list[_Run], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, dict | str]:
    """Every run after the first (B) against the first (A): its ``compare_runs`` result, or why
    there is none (another class set or split, fewer than 2 shared images)."""
    results: dict[str, dict | str] = {}
    for other in runs[1:]:
        try:
            results[other.name] = compare_runs(runs[0].run, other.run, resamples, seed)
        except ValueError as error:
            results[other.name] = str(error)
    return results


def _interval(found: dict) -> str:
    low, high = found.get("ci95_low"), found.get("ci95_high")
    return "" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def comparison_rows(results: dict[str, dict | str]) -> list[list[str]]:
    """Each mIoU variant pooled and per image, per run B."""
    rows = []
    for name, result in results.items():
        if isinstance(result, str):
            rows.append([name, "", "", "", "", "", f"not compared: {result}", ""])
            continue
        for which in VARIANTS:
            if "missing" in result[which.key]:
                rows.append([name, which.label(), "", "", "", "", result[which.key]["missing"], ""])
                continue
            for averaging in (POOLED, PER_IMAGE):
                found = block(result, which.key, averaging)
                images = found.get("images") if averaging == PER_IMAGE else result["images"]
                rows.append([name, which.label(averaging), _number(found["a"]), _number(found["b"]),
                             _number(found["difference"], sign=True), _interval(found), verdict(found), str(images)])
    return rows


def per_class_rows(results: dict[str, dict | str]) -> list[list[str]]:
    """Each class's pooled IoU (all classes), B - A with its interval, per run B."""
    rows = []
    for name, result in results.items():
        if isinstance(result, str):
            continue
        for found in result[MIOU.key].get("per_class") or []:
            rows.append([name, found["name"], _number(found["a"]), _number(found["b"]),
                         _number(found["difference"], sign=True), _interval(found), verdict(found)])
    return rows


# ---------------------------------------------------------------------------- charts

def _groups(runs: list[_Run]) -> dict[str, list[_Run]]:
    groups: dict[str, list[_Run]] = {}
    for run in runs:
        groups.setdefault(run.class_set.name, []).append(run)
    return groups


def _color(runs: list[_Run], run: _Run) -> str:
    return COLORS[runs.index(run) % len(COLORS)]


def iou_chart(charts: page.Charts, runs: list[_Run], members: list[_Run]) -> str:
    """The IoU of each class per run (metrics.json, pooled over the run's split), bars grouped by class."""
    names = list(members[0].class_set.names)
    data = []
    for run in members:
        iou = run.run.metrics.get("iou") or {}
        values = [iou.get(name) if isinstance(iou.get(name), (int, float)) else None for name in names]
        data.append({"type": "bar", "name": run.name, "x": names, "y": values, "marker": {"color": _color(runs, run)},
                     "text": [_number(v, 2) for v in values], "textposition": "outside",
                     "hovertemplate": f"{page.escape(run.name)}<br>%{{x}}: %{{y:.3f}}<extra></extra>"})
    layout = {"barmode": "group", "margin": {"l": 50, "r": 10, "t": 10, "b": 10},
              "yaxis": {"title": {"text": "IoU"}, "range": [0, 1.08]}, "legend": {"orientation": "h", "y": -0.15}}
    return charts.add(data, layout, 400)


def confusion_chart(charts: page.Charts, run: _Run) -> str:
    """The run's confusion matrix, each row divided by its sum (the share of a true class's pixels
    predicted as each class)."""
    matrix = run.run.confusion()
    names = list(run.class_set.eval_names)[:len(matrix)]
    shares = row_normalised(matrix)
    data = [{"type": "heatmap", "z": np.round(shares, 4).tolist(), "x": names, "y": names, "colorscale": "Blues",
             "zmin": 0, "zmax": 1, "text": [[f"{v:.2f}" for v in row] for row in shares],
             "texttemplate": "%{text}", "showscale": False,
             "hovertemplate": "true: %{y}<br>predicted: %{x}<br>share of the row: %{z:.3f}<extra></extra>"}]
    layout = {"margin": {"l": 10, "r": 10, "t": 10, "b": 10},
              "xaxis": {"title": {"text": "predicted"}, "automargin": True},
              "yaxis": {"title": {"text": "true"}, "autorange": "reversed", "automargin": True}}
    return charts.add(data, layout, 160 + 34 * len(names))


# ---------------------------------------------------------------------------- images

@dataclass
class _Picture:
    """One image's pictures and numbers, made in a worker thread."""

    image_id: int
    photo: str
    truths: dict[str, str]  # class set -> data URI
    predictions: dict[str, str | None]  # run -> data URI (None: the run has no prediction of it)
    tables: dict[str, dict]  # class set -> image_table of the runs that predicted it
    size: tuple[int, int]


def _factor(width: int) -> int:
    return max(1, -(-width // WIDTH))


def draw_image(image_id: int, runs: list[_Run], data: Dataset) -> _Picture:
    photo, label_ids = data.read(image_id)
    factor = _factor(photo.shape[1])
    truths, tables, predictions = {}, {}, {}
    for classes, members in _groups(runs).items():
        class_set = members[0].class_set
        truth = class_set.lut[label_ids]
        truths[classes] = page.png_uri(shrink(truth, factor, "centre"), class_set.palette())
        confusions = {}
        for run in members:
            row = run.positions.get(image_id)
            if row is None:
                predictions[run.name] = None
                continue
            predicted = run.run.prediction(image_id)
            predictions[run.name] = page.png_uri(shrink(predicted, _factor(predicted.shape[1]), "centre"),
                                                 class_set.palette())
            confusions[run.name] = np.asarray(run.run.per_image_confusion(mmap=True)[row])
        if confusions:
            tables[classes] = image_table(confusions, class_set.num_classes)
    return _Picture(image_id, page.jpeg_uri(shrink(photo, factor, "mean")), truths, predictions, tables,
                    (photo.shape[1], photo.shape[0]))


def _mark_html(mark: ImageMark | None, problem: str | None) -> str:
    if problem:
        return f'<p class="note-small">Tags and notes cannot be read: {page.escape(problem)}</p>'
    if mark is None or (not mark.tags and not mark.note):
        return '<p class="note-small">No tag or note.</p>'
    tags = "".join(f'<span class="tag">{page.escape(tag)}</span>' for tag in mark.tags)
    note = f'<div class="note">{page.escape(mark.note)}</div>' if mark.note else ""
    return (f'<div class="marks">{tags or ""}{note}<span class="note-small">last changed '
            f"{page.escape(mark.updated)}</span></div>")


def image_html(picture: _Picture, runs: list[_Run], data: Dataset, mark: ImageMark | None,
               problem: str | None) -> str:
    entry = data.index[picture.image_id]
    groups = _groups(runs)
    several = len(groups) > 1
    figures = [page.figure_html(picture.photo, f"photo {picture.size[0]}x{picture.size[1]}")]
    for classes in groups:
        figures.append(page.figure_html(picture.truths[classes], "ground truth" + (f" ({classes})" if several else ""),
                                        mask=True))
    for run in runs:
        uri = picture.predictions.get(run.name)
        caption = run.name
        if run.name in picture.predictions and uri is not None:
            table = picture.tables.get(run.class_set.name) or {}
            caption += f" (image mIoU {_number((table.get('miou') or {}).get(run.name))})"
            figures.append(page.figure_html(uri, caption, mask=True))
        else:
            figures.append(page.missing_html(caption, f"run {run.name} did not evaluate this image"))
    tables = []
    for classes, members in groups.items():
        found = picture.tables.get(classes)
        scored = [run for run in members if found and run.name in found["iou"]]
        if not scored:
            continue
        headers = ["class", "share of image (truth)", *(run.name for run in scored)]
        rows = [[name, f"{100 * share:.1f}%", *(_number(found["iou"][run.name][k]) for run in scored)]
                for k, (name, share) in enumerate(zip(members[0].class_set.names, found["shares"]))]
        rows.append([f"image mIoU ({MIOU.classes})", "", *(_number(found["miou"][run.name]) for run in scored)])
        title = f"<p><b>{page.escape(classes)}</b></p>" if several else ""
        tables.append(title + page.table_html(headers, rows))
    return (f'<section class="image" id="image-{picture.image_id}"><h3>Image {picture.image_id}</h3>'
            f'<p class="meta">{page.escape(entry.split)} · {page.escape(entry.city)} · {page.escape(entry.stem)}</p>'
            f"{_mark_html(mark, problem)}"
            f'<div class="pictures">{"".join(figures)}</div>'
            f"<p class=\"note-small\">IoU of this image alone, per run (empty: the class is neither in the "
            f"ground truth nor predicted).</p>{''.join(tables)}</section>")


# ---------------------------------------------------------------------------- the report

def _how_chosen(runs: list[_Run], chosen: list[int], image_ids, tag: str | None) -> str:
    if tag is not None:
        return f"those tagged {normalise_tag(tag)!r}" + (" and those asked for" if image_ids else "")
    if image_ids is not None:
        return "those asked for"
    return f"the {len(chosen)} {runs[0].name} does worst on (lowest per-image mIoU)"


def _marks(root) -> tuple[dict[tuple[str, str], ImageMark], str | None]:
    try:
        return TagStore(root).marks(), None
    except ArtifactError as error:
        return {}, str(error)


def build_report(run_names: Sequence[str], image_ids: Sequence[int] | None = None, tag: str | None = None,
                 root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None, *,
                 now: datetime | None = None, resamples: int = RESAMPLES, seed: int = SEED,
                 workers: int | None = None) -> str:
    """The report of ``run_names`` (the first is the reference) on the chosen images, as one HTML
    page (module docstring). ``root``: the run store (default: ``$ARTIFACTS_DIR``, else
    artifacts/); ``data_root``: the dataset when it moved (default: the first run's own).

    Raises:
        ArtifactError: a run is missing or damaged, or was scored on another index of the data.
        DatasetError: the dataset or an image of it cannot be read.
        ValueError: no run, an unknown image id, a tag no image carries, too many images.
    """
    store = artifacts_dir(root)
    runs = _open_runs(run_names, root)
    data = _dataset(runs, data_root)
    marks, tags_problem = _marks(root)
    if tag is not None and tags_problem:
        raise ArtifactError(tags_problem)
    chosen = choose_images(runs, data, image_ids, tag, marks)
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        pictures = list(pool.map(lambda image_id: draw_image(image_id, runs, data), chosen))

    made = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    names = [run.name for run in runs]
    charts = page.Charts()
    how = _how_chosen(runs, chosen, image_ids, tag)
    parts = [
        f"<h1>Segmentation report: {page.escape(', '.join(names))}</h1>",
        f'<p class="meta">Made {made.strftime("%Y-%m-%d %H:%M:%S")} UTC from the run store '
        # folder names only: the file is sent to people who have no business with the server's paths
        f"<code>{page.escape(Path(store).resolve().name)}</code>, dataset "
        f"<code>{page.escape(Path(data.root).resolve().name)}</code> "
        f"({page.escape(data.index.fingerprint())}). Images: {page.escape(how)}.</p>",
        page.table_html(["run", "uid", "created"],
                        [[run.name, run.run.uid, run.summary.get("created") or ""] for run in runs], 3),
        '<p class="meta">Sections: <a href="#leaderboard">leaderboard</a> · <a href="#comparison">against the '
        'reference</a> · <a href="#per-class">IoU per class</a> · <a href="#images">images</a> · '
        '<a href="#confusion">confusion matrices</a></p>',
        '<h2 id="leaderboard">Leaderboard</h2>',
        page.table_html(LEADERBOARD, leaderboard_rows(runs)),
        f'<p class="note-small">{page.escape(MIOU.label())}: {page.escape(MIOU.description)}; '
        f"{page.escape(MIOU_OFFICIAL.label())}: {page.escape(MIOU_OFFICIAL.description)}. Pooled over each run's "
        "evaluation split; images: the share of the split a run scored.</p>",
        '<h2 id="comparison">Against the reference</h2>',
    ]
    if len(runs) > 1:
        results = comparisons(runs, resamples, seed)
        parts += [f"<p>A = <b>{page.escape(runs[0].name)}</b> (the first run), B = each other run: a paired "
                  f"bootstrap over the images both evaluated ({resamples} resamples, seed {seed}); "
                  "not significant where the 95% interval holds 0.</p>",
                  page.table_html(COMPARISON, comparison_rows(results), 2)]
        per_class = per_class_rows(results)
        if per_class:
            parts += [f"<p>Per class ({page.escape(MIOU.classes)}; the IoU pooled over the images both evaluated):</p>",
                      page.table_html(PER_CLASS, per_class, 2)]
    else:
        parts.append('<p class="note-small">One run: nothing to compare it with.</p>')
    parts.append('<h2 id="per-class">IoU per class</h2>')
    for classes, members in _groups(runs).items():
        parts += [f"<h3>{page.escape(classes)}</h3>", iou_chart(charts, runs, members),
                  legend_html(members[0].class_set.names, members[0].class_set.colors)]
    parts.append(f'<h2 id="images">Images ({len(pictures)})</h2>')
    parts += [legend_html(members[0].class_set.names, members[0].class_set.colors)
              for members in _groups(runs).values()]
    for picture in pictures:
        entry = data.index[picture.image_id]
        parts.append(image_html(picture, runs, data, marks.get((entry.city, entry.stem)), tags_problem))
    parts.append('<h2 id="confusion">Confusion matrices (each row: the share of a true class\'s pixels)</h2>')
    for run in runs:
        parts += [f"<h3>{page.escape(run.name)}</h3>", confusion_chart(charts, run)]
    return page.page(f"Segmentation report: {', '.join(names)}", "\n".join(parts), charts)


def write_report(path: str | os.PathLike, run_names: Sequence[str], image_ids: Sequence[int] | None = None,
                 tag: str | None = None, root: str | os.PathLike | None = None,
                 data_root: str | os.PathLike | None = None, **options) -> Path:
    """``build_report`` written to ``path`` atomically (a reader never sees half a file)."""
    return write_text_atomic(path, build_report(run_names, image_ids, tag, root, data_root, **options))
