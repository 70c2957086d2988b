"""Check labels: ground truth that looks wrong. The regions where every chosen run (two or more, of
one class set) agrees with the others and not with the ground truth, largest first, each a click
from the explorer with the region outlined, and a close-up of the one picked.

The rule and its limits are on the page, because the list is easy to over-read: it finds
candidates for a person to check, not label errors (``training.evaluation.consensus`` says why).
The scan reads every image at full size, once per choice of runs and size (``readers.label_scan``
caches it; ``pictures.close_ups`` draws a region). The runs and the minimum size live in the URL
(``?runs=a,b&min_pixels=2000``).
"""

from __future__ import annotations

import math

import streamlit as st

import dashboard.pictures.close_ups as close_ups
import dashboard.pictures.images as pictures
import dashboard.readers.label_scan as label_scan
import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.state as state
import dashboard.views.candidates as label_candidates
from dashboard.sections.links import explorer_url, open_in_explorer
from dashboard.views.run_names import evaluated_on_another_index, imported_note, run_labels
from training.data.cityscapes import DatasetError
from training.runs.layout import ArtifactError

RUNS_KEY, URL_RUNS = "labels_runs", "_labels_url_runs"
MIN_PARAM, MIN_WIDGET = "min_pixels", "labels_min_pixels"
PAGE_WIDGET, CHOICE_WIDGET = "labels_page", "labels_choice"
RULE = (
    "**The rule.** A pixel is a candidate when every chosen run predicts the same class there and the ground "
    "truth gives it another; candidates that touch (8-connected) form a region, and a region is listed when it "
    "has at least the minimum number of pixels (counted at the ground truth's size).\n\n"
    "**Candidates, not verdicts.** A person decides. Runs trained on the same data share its biases: a label "
    "that is wrong the same way in many images is learnt, and never listed. Runs of similar models agreeing is "
    "weak evidence; runs of different kinds (an imported run among trained ones) weigh more. The size rule "
    "leaves out small regions and the thin slivers along class boundaries, where labels and models disagree "
    "most, and a long thin region along a boundary may be an edge drawn a little off rather than a wrong label. "
    "Pixels the ground truth leaves unlabelled or that the class set ignores are never candidates, nor are "
    "pixels where a run predicts no class.")


def default_runs(table, classes_of: dict[str, str]) -> list[str]:
    """Without ``?runs=``: up to four runs of the class set that has the most runs."""
    counts = {}
    for run in table["run"]:
        counts[classes_of[run]] = counts.get(classes_of[run], 0) + 1
    top = max(counts, key=counts.get)
    return [run for run in table["run"] if classes_of[run] == top][:state.MAX_RUNS]


def _min_pixels_changed() -> None:
    st.query_params[MIN_PARAM] = str(int(st.session_state[MIN_WIDGET]))


def min_pixels_ui(default: int) -> int:
    """The minimum region size, synchronised with ``?min_pixels=`` (absent: ``default``)."""
    raw = st.query_params.get(MIN_PARAM)
    if raw is not None and raw.isascii() and raw.isdigit() and int(raw) > 0:
        value = int(raw)
    else:
        value = int(st.session_state.get(MIN_WIDGET, default))
    st.session_state[MIN_WIDGET] = value  # the URL (or the session) decides; a change writes the URL first
    return int(st.number_input("Smallest region (pixels at the ground truth's size)", min_value=1, step=100,
                               key=MIN_WIDGET, on_change=_min_pixels_changed,
                               help=f"Regions with fewer pixels are not listed. Default for these images: "
                                    f"{default:,} (a thousandth of the frame)."))


def chosen_runs(table, key) -> tuple[list[str], str]:
    """The runs to scan and their class set; the page stops with a note when there are not two of one set."""
    classes_of = store.run_classes(key)
    available = list(table["run"])
    if "runs" not in st.query_params:
        state.set_runs(default_runs(table, classes_of))
    labels = run_labels(table, with_classes=True, short=True)
    runs = state.runs_ui(available, RUNS_KEY, URL_RUNS, labels=labels)
    sets = {classes_of[run] for run in runs}
    counts = {}
    for run in available:
        counts.setdefault(classes_of[run], []).append(run)
    enough = [f"{classes} ({', '.join(names)})" for classes, names in counts.items() if len(names) >= 2]
    if len(sets) > 1:
        which = "; ".join(f"{', '.join(r for r in runs if classes_of[r] == s)}: {s}" for s in sorted(sets))
        st.warning(f"The chosen runs predict different class sets ({which}). Choose runs of one class set: their "
                   "classes must mean the same to agree.")
        st.stop()
    if len(runs) < 2:
        st.info("Choose two or more runs of one class set: a region is a candidate when every run agrees against "
                "the ground truth, which needs at least two runs. "
                + (f"Class sets with two or more runs: {'; '.join(enough)}." if enough else
                   "No class set has two runs yet: train or import another run of the same class set."))
        st.stop()
    classes = next(iter(sets))
    if not store.known_class_set(classes):
        st.warning(f"The chosen runs predict a class set this dashboard does not know ({classes}).")
        st.stop()
    return runs, classes


def scanned_images(key, runs: list[str], classes: str, table) -> list[int]:
    """The ids every run predicted, on the page's dataset index; notes for what is left out."""
    data = store.dataset(key, classes)
    fingerprint = data.index.fingerprint()
    other = [run for run in runs if evaluated_on_another_index(store.run_metrics(key, run), fingerprint)]
    if other:
        st.warning(f"{', '.join(other)} {'was' if len(other) == 1 else 'were'} evaluated on another dataset index: "
                   "its image ids may name other images. Choose runs evaluated on this dataset.")
        st.stop()
    per_run = {run: list(store.per_image(key, run)["id"]) for run in runs}
    ids = label_candidates.common_ids(per_run, data.index)
    counts = {run: len(label_candidates.common_ids({run: values}, data.index)) for run, values in per_run.items()}
    if not ids:
        st.info("The chosen runs have no evaluated image in common (" + ", ".join(
            f"{run}: {count} images" for run, count in counts.items()) + "): choose runs of the same split.")
        st.stop()
    if any(count != len(ids) for count in counts.values()):
        st.caption(f"Only the {len(ids):,} images every chosen run predicted are scanned (images predicted: "
                   + ", ".join(f"{run} {count:,}" for run, count in counts.items()) + ").")
    note = imported_note(table, runs)
    if note:
        st.caption(note)
    return ids


def results_ui(key, runs: list[str], classes: str, found, min_pixels: int) -> None:
    frame = label_candidates.candidates_frame(found)
    images_with = frame["id"].nunique()
    st.subheader("Check these labels")
    st.markdown(f"**{len(frame):,} candidate region{'s' if len(frame) != 1 else ''}** in {images_with:,} of the "
                f"{found.images:,} images scanned (at least {min_pixels:,} pixel{'s' if min_pixels != 1 else ''}, "
                "8-connected, every pixel looked at).")
    for image_id, reason in found.skipped[:5]:
        st.warning(f"Image {image_id} left out: {store.readable(reason, key)}")
    if len(found.skipped) > 5:
        st.warning(f"{len(found.skipped) - 5} more images left out (files that cannot be read, or of another "
                   "size).")
    if frame.empty:
        st.caption("No region where every chosen run agrees against the ground truth reaches the minimum size. "
                   "A smaller minimum lists smaller regions.")
        return
    per_page = label_candidates.PER_PAGE
    pages = max(1, math.ceil(len(frame) / per_page))
    st.session_state[PAGE_WIDGET] = min(max(1, int(st.session_state.get(PAGE_WIDGET, 1))), pages)
    page = int(st.columns([1, 4])[0].number_input(f"Page (of {pages})", min_value=1, max_value=pages,
                                                  key=PAGE_WIDGET)) if pages > 1 else 1
    first = (page - 1) * per_page
    shown = frame.iloc[first:first + per_page].copy()
    shown.insert(0, "rank", range(first + 1, first + len(shown) + 1))
    shown["open"] = [explorer_url(row["id"], runs, label_candidates.box_outline(row))
                     for row in shown.to_dict("records")]
    st.dataframe(shown[["rank", "id", "pixels", "ground_truth", "truth_share", "runs_say", "agreed_share", "box",
                        "open"]], hide_index=True, width="stretch", placeholder="", key="labels_table", column_config={
        "rank": st.column_config.NumberColumn("rank", format="%d"),
        "id": st.column_config.NumberColumn("image id", format="%d"),
        "pixels": st.column_config.NumberColumn("pixels", format="%d"),
        "ground_truth": st.column_config.TextColumn("ground truth says"),
        "truth_share": st.column_config.NumberColumn("of the region", format="percent"),
        "runs_say": st.column_config.TextColumn("all runs say"),
        "agreed_share": st.column_config.NumberColumn("of the region ", format="percent"),
        "box": st.column_config.TextColumn("box x0,y0,x1,y1 (full-size pixels)"),
        "open": st.column_config.LinkColumn("open", display_text="explorer ↗")})
    st.caption(f"Rows {first + 1:,} to {first + len(shown):,} of {len(frame):,}, largest first. \"Ground truth "
               "says\" and \"all runs say\": the class of most of the region's pixels and its share (a region may "
               "span several). Each link opens the image in the explorer (a new tab) with the region's box "
               "outlined.")
    close_up_ui(key, runs, classes, found, shown)


def close_up_ui(key, runs: list[str], classes: str, found, shown) -> None:
    records = shown.to_dict("records")
    picked = st.session_state.get(CHOICE_WIDGET, 0)
    if not isinstance(picked, int) or not 0 <= picked < len(records):  # another page, with fewer rows
        st.session_state[CHOICE_WIDGET] = 0
    choice, go_button = st.columns([3, 1], vertical_alignment="bottom")
    number = choice.selectbox("Region", range(len(records)), key=CHOICE_WIDGET, format_func=lambda i: (
        f"#{records[i]['rank']} · image {records[i]['id']} · {records[i]['pixels']:,} pixels · ground truth "
        f"{records[i]['ground_truth']}, runs {records[i]['runs_say']}"))
    if number is None or number >= len(records):
        return
    row = records[number]
    if go_button.button("Open in the explorer", width="stretch", key="labels_open"):
        open_in_explorer(row["id"], runs, label_candidates.box_outline(row))
    scanned = found.rows[row["rank"] - 1]
    try:
        image = pictures.image_ref(key, row["id"])
        refs = pictures.run_refs(key, runs, image)
        bad = [ref for ref in refs.values() if isinstance(ref, ArtifactError)]
        if bad:
            raise bad[0]
        photo, truth, agreed = close_ups.close_ups(image, list(refs.values()), classes, scanned)
    except (ArtifactError, DatasetError, KeyError) as error:
        st.warning(f"No close-up of image {row['id']}: {store.readable(error, key)}")
        return
    columns = st.columns(3)
    columns[0].image(photo, caption="photo", width="stretch")
    columns[1].image(truth, caption=f"ground truth ({row['ground_truth']})", width="stretch")
    columns[2].image(agreed, caption=f"where the runs agree ({row['runs_say']}; dimmed photo: they differ)",
                     width="stretch")
    st.caption("The region and its surroundings, its pixels outlined in white. Black in the ground truth: void, or "
               "no class of the set.")


def main() -> None:
    started = page.start("Check labels", "Ground truth that looks wrong: the regions where every chosen run agrees "
                         "with the others and not with the ground truth, largest first. Each is one click from "
                         "the explorer.")
    key, table = started.key, started.table
    page.dataset(key)
    st.info(RULE)
    runs, classes = chosen_runs(table, key)
    ids = scanned_images(key, runs, classes, table)
    first = store.dataset(key, classes).index[ids[0]]
    min_pixels = min_pixels_ui(label_candidates.default_min_pixels(first.height, first.width))
    found = label_scan.scan(key, runs, classes, ids, min_pixels)
    results_ui(key, runs, classes, found, min_pixels)


main()
