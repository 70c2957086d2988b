"""Run B against run A as the pages show it: each difference with its 95% interval and verdict,
the leaderboard's column against a reference run, and the pixel outcomes' legend and table.
Plain functions of ``training.evaluation.significance.compare_runs`` results (no Streamlit).

The numbers and their names come from the core: the paired bootstrap over the images both runs
evaluated (``RESAMPLES`` resamples, seed ``SEED``), B - A with its 95% interval, "not significant"
when the interval holds 0, for each mIoU variant of ``training.evaluation.variants`` pooled or
per image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from dashboard.views.run_names import default_runs
from training.evaluation.metrics import OUTCOME_NAMES, rank_b_worse
from training.evaluation.significance import block, verdict
from training.evaluation.variants import AVERAGING_EXPLANATION, AVERAGING_TEXT, MIOU, PER_IMAGE, variant
from training.viz import OUTCOME_COLORS

MIOU_MODES = dict(AVERAGING_TEXT)  # the pages' switch: pooled over the dataset, or the mean of per-image mIoU
MIOU_EXPLANATION = AVERAGING_EXPLANATION
RESAMPLES, SEED = 1000, 0
TOP_WORSE = 20  # images listed under "where did B get worse"
OUTCOME_COUNTS = list(OUTCOME_NAMES)  # the columns of an outcome table, after "id"


def summary(result: Mapping, mode: str, key: str = MIOU.key) -> dict:
    """The block of a ``compare_runs`` result for variant ``key`` averaged ``mode`` ({} when the
    variant is missing from a run)."""
    return dict(block(result, key, mode) or {})


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


def verdict_line(result: Mapping, mode: str, key: str = MIOU.key) -> str:
    """The overall line under the A-vs-B chart: the difference of the ``key`` mIoU averaged ``mode``,
    its interval, the verdict, and what the bootstrap drew from."""
    found = summary(result, mode, key)
    wins, ties = found.get("b_wins"), found.get("ties")
    images = found.get("images") if mode == PER_IMAGE else result["images"]
    if ties == 1:  # "B wins in 0%" would read as "A wins" where the runs are equal in every resample
        wins_text = "; A and B tie in every resample"
    else:
        wins_text = "" if wins is None else f"; B wins in {wins:.0%} of the resamples"
    return (f"**Overall, {variant(key).label(mode)}**: B - A = {_signed(found.get('difference'))}, 95% interval "
            f"{interval_text(found) or '-'}: **{verdict(found) if found else 'undefined'}**{wins_text}"
            + f" (paired bootstrap, {result['resamples']} resamples of the {images} images both runs evaluated,"
              f" seed {result['seed']}).")


def per_class_intervals(result: Mapping, key: str = MIOU.key) -> dict[str, dict]:
    """Class name -> its pooled-IoU block (difference, ci95_low, ci95_high, significant, ...)."""
    return {str(row["name"]): row for row in (result.get(key) or {}).get("per_class", [])}


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


def difference_labels(differences: pd.Series, intervals: Mapping[str, Mapping]) -> list[dict]:
    """Plotly annotations naming each horizontal bar of ``differences`` (indexed by class name) by its
    value ("+0.012", with ", not significant" where its interval holds 0), written beyond the end
    of its error bar (``error_bars``), on the bar's side of zero: a bar's own ``text`` sits at the
    bar's end, under its error bar. The bar then shows no text of its own (``textposition="none"``)."""
    bars = error_bars(differences, intervals)
    labels = []
    for (name, value), plus, minus in zip(differences.items(), bars["array"], bars["arrayminus"], strict=True):
        if pd.isna(value):
            continue
        said = significance_text(intervals[str(name)]) if str(name) in intervals else ""
        right = value >= 0
        labels.append(dict(
            x=float(value + plus if right else value - minus), y=name, xref="x", yref="y", showarrow=False,
            text=f"{value:+.3f}" + (", not significant" if said == "not significant" else ""),
            xanchor="left" if right else "right", xshift=4 if right else -4, font=dict(size=11)))
    return labels


def delta_color(result: Mapping | None, mode: str, key: str = MIOU.key) -> str:
    """``st.metric``'s ``delta_color`` for B - A of the ``key`` mIoU averaged ``mode``: green or red
    ("normal") only when the difference is significant, grey ("off") when its interval holds 0,
    or when there is no interval."""
    found = summary(result, mode, key) if result else {}
    return "normal" if found and significance_text(found) in ("B better", "B worse") else "off"


def difference_columns(frame: pd.DataFrame, result: Mapping, mode: str, miou_row: str,
                       key: str = MIOU.key) -> pd.DataFrame:
    """A per-class table of A, B and B - A with each row's 95% interval and significance (the classes'
    from the pooled IoU per class, the ``miou_row``'s from the block of ``mode``)."""
    intervals = per_class_intervals(result, key)
    blocks = {name: intervals.get(str(name)) for name in frame.index}
    blocks[miou_row] = summary(result, mode, key) or None
    return frame.assign(**{
        "95% interval": [interval_text(blocks[name]) if blocks[name] else None for name in frame.index],
        "significance": [significance_text(blocks[name]) if blocks[name] else None for name in frame.index]})


def default_reference(table: pd.DataFrame, deployed: str | None) -> str:
    """The deployed run when it is listed, else the best on official test mIoU, else the first
    (``run_names.default_runs``: the run every page starts on)."""
    return default_runs(table, deployed)[0]


def comparable_runs(table: pd.DataFrame, reference: str, limit: int) -> tuple[list[str], list[str]]:
    """(the runs compared with ``reference``: the first ``limit`` in the table's order of its class
    set and split; the others of that class set and split, left out for time)."""
    classes, split = table["classes"].astype(str), table["split"].fillna("").astype(str)  # an older run: no split
    at = list(table["run"]).index(reference)
    same = table[(classes == classes.iloc[at]) & (split == split.iloc[at]) & (table["run"] != reference)]
    runs = [str(run) for run in same["run"]]
    return runs[:limit], runs[limit:]


def reference_columns(runs: list[str], reference: str, results: Mapping[str, Mapping], mode: str,
                      key: str = MIOU.key) -> pd.DataFrame:
    """For each of ``runs``: B - A against the reference (B = the run), the 95% interval and the
    significance; the reference says "reference"; a run not compared has empty cells."""
    rows = []
    for run in runs:
        result = results.get(run)
        if run == reference:
            rows.append((0.0, "", "reference"))
        elif result is None or "error" in result or not summary(result, mode, key):
            rows.append((float("nan"), None, None))
        else:
            found = summary(result, mode, key)
            difference = found.get("difference")
            rows.append((float("nan") if difference is None else float(difference), interval_text(found) or None,
                         significance_text(found)))
    return pd.DataFrame(rows, columns=["vs_reference", "interval", "significance"], index=pd.Index(runs, name="run"))


def outcome_legend_html() -> str:
    """The outcome map's colours: three swatches, and what both-right and unscored pixels look like."""
    swatch = ('<span style="display:inline-block;margin:0 .8em .2em 0;white-space:nowrap"><span style="display:'
              'inline-block;width:.9em;height:.9em;background:rgb({},{},{});border:1px solid #888;'
              'vertical-align:middle"></span> {}</span>')
    items = [swatch.format(*OUTCOME_COLORS[code].tolist(), OUTCOME_NAMES[code]) for code in (1, 2, 3)]
    items.append('<span style="white-space:nowrap">both right: dimmed photo · no ground truth: black</span>')
    return "<div>" + "".join(items) + "</div>"


def worse_for_b(outcomes: pd.DataFrame, limit: int = TOP_WORSE) -> pd.DataFrame:
    """The images where B got worse (``training.evaluation.metrics.rank_b_worse`` of an outcome
    table: id, one column per outcome): most pixels A gets right and B wrong first, with that
    count's share of the image's scored pixels."""
    worse = OUTCOME_NAMES[1]
    columns = ["id", worse, "share of image", OUTCOME_NAMES[2], OUTCOME_NAMES[3]]
    rows = rank_b_worse(outcomes["id"].to_numpy(), outcomes[OUTCOME_COUNTS].to_numpy(), limit)
    return pd.DataFrame([{**row, "share of image": row["share"]} for row in rows], columns=columns)


def pick_pair(runs: Sequence[str], available: Sequence[str], classes_of: Mapping[str, str]) -> tuple[str, str]:
    """Default runs A and B: the first selected run, and the next run (selected first) of its
    class set, else simply the next run."""
    order = list(dict.fromkeys([*runs, *available]))
    first, others = order[0], order[1:]
    same = [run for run in others if classes_of.get(run) == classes_of.get(first)]
    return first, (same or others or [first])[0]
