"""The Image explorer's run A against run B, pixel by pixel: on this image, where A is right and B
wrong, the reverse, and both wrong (``training.viz.outcome_picture``, the full-size pixel counts);
and "where did B get worse": the images with the most pixels A gets right and B wrong.

Ranking the images decodes three PNGs per image both runs evaluated (cached per pair of runs and
index, ``readers.pairs.outcomes``), so the section waits behind a toggle: the explorer's usual rerun
costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.readers.pairs as pair_store
import dashboard.views.intervals as paired
from dashboard.pictures.outcomes import outcome_picture

PAIRS_KEY, A_KEY, B_KEY = "explorer_pairs", "explorer_pair_a", "explorer_pair_b"
BUTTONS_PER_ROW = 5


def pick_pair(refs: dict, labels: dict[str, str]) -> tuple[pictures.RunRef, pictures.RunRef] | None:
    """Run A and run B among the selected whole runs; None (and a note) when they cannot be compared."""
    runs = [run for run, ref in refs.items() if isinstance(ref, pictures.RunRef)]
    left, right = st.columns(2)
    run_a = left.selectbox("Run A", runs, index=0, key=A_KEY, format_func=lambda run: labels.get(run, run))
    run_b = right.selectbox("Run B", runs, index=1, key=B_KEY, format_func=lambda run: labels.get(run, run))
    a, b = refs[run_a], refs[run_b]
    if run_a == run_b:
        st.caption("Choose two different runs.")
    elif a.classes != b.classes:
        st.info(f"{run_a} predicts the class set {a.classes}, {run_b} the class set {b.classes}: their pixels "
                "cannot be compared. Choose two runs of one class set.")
    elif not (a.same_index and b.same_index):
        st.info(f"{run_a if not a.same_index else run_b} was evaluated on another index of the dataset: its image "
                "ids may name other pictures than this index's.")
    else:
        return a, b
    return None


def image_ui(image: pictures.ImageRef, a: pictures.RunRef, b: pictures.RunRef, counts: dict[str, int] | None) -> None:
    """This image's outcome map, its legend and its full-size pixel counts."""
    picture = outcome_picture(image, a, b)
    if counts is None or picture is None:
        st.info(f"No pixel map of image {image.image_id}: {a.name} and {b.name} do not both have a prediction of "
                "it that can be shown.")
        return
    left, right = st.columns([2, 1])
    left.image(picture, output_format="PNG", width="stretch", caption=f"image {image.image_id}: {a.name} (A) "
                                                                      f"against {b.name} (B)")
    left.markdown(paired.outcome_legend_html(), unsafe_allow_html=True)
    scored = max(1, sum(counts.values()))
    for name in paired.OUTCOME_COUNTS:
        right.metric(name, f"{counts[name]:,}", help=f"{counts[name] / scored:.1%} of the pixels with ground truth")
    st.caption("Pixels with ground truth, counted at full size.")


def worse_ui(frame, a: pictures.RunRef, b: pictures.RunRef, open_image: Callable[[int], None]) -> None:
    """The images ranked by pixels A gets right and B wrong, each opened by one click."""
    st.markdown(f"**Where did B get worse?** The images where {a.name} (A) is right and {b.name} (B) wrong on "
                f"the most pixels, of the {len(frame)} images both evaluated")
    worse = paired.worse_for_b(frame)
    if worse.empty:
        st.caption("On no pixel: B gets right every pixel A gets right.")
        return
    st.dataframe(worse, hide_index=True, width="stretch", column_config={
        "share of image": st.column_config.NumberColumn("share of image", format="percent",
                                                        help="of its pixels with ground truth")})
    ids = [int(image_id) for image_id in worse["id"]]
    for start in range(0, len(ids), BUTTONS_PER_ROW):
        for column, image_id in zip(st.columns(BUTTONS_PER_ROW), ids[start:start + BUTTONS_PER_ROW]):
            column.button(f"Open {image_id}", key=f"explorer_open_worse_{image_id}", on_click=open_image,
                          args=(image_id,), width="stretch")


def outcomes_ui(key, image: pictures.ImageRef, refs: dict, labels: dict[str, str],
                open_image: Callable[[int], None]) -> None:
    """``refs``: the selected runs as the page read them; ``open_image(id)`` shows another image
    (a widget callback: it runs before the page)."""
    st.subheader("Run A against run B, pixel by pixel")
    if sum(isinstance(ref, pictures.RunRef) for ref in refs.values()) < 2:
        st.caption("Select two runs or more to compare them pixel by pixel.")
        return
    if not st.toggle("Compare two runs pixel by pixel", key=PAIRS_KEY,
                     help="Where A is right and B wrong, and the images where B got worse: every image both "
                          "runs evaluated is read once per pair of runs (about 8 s for 500 images at "
                          "2048x1024 on 2 cores), then kept."):
        return
    pair = pick_pair(refs, labels)
    if pair is None:
        return
    a, b = pair
    with st.spinner(f"Comparing {a.name} and {b.name} on every image both evaluated (once per pair)..."):
        frame, problems = pair_store.outcomes(key, a, b)
    image_ui(image, a, b, pair_store.outcome_row(frame, image.image_id))
    worse_ui(frame, a, b, open_image)
    if problems:
        st.warning(f"Left out of the ranking ({len(problems)} images): " + "; ".join(problems[:5])
                   + (" ..." if len(problems) > 5 else ""))
