"""Drive: a snippet or demo drive played with up to four runs side by side, and how much each
flickers from frame to frame.

The video is rendered on demand from the runs' stored predictions of the sequence (``python -m
training predict-sequence RUN --sequence NAME`` makes them; ``import-sequences`` takes another
tool's) and kept on disk, so the next viewer waits for nothing. Below it, per consecutive pair of
frames, the share of pixels whose class changed against the previous frame carried along by
optical flow, and per class the temporal consistency (TC: the mIoU between each frame's prediction
and the previous one's, warped; Liu et al., ECCV 2020). TC needs no ground truth: a model that
predicts one class everywhere scores 1, so read it beside mIoU, never instead of it. Nothing here
runs a model.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from plotly.colors import qualitative

import dashboard.readers.drives as drives
import dashboard.readers.store as store
import dashboard.sections.page as page
from dashboard.pictures.drawing import display_factor, display_width, shrink_classes, shrink_photo
from dashboard.sections.links import explorer_url
from dashboard.views.drives import (
    FLICKER,
    MAX_RUNS,
    flicker_frame,
    predict_command,
    sequence_label,
    tc_markdown,
    tc_table,
)
from dashboard.views.line_chart_svg import line_chart_svg, markdown_block
from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.files import file_stamp
from training.runs.layout import ArtifactError
from training.viz import overlay

SEQUENCE_KEY, RUNS_KEY, FPS_KEY, LAYOUT_KEY, FRAME_KEY = "drive_sequence", "drive_runs", "drive_fps", "drive_layout", \
    "drive_frame"
COLORS = qualitative.Plotly
INTRO = ("A drive with each run's segmentation over it, and how much each run **flickers**: the share of pixels "
         "whose class changes from one frame to the next once the motion (optical flow) is taken out. "
         "Temporal consistency (TC) is the mIoU between a frame's prediction and the previous frame's, carried "
         "along by the flow; it needs no ground truth, and a model that predicts one class everywhere scores 1: "
         "read it beside mIoU.")


def sequence_ui(sequences: list) -> object:
    names = [sequence.name for sequence in sequences]
    by_name = {sequence.name: sequence for sequence in sequences}
    wanted = st.query_params.get("sequence")
    if wanted in by_name and SEQUENCE_KEY not in st.session_state:
        st.session_state[SEQUENCE_KEY] = wanted
    name = st.sidebar.selectbox("Sequence", names, key=SEQUENCE_KEY, format_func=lambda n: sequence_label(by_name[n]))
    st.query_params["sequence"] = name
    return by_name[name]


def runs_ui(available: list[str], labels: dict[str, str]) -> list[str]:
    """Up to ``MAX_RUNS`` of the runs that predicted the sequence (at first those of ``?runs=a,b``
    that did, else the first two); a choice made for another sequence keeps the runs this one has too."""
    wanted = [run for run in (st.query_params.get("runs") or "").split(",") if run in available]
    default = wanted[:MAX_RUNS] or available[:min(2, MAX_RUNS)]
    if RUNS_KEY in st.session_state:
        chosen = st.session_state[RUNS_KEY]
        kept = [run for run in chosen if run in available]
        if kept != chosen:
            st.session_state[RUNS_KEY] = kept
        default = None  # the session's choice stands
    return st.sidebar.multiselect(f"Runs (up to {MAX_RUNS})", available, default=default, key=RUNS_KEY,
                                  max_selections=MAX_RUNS, format_func=lambda run: labels.get(run, run))


def settings_ui() -> tuple[float, str]:
    fps = st.sidebar.select_slider("Frames per second", options=[5, 10, 17, 25, 30], value=17, key=FPS_KEY,
                                   help="Cityscapes was recorded at 17 frames per second")
    layout = st.sidebar.radio("Layout", ["grid", "row"], key=LAYOUT_KEY, horizontal=True)
    return float(fps), layout


def missing_note(sequence, missing: list[str], sources: dict[str, str]) -> None:
    if not missing:
        return
    commands = "\n".join(predict_command(run, sequence.name, sources.get(run, "trained")) for run in missing)
    st.info(f"{len(missing)} run{'s' * (len(missing) != 1)} without predictions of {sequence.name}: "
            "make them with")
    st.code(commands, language="bash")


def video_section(key, sequence, runs: list[str], classes: str, fps: float, layout: str) -> None:
    path = drives.video_path(key, sequence, runs, fps, layout)
    if not path.is_file():
        bar = st.progress(0.0, text=f"Rendering {len(sequence)} frames...")
        try:
            drives.render(key, sequence, runs, classes, fps, layout,
                          progress=lambda done, total: bar.progress(done / total,
                                                                    text=f"Rendering frame {done} of {total}"))
        except ImportError as error:  # PyAV (requirements.txt's av) is not in this environment
            bar.empty()
            st.warning(f"Videos cannot be rendered here: {error.name or 'av'} is not installed "
                       "(`pip install av`, pinned in requirements.txt). The numbers and frames below do not need it.")
            return
        except (ArtifactError, DatasetError, ValueError, OSError) as error:
            bar.empty()
            st.error(f"The video cannot be rendered: {store.readable(error, key)}")
            return
        bar.empty()
    # Playing by itself, silent (a drive has no sound; browsers play only muted videos unasked) and
    # in a loop: a 30-frame snippet lasts under two seconds.
    st.video(str(path), autoplay=True, muted=True, loop=True)


def flicker_chart(documents: dict[str, dict], labels: dict[str, str]) -> str:
    """Each run's flicker rate per consecutive pair, as an inline SVG (no plotly: its script, loaded
    the first time a browser shows a plotly chart, held the video's start back by most of a second)."""
    frame = flicker_frame(documents)
    series = []
    for run, rows in frame.groupby("run", sort=False):
        name = labels.get(run, run)
        flicker = [None if pd.isna(value) else float(value) for value in rows[FLICKER]]
        miou = [None if pd.isna(value) else float(value) for value in rows["pair mIoU"]]
        hovers = [f"{name}\nframe {number}: flicker {'n/a' if value is None else f'{value:.2%}'}, "
                  f"mIoU with the previous frame {'n/a' if pair is None else f'{pair:.3f}'}"
                  for number, value, pair in zip(rows["frame"], flicker, miou)]
        series.append((name, [int(number) for number in rows["frame"]], flicker, hovers))
    return line_chart_svg(series, COLORS, "frame", "pixels whose class changed",
                          label="Flicker between consecutive frames")


def frame_section(key, sequence, runs: list[str], classes: str) -> None:
    numbers = sequence.frame_numbers
    annotated = sequence.annotated_position
    default = numbers[annotated] if annotated is not None else numbers[0]
    if st.session_state.get(FRAME_KEY, default) not in numbers:  # a frame of the sequence shown before
        del st.session_state[FRAME_KEY]
    number = st.select_slider("Frame", options=numbers, value=default, key=FRAME_KEY)
    position = numbers.index(number)
    dataset = store.dataset(key)
    path = dataset.root / sequence.paths[position]
    try:
        photo = drives.frame_photo(str(path), file_stamp(path))
    except DatasetError as error:
        st.error(f"Frame {number} cannot be shown: {store.readable(error, key)}")
        return
    if position == annotated and sequence.annotated_id is not None:
        st.markdown(f"Frame {number} is the annotated frame {sequence.annotated_stem}: "
                    f"[open it in the Image explorer]({explorer_url(sequence.annotated_id, runs)}) "
                    "with its ground truth.")
    elif annotated is not None and sequence.annotated_id is not None:
        st.caption(f"The annotated frame is {numbers[annotated]} ({sequence.annotated_stem}).")
    class_set = get_class_set(classes)
    # At display size: a 2048x1024 frame sent whole to 1 + 4 columns cost the page most of its time.
    factor = display_factor(photo.shape[1], display_width())
    shown = shrink_photo(photo, factor)
    columns = st.columns(1 + len(runs))
    columns[0].image(shown, caption=f"photo, frame {number}", width="stretch")
    for column, run in zip(columns[1:], runs):
        try:
            predicted = drives.frame_prediction(key, run, sequence.name, number)
        except ArtifactError as error:
            column.warning(store.readable(error, key))
            continue
        if predicted.shape != photo.shape[:2]:
            column.warning(f"run {run}: the prediction of frame {number} is {predicted.shape[1]}x"
                           f"{predicted.shape[0]}, the photo {photo.shape[1]}x{photo.shape[0]}")
            continue
        column.image(overlay(shown, class_set.colorize(shrink_classes(predicted, factor))), caption=run,
                     width="stretch")
    if factor > 1:
        st.caption(f"Shown at {shown.shape[1]}x{shown.shape[0]} (the frame is {photo.shape[1]}x{photo.shape[0]}); "
                   "the Image explorer zooms into the annotated frame's own pixels.")


def main() -> None:
    started = page.start("Drive", INTRO)
    key, table, labels = started.key, started.table, started.labels
    page.dataset(key)  # stops with what is wrong when the dataset cannot be opened
    sequences, problems = drives.sequences(key)
    if not sequences:
        st.info("The dataset has no drive sequence (`leftImg8bit_sequence/` snippets or "
                "`leftImg8bit/demoVideo/` drives). `python -m training data make` writes embedded ones; "
                "`make demo` has them.")
        st.stop()
    if problems:
        st.sidebar.caption(f"{len(problems)} problem{'s' * (len(problems) != 1)} with the sequences: "
                           "`python -m training data check` names them.")
    sequence = sequence_ui(sequences)
    available = drives.runs_with(key, list(table["run"]), sequence.name)
    missing_note(sequence, [run for run in table["run"] if run not in available],
                 dict(zip(table["run"], table["source"])) if "source" in table else {})
    if not available:
        st.stop()
    runs = runs_ui(available, labels)
    fps, layout = settings_ui()
    if not runs:
        st.info("Choose at least one run.")
        st.stop()
    documents = {}
    for run in runs:
        try:
            documents[run] = drives.temporal(key, run, sequence.name)
        except ArtifactError as error:
            st.warning(f"Run {run} is left out: {store.readable(error, key)}")
    classes = {document.get("classes") for document in documents.values()}
    if len(classes) > 1:
        first = next(iter(documents.values())).get("classes")
        left = [run for run, document in documents.items() if document.get("classes") != first]
        st.warning(f"One video shows one class set: {', '.join(left)} (another class set than {first}) left out.")
        documents = {run: document for run, document in documents.items() if run not in left}
    if not documents:
        st.stop()
    runs = list(documents)
    classes = next(iter(documents.values())).get("classes") or "categories8"
    st.subheader(f"{sequence.name}: {len(sequence)} frames")
    video_section(key, sequence, runs, classes, fps, layout)
    st.subheader("Flicker between consecutive frames")
    st.markdown(markdown_block(flicker_chart(documents, labels)), unsafe_allow_html=True)
    st.subheader("Temporal consistency per class")
    st.markdown(tc_markdown(tc_table(documents), labels))
    st.subheader("One frame")
    frame_section(key, sequence, runs, classes)


main()
