"""Run B against run A: is the difference real, the two ways to average mIoU, and where B gets
worse pixel by pixel. Plain functions of tables and dicts (no Streamlit), like ``dashboard.analysis``.

Intervals come from ``training.evaluation.significance.compare_runs``: a paired bootstrap over the
images both runs evaluated (1000 resamples, seed 0), B - A with its 95% interval; "not
significant" when the interval holds 0. It reports both ways to average mIoU:

- pooled: one confusion matrix over all pixels (metrics.json's ``miou``, the official way);
- per-image: each image's mIoU averaged (per_image.csv's ``miou``), every image weighing the same.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.evaluation.metrics import OUTCOME_NAMES
from training.evaluation.significance import verdict
from training.viz import OUTCOME_COLORS

POOLED, PER_IMAGE = "pooled", "per-image"
MIOU_MODES = {POOLED: "pooled over the dataset (official)", PER_IMAGE: "mean of per-image mIoU"}
MIOU_EXPLANATION = ("pooled: one confusion matrix over all pixels, big images and frequent classes weigh more; "
                    "per-image: each image's mIoU averaged, every image weighs the same.")
OVERALL = {POOLED: "pooled mIoU (official)", PER_IMAGE: "mean per-image mIoU"}
RESAMPLES, SEED = 1000, 0
TOP_WORSE = 20  # images listed under "where did B get worse"


# ---------------------------------------------------------------------------- pooled or per image

def per_image_mean(per_image: pd.DataFrame) -> float:
    """The mean of per_image.csv's ``miou`` over the images that have one (NaN if none does)."""
    if "miou" not in per_image:
        return float("nan")
    values = pd.to_numeric(per_image["miou"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else float("nan")


def per_image_means(per_image_a: pd.DataFrame, per_image_b: pd.DataFrame) -> tuple[float, float]:
    """Both runs' mean per-image mIoU over the images both scored and both have an mIoU for (what
    ``compare_runs``'s ``per_image`` block averages)."""
    if "miou" not in per_image_a or "miou" not in per_image_b:
        return float("nan"), float("nan")
    a = per_image_a.dropna(subset=["id", "miou"]).drop_duplicates("id").set_index("id")["miou"]
    b = per_image_b.dropna(subset=["id", "miou"]).drop_duplicates("id").set_index("id")["miou"]
    shared = a.index.intersection(b.index)
    if not len(shared):
        return float("nan"), float("nan")
    return float(a.loc[shared].mean()), float(b.loc[shared].mean())


def summary(result: Mapping, mode: str) -> dict:
    """The block of a ``compare_runs`` result for ``mode``: the pooled one (its top level) or ``per_image``."""
    return dict(result["per_image"] if mode == PER_IMAGE else result)


# ---------------------------------------------------------------------------- intervals

def _signed(value) -> str:
    return "-" if value is None else f"{value:+.3f}"


def interval_text(block: Mapping) -> str:
    """"[-0.012, +0.034]", or "" when the bootstrap gave none."""
    low, high = block.get("ci95_low"), block.get("ci95_high")
    return "" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def significance_text(block: Mapping) -> str:
    """"B better", "B worse", "not significant" (the interval holds 0), or "undefined"."""
    said = verdict(block)
    for start, text in (("B better", "B better"), ("B worse", "B worse"), ("not significant", "not significant")):
        if said.startswith(start):
            return text
    return "undefined"


def verdict_line(result: Mapping, mode: str) -> str:
    """The overall line under the A-vs-B chart: the difference, its interval, the verdict, and
    what the bootstrap drew from."""
    block = summary(result, mode)
    wins, ties = block.get("b_wins"), block.get("ties")
    images = result["per_image"]["images"] if mode == PER_IMAGE else result["images"]
    if ties == 1:  # "B wins in 0%" would read as "A wins" where the runs are equal in every resample
        wins_text = "; A and B tie in every resample"
    else:
        wins_text = "" if wins is None else f"; B wins in {wins:.0%} of the resamples"
    return (f"**Overall, {OVERALL[mode]}**: B - A = {_signed(block.get('miou_difference'))}, 95% interval "
            f"{interval_text(block) or '-'}: **{verdict(block)}**{wins_text}"
            + f" (paired bootstrap, {result['resamples']} resamples of the {images} images both runs evaluated,"
              f" seed {result['seed']}).")


def per_class_intervals(result: Mapping) -> dict[str, dict]:
    """Class name -> its pooled-IoU block (iou_difference, ci95_low, ci95_high, significant, ...)."""
    return {str(row["name"]): row for row in result["per_class"]}


def error_bars(differences: pd.Series, intervals: Mapping[str, Mapping]) -> dict:
    """Plotly ``error_x`` for bars at ``differences`` (indexed by class name): the distances to each
    class's interval ends (0 where it has none, or no bar)."""
    plus, minus = [], []
    for name, value in differences.items():
        row = intervals.get(str(name), {})
        low, high = row.get("ci95_low"), row.get("ci95_high")
        known = low is not None and high is not None and pd.notna(value)
        plus.append(max(0.0, high - value) if known else 0.0)
        minus.append(max(0.0, value - low) if known else 0.0)
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#444", thickness=1.5, width=4)


def difference_columns(frame: pd.DataFrame, result: Mapping, mode: str, miou_row: str) -> pd.DataFrame:
    """``analysis.difference_frame`` with each row's 95% interval and significance (the classes'
    from the pooled IoU per class, the ``miou_row``'s from the block of ``mode``)."""
    intervals = per_class_intervals(result)
    blocks = {name: intervals.get(str(name)) for name in frame.index}
    blocks[miou_row] = summary(result, mode)
    return frame.assign(**{
        "95% interval": [interval_text(blocks[name]) if blocks[name] else None for name in frame.index],
        "significance": [significance_text(blocks[name]) if blocks[name] else None for name in frame.index]})


# ---------------------------------------------------------------------------- the leaderboard's reference

def default_reference(table: pd.DataFrame, deployed: str | None) -> str:
    """The deployed run when it is listed, else the best on validation mIoU, else the first."""
    if deployed in set(table["run"]):
        return str(deployed)
    ranked = table.sort_values("val_miou", ascending=False, na_position="last", kind="stable")
    return str(ranked["run"].iloc[0])


def comparable_runs(table: pd.DataFrame, reference: str, limit: int) -> tuple[list[str], list[str]]:
    """(the runs compared with ``reference``: the first ``limit`` in the table's order of its class
    set and split; the others of that class set and split, left out for time)."""
    classes, split = table["classes"].astype(str), table["split"].fillna("").astype(str)  # an older run: no split
    at = list(table["run"]).index(reference)
    same = table[(classes == classes.iloc[at]) & (split == split.iloc[at]) & (table["run"] != reference)]
    runs = [str(run) for run in same["run"]]
    return runs[:limit], runs[limit:]


def reference_columns(runs: list[str], reference: str, results: Mapping[str, Mapping], mode: str) -> pd.DataFrame:
    """For each of ``runs``: B - A against the reference (B = the run), the 95% interval and the
    significance; the reference says "reference"; a run not compared has empty cells."""
    rows = []
    for run in runs:
        result = results.get(run)
        if run == reference:
            rows.append((0.0, "", "reference"))
        elif result is None or "error" in result:
            rows.append((float("nan"), None, None))
        else:
            block = summary(result, mode)
            difference = block.get("miou_difference")
            rows.append((float("nan") if difference is None else float(difference), interval_text(block) or None,
                         significance_text(block)))
    return pd.DataFrame(rows, columns=["vs_reference", "interval", "significance"], index=pd.Index(runs, name="run"))


# ---------------------------------------------------------------------------- A vs B, pixel by pixel

OUTCOME_COUNTS = list(OUTCOME_NAMES)  # the columns of an outcome table, after "id"


def outcome_legend_html() -> str:
    """The outcome map's colours: three swatches, and what both-right and unscored pixels look like."""
    swatch = ('<span style="display:inline-block;margin:0 .8em .2em 0;white-space:nowrap"><span style="display:'
              'inline-block;width:.9em;height:.9em;background:rgb({},{},{});border:1px solid #888;'
              'vertical-align:middle"></span> {}</span>')
    items = [swatch.format(*OUTCOME_COLORS[code].tolist(), OUTCOME_NAMES[code]) for code in (1, 2, 3)]
    items.append('<span style="white-space:nowrap">both right: dimmed photo · no ground truth: black</span>')
    return "<div>" + "".join(items) + "</div>"


def worse_for_b(outcomes: pd.DataFrame, limit: int = TOP_WORSE) -> pd.DataFrame:
    """The images where B got worse: most pixels A gets right and B wrong first (ties by id), only
    those that have such pixels; with that count's share of the image's scored pixels."""
    worse = OUTCOME_NAMES[1]
    ranked = outcomes[outcomes[worse] > 0].sort_values([worse, "id"], ascending=[False, True], kind="stable")
    ranked = ranked.head(limit)
    scored = ranked[OUTCOME_COUNTS].sum(axis=1)
    return ranked.assign(**{"share of image": ranked[worse] / np.maximum(scored, 1)})[
        ["id", worse, "share of image", OUTCOME_NAMES[2], OUTCOME_NAMES[3]]].reset_index(drop=True)
