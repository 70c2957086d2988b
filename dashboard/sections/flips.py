"""The Image explorer's flip map: where an embedded export of a run (a TFLite model, maybe int8)
predicts another class than the run's Keras model on this image, in the colour of the Keras class,
the other pixels dark; with the pixels changed per Keras class, counted at full size.

Both masks are files (the run's ``predictions/<id>.png`` and the export's, written by ``python -m
training export``): nothing here runs a model. At display size a flip never vanishes: a shown pixel
is changed when any pixel of its block is (``training.viz.shrink_flips``).
"""

from __future__ import annotations

import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.readers.exports as export_store
import dashboard.readers.store as store
from dashboard.pictures.flips import flips as flip_map_of
from dashboard.views.exports_tables import flip_table
from training.data.labels import get_class_set
from training.viz import changed_shares

RUN_KEY, EXPORT_KEY = "explorer_flip_run", "explorer_flip_export"


@st.fragment
def flip_ui(image: pictures.ImageRef, refs: dict, predictions: dict, labels: dict[str, str]) -> None:
    """``predictions``: the runs' predictions that can be shown, by class set then run (the page's)."""
    st.subheader("Embedded export: flip map")
    key = store.store_key()
    shown = [run for members in predictions.values() for run in members]
    runs = export_store.runs_with_exports(key, shown)
    if not runs:
        st.caption("No selected run with a prediction of this image has an embedded export "
                   f"(`{export_store.EXPORT_COMMAND}` makes one).")
        return
    left, right = st.columns(2)
    run = left.selectbox("Run", runs, key=RUN_KEY, format_func=lambda name: labels.get(name, name))
    reports, problems = export_store.reports(key, run)
    for name, problem in problems.items():
        st.warning(f"Export {name} of {run} cannot be shown: {problem}")
    if not reports:
        return
    export = right.selectbox("Export", list(reports), key=EXPORT_KEY,
                             format_func=lambda name: f"{name} ({reports[name].get('quantize')})")
    stamp = dict(export_store.version(key, run)).get(export)
    flips = flip_map_of(image, refs[run], export, stamp)
    if isinstance(flips, str):
        st.info(f"No flip map: {flips}.")
        return
    total, changed = int(flips.pixels.sum()), int(flips.changed.sum())
    share = float(changed_shares(changed, total))
    picture, numbers = st.columns([2, 1])
    picture.image(flips.png, output_format="PNG", width="stretch",
                  caption=f"{run} vs {export}: pixels whose class changed, in the Keras class's colour")
    numbers.metric("Pixels changed", "-" if share != share else f"{share:.2%}", help=f"{changed:,} of {total:,} pixels")
    report = reports[export]
    share = (report.get("changed_pixels") or {}).get("share")
    if share is not None:
        numbers.metric("On the whole split", f"{share:.2%}", help=f"the {report.get('split')} split, "
                       f"{report.get('images')} images")
    table = flip_table(flips.changed, flips.pixels, get_class_set(refs[run].classes).names)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "share changed": st.column_config.NumberColumn("share changed", format="percent")})
    st.caption("Counted on every pixel at full size. Shown smaller, a pixel is marked when any pixel of its "
               "block changed, so no change disappears; the other pixels are the photo, dimmed.")
