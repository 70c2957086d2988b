"""How the pages name runs and say where their numbers come from: short names, a trained run beside
an imported one (another tool's predictions scored here, maybe on part of the split), runs of
several class sets. Plain functions of the runs table (no Streamlit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from training.runs.layout import IMPORTED

TRAINED = "trained"
NO_CLASS = "no class"  # what a prediction's 255 means in an imported run (and hover names it)


def source(metrics_source) -> str:
    """A run's source as the pages show it: "imported" or "trained" (older runs do not say)."""
    return IMPORTED if metrics_source == IMPORTED else TRAINED


def _shared_ends(names: Sequence[list[str]]) -> tuple[int, int]:
    """How many leading and trailing "_"-separated parts all ``names`` share, the trailing ones
    first (a suffix such as "_v1_128x256" says least), never all of one name."""
    shortest = min(len(parts) for parts in names)
    tail = 0
    while tail < shortest - 1 and len({tuple(parts[len(parts) - tail - 1:]) for parts in names}) == 1:
        tail += 1
    head = 0
    while head + tail < shortest - 1 and len({tuple(parts[:head + 1]) for parts in names}) == 1:
        head += 1
    return head, tail


def short_names(all_runs: Sequence[str]) -> dict[str, str]:
    """A short display name for each of ``all_runs``: its name without the parts every run's name
    shares at its start and end ("simple_scratch_cce_v1_128x256" beside
    "unet_scratch_cce-dice_v1_128x256" is "simple_scratch_cce"); a single run keeps its name. The
    names stay distinct (all lose the same parts) and never empty (each keeps one part at least)."""
    runs = list(dict.fromkeys(str(run) for run in all_runs))
    if len(runs) < 2:
        return {run: run for run in runs}
    parts = [run.split("_") for run in runs]
    head, tail = _shared_ends(parts)
    return {run: "_".join(split[head:len(split) - tail]) for run, split in zip(runs, parts)}


def short_name(run: str, all_runs: Sequence[str]) -> str:
    """``run``'s short display name among ``all_runs`` (``short_names``)."""
    return short_names([*all_runs, run]).get(str(run), str(run))


def run_label(run: str, row: Mapping, with_classes: bool = False, shown_name: str | None = None) -> str:
    """How selectors name a run (``shown_name``, else its name): a trained run by its name; an
    imported one tagged, with its coverage when partial ("x (imported, 60 of 100 images)");
    ``with_classes``: its class set too."""
    parts = []
    if row.get("source") == IMPORTED:
        covered = row.get("coverage") or ""
        parts.append("imported" + (f", {covered} images" if covered else ""))
    if with_classes:
        parts.append(str(row.get("classes")))
    name = shown_name or run
    return f"{name} ({'; '.join(parts)})" if parts else name


def run_labels(runs: pd.DataFrame, with_classes: bool = False, short: bool = False) -> dict[str, str]:
    """``run_label`` of every run of the runs table; ``short``: by the runs' short names
    (``short_names`` of the whole table, so a run keeps its name whichever are selected)."""
    records = runs.to_dict("records")
    names = short_names([row["run"] for row in records]) if short else {}
    return {row["run"]: run_label(row["run"], row, with_classes, names.get(row["run"])) for row in records}


def full_names_text(runs: Sequence[str], labels: Mapping[str, str]) -> str:
    """For a selector that names runs by ``labels`` (their short names): a Markdown list of each run
    whose label is not its full name ("- simple_scratch_cce: `simple_scratch_cce_v1_128x256`"); ""
    when every label is the full name."""
    shortened = [(labels[run], run) for run in runs if not str(labels.get(run, run)).startswith(str(run))]
    return "\n".join(f"- {label}: `{run}`" for label, run in shortened)


def imported_note(runs: pd.DataFrame, names: Sequence[str] | None = None) -> str | None:
    """A sentence naming the imported runs among ``names`` (default: all) with their coverage, or None."""
    rows = runs if names is None else runs[runs["run"].isin(list(names))]
    imported = rows[rows["source"] == IMPORTED]
    if imported.empty:
        return None
    described = [f"{row['run']}" + (f" ({row['coverage']} {row['split']} images)" if row["coverage"] else "")
                 for row in imported.to_dict("records")]
    return ("Imported predictions of another tool, scored here (nothing trained, no model to deploy): "
            + ", ".join(described) + ".")


def given_latency_note(runs: pd.DataFrame) -> str | None:
    """A sentence naming the imported runs whose inference time was given at import, or None."""
    given = runs[(runs["source"] == IMPORTED) & runs["inference_ms"].notna()]
    if given.empty:
        return None
    return ("Inference time of " + ", ".join(given["run"]) + ": as given at import, not measured here "
            "as the trained runs' are.")


def partial_coverage_note(runs: pd.DataFrame, names: Sequence[str]) -> str | None:
    """When ``names`` are several and some are scored on part of their split: which, and that
    their numbers are over other images than the others' (None otherwise)."""
    rows = runs[runs["run"].isin(list(names))]
    partial = rows[rows["coverage"] != ""]
    if partial.empty or len(rows) < 2:
        return None
    which = ", ".join(f"{row['run']} on {row['coverage']} {row['split']} images" for row in partial.to_dict("records"))
    return (f"Scored on part of the split: {which}. The runs' numbers here are over different images; "
            "Run A against run B below compares two runs on the images both have.")


def class_sets_note(classes: Sequence[str]) -> str | None:
    """A sentence when runs of several class sets are listed together (their mIoU are not
    comparable), else None."""
    names = list(dict.fromkeys(str(c) for c in classes))
    if len(names) < 2:
        return None
    return (f"These runs predict different class sets ({', '.join(names)}): compare their scores only "
            "within one class set.")


def group_by_class_set(runs: Sequence[str], classes_of: Mapping[str, str]) -> dict[str, list[str]]:
    """``runs`` grouped by their class set, class sets in the order their first run comes."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(str(classes_of[run]), []).append(run)
    return groups


def evaluated_on_another_index(metrics: Mapping, fingerprint: str) -> bool:
    """Whether a run's metrics.json names another dataset index than ``fingerprint`` (then its
    predictions' ids may name other images); False when the run does not say."""
    dataset = metrics.get("dataset")
    recorded = dataset.get("fingerprint") if isinstance(dataset, dict) else None
    return isinstance(recorded, str) and bool(recorded) and recorded != fingerprint


def shared_images_text(run_a: str, count_a: int, run_b: str, count_b: int, shared: int, split: str) -> str:
    """What the A-B comparison is over when the two runs scored different images."""
    return (f"{run_a} scored {count_a} {split} images, {run_b} {count_b}: compared on the {shared} images both "
            "have (their numbers there, from each image's confusion matrix; the leaderboard's are over each "
            "run's own images).")


# ---------------------------------------------------------------------------- the runs a page starts on

DEFAULT_RANKING = "miou_official"  # the best run: the highest official test mIoU (the benchmark's number)


def default_runs(runs: pd.DataFrame, deployed: str | None) -> list[str]:
    """Every run of the runs table in the order the pages start on them (one rule for every page:
    the first is the confusion run, run A, the Gallery's sort and pictures, the Overview's
    reference; the next of its class set is run B): the reference, which is the deployed run when
    it is listed, else the best; then the other runs of its class set, best first; then the rest,
    best first. Best: the highest official test mIoU (``DEFAULT_RANKING``); runs without one
    last, in the table's order."""
    if runs.empty:
        return []
    score = pd.to_numeric(runs[DEFAULT_RANKING], errors="coerce")
    ranked = runs.assign(_score=score).sort_values("_score", ascending=False, na_position="last", kind="stable")
    names = [str(run) for run in ranked["run"]]
    reference = str(deployed) if deployed in set(names) else names[0]
    classes = {str(run): str(c) for run, c in zip(runs["run"], runs["classes"], strict=True)}
    others = [run for run in names if run != reference]
    same = [run for run in others if classes[run] == classes[reference]]
    return [reference, *same, *[run for run in others if run not in same]]


def default_pair(runs: pd.DataFrame, deployed: str | None) -> tuple[str, str]:
    """Run A and run B a comparison starts on: the reference of ``default_runs`` and the best other
    run of its class set (else of any class set; A itself when it is the only run)."""
    order = default_runs(runs, deployed)
    first = order[0]
    classes = dict(zip(runs["run"].astype(str), runs["classes"].astype(str), strict=True))
    same = [run for run in order[1:] if classes[run] == classes[first]]
    return first, (same or order[1:] or [first])[0]
