"""Deployed model: the API's health, its segmentation of a dataset image next to the ground truth
(with the measured round trip), and the segmentation of a photo you upload.

Everything on this page comes from the API (``dashboard.readers.api``), not from the run store:
it shows what a client of the service gets. When the API is down or answers an error the page
says so, with the URL it tried and the command that starts the API, never a stack trace.
"""

from __future__ import annotations

import hashlib

import streamlit as st
from PIL import UnidentifiedImageError

import dashboard.pictures.drawing as drawing
import dashboard.pictures.images as pictures
import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.state as state
from dashboard.readers.api import (
    SEGMENTATION_TTL_S,
    ApiProblem,
    api_base_url,
    fetch_health,
    fetch_segmentation,
    predict_upload,
)
from dashboard.views.numbers import number_text
from dashboard.views.per_class import iou_in_class_order, pixel_share_frame
from dashboard.views.text import plain
from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.evaluation.variants import MIOU
from training.viz import legend_html

ID_KEY, URL_ID = "deployed_id", "_deployed_url_id"  # the id box, and the URL's id when last written
START_HINT = "`make api` starts the API alone; `make demo` starts it beside this dashboard."
UPLOAD_TYPES = ["png", "jpg", "jpeg"]
UPLOAD_LIMIT_MB = 16  # the API's default MAX_CONTENT_LENGTH (16 MiB); beyond it the API answers 413
# At most four metrics a row, with short labels and values (the details in their help): five cut
# "72.2 ms/image" at a 1600 px window (wide layout, sidebar open).
METRICS_PER_ROW = 4


# ---------------------------------------------------------------------------- HTTP problems

def show_problem(problem: ApiProblem) -> None:
    text = f"{problem.message}\n\nURL tried: `{problem.url}`"
    if problem.unreachable:
        st.error(f"**The segmentation API is unreachable.** {text}\n\nStart it: {START_HINT} "
                 "The dashboard reads its address from `SEGMENTATION_API_URL` (or `api_url` in "
                 "Streamlit secrets).")
    else:
        st.warning(f"**The segmentation API answered with an error.** {text}")


# ---------------------------------------------------------------------------- what is shown

def milliseconds_text(milliseconds: float) -> str:
    """A duration short enough for a metric: whole ms from 10 ms up, one decimal below."""
    return f"{milliseconds:.0f} ms" if milliseconds >= 10 else f"{milliseconds:.1f} ms"


def mask_legend(answer: dict) -> str | None:
    """The legend of an uploaded photo's mask (``/api/predict``'s answer): the classes it holds,
    largest share first, each with its colour and share; None when the answer's class set is not
    one this dashboard knows (its colours would be guesses)."""
    if not store.known_class_set(str(answer.get("classes"))):
        return None
    class_set = get_class_set(answer["classes"])
    colors = dict(zip(class_set.names, class_set.colors))
    shares = pixel_share_frame(answer["class_pixels"])
    shares = shares[shares["share"] > 0]
    if not set(shares["class"]) <= set(colors):
        return None
    return legend_html([f"{name} {share:.0%}" if share >= 0.01 else f"{name} <1%"
                        for name, share in zip(shares["class"], shares["share"])],
                       [colors[name] for name in shares["class"]])


# ---------------------------------------------------------------------------- UI blocks

def health_ui(api: str) -> dict | None:
    """The API's health; None (after explaining) when it is unreachable or unhealthy."""
    st.subheader("Service")
    try:
        health = fetch_health(api)
    except ApiProblem as problem:
        show_problem(problem)
        return None
    columns = st.columns(METRICS_PER_ROW)
    columns[0].metric("API", "up" if health.get("status") == "ok" else str(health.get("status")))
    columns[1].metric("Model loaded", "yes" if health.get("model_loaded") else "not yet",
                      help="“Not yet”: the worker that answered loads the model on its first prediction.")
    # A run name is too long for a metric (it would be cut): it gets a line of its own.
    st.markdown(f"Served run: **{health.get('run') or 'none'}**")
    st.caption(f"API at {api} ([home page]({api}/), [OpenAPI]({api}/openapi.json)).")
    if health.get("problem"):
        st.warning(f"The API is up but cannot serve: {health['problem']}. "
                   "`python -m training deploy --best` deploys the best run.")
    return health


def image_id_ui(ids: list[int], default: int) -> int:
    """An id of the dataset, synchronised with ``?id=`` (shared with the explorer).

    The URL seeds the box only on the first visit or when the URL changed (a link, another page);
    then the box owns the value, so every id typed (or stepped with "+") is the one shown.
    """
    low, high = ids[0], ids[-1]
    url_id = state.selected_image_id(default)
    if not low <= url_id <= high:
        url_id = default
    if ID_KEY not in st.session_state or url_id != st.session_state.get(URL_ID):
        st.session_state[ID_KEY] = url_id
    chosen = int(st.number_input(f"Image id ({low} to {high})", min_value=low, max_value=high, step=1,
                                 key=ID_KEY))
    if st.query_params.get("id") != str(chosen):
        state.set_image_id(chosen)
    st.session_state[URL_ID] = chosen
    return chosen


def _class_picture(encoded: str) -> bytes:
    """An API picture of class colours at display size (nearest: every pixel a class colour)."""
    return drawing.class_picture(drawing.decode_png(encoded), drawing.display_width())


def segmentation_ui(api: str, image_id: int, photo: bytes | None) -> dict | None:
    """Photo (JPEG at display size), ground truth and the deployed model's prediction, as the API
    returns them."""
    try:
        with st.spinner(f"Asking the API for image {image_id}..."):
            answer, round_trip_ms = fetch_segmentation(api, image_id)
    except ApiProblem as problem:
        show_problem(problem)
        return None
    columns = st.columns(3)
    if photo is not None:
        columns[0].image(photo, caption=f"Photo {image_id}", width="stretch", output_format="JPEG")
    columns[1].image(_class_picture(answer["ground_truth"]["color_png"]), caption="Ground truth (API)",
                     width="stretch", output_format="PNG")
    columns[2].image(_class_picture(answer["prediction"]["color_png"]), output_format="PNG",
                     caption=f"Prediction of {answer['run']} (API)", width="stretch")
    st.markdown(legend_html(answer["class_names"], answer["colors"]), unsafe_allow_html=True)

    numbers = st.columns(METRICS_PER_ROW)
    numbers[0].metric("mIoU", number_text(answer.get("miou")),
                      help=f"This image's {MIOU.label()}: the mean IoU over the classes in its ground truth or in "
                           "the prediction")
    numbers[1].metric("Pixel accuracy", number_text(answer.get("pixel_accuracy")),
                      help="The share of the image's labelled pixels predicted right")
    numbers[2].metric("Round trip", milliseconds_text(round_trip_ms),
                      help=f"{round_trip_ms:.1f} ms, measured by the dashboard around the HTTP call (the first "
                           f"call for this id within {SEGMENTATION_TTL_S} s; later ones come from its cache)")
    numbers[3].metric("Inference", milliseconds_text(answer["inference_ms"]),
                      help=f"{answer['inference_ms']:.1f} ms on the server, as the API timed it: resizing the photo "
                           "to the model's input, the forward pass and upsampling the classes to the photo's size "
                           "(with any wait for another request's forward pass); not the upload, decoding or "
                           "the HTTP transfer (the round trip has them)")
    st.caption(f"Run **{answer['run']}** (model {plain(str(answer.get('model') or '?'))}), {answer['classes']}, "
               f"{answer['width']}x{answer['height']} px"
               + (", prediction from the API's cache" if answer.get("cached") else "") + ".")

    names = answer["class_names"]  # class order (JSON objects come back sorted by name)
    iou = iou_in_class_order(names, answer["iou"])
    st.dataframe(iou, hide_index=True, width="stretch",
                 column_config={"IoU": st.column_config.ProgressColumn(
                     "IoU (this image)", format="%.3f", min_value=0.0, max_value=1.0)})
    st.caption("Empty: the class is neither in the ground truth nor in the prediction "
               "(left out of the mean).")
    return answer


def dataset_image_ui(api: str) -> None:
    """Choose an image of the dataset; show what the API makes of it."""
    st.subheader("An image of the dataset")
    key = store.store_key()
    data = page.dataset(key)
    ids = [entry.id for entry in data.index.entries]
    if not ids:
        st.info("The dataset has no images.")
        st.stop()
    test = data.index.split("test")
    image_id = image_id_ui(ids, test[0].id if test else ids[0])
    if image_id not in data.index:
        st.warning(f"There is no image {image_id} in the dataset (ids have gaps where files were removed).")
        return
    entry = data.index[image_id]
    st.caption(f"Image {image_id}: {entry.stem}, split {entry.split}, city {entry.city}."
               + ("" if entry.split == "test" else " Not a test image: the model may have trained on it."))
    try:
        photo = pictures.photo_view(pictures.image_ref(key, image_id)).jpeg
    except (KeyError, OSError, DatasetError):  # a courtesy: the API's answer is the point here
        photo = None
    segmentation_ui(api, image_id, photo)


def upload_ui(api: str) -> dict | None:
    """Your own photo -> the deployed model's mask, at the photo's size."""
    st.subheader("Your own photo")
    upload = st.file_uploader("A street photo (PNG or JPEG, any size)", type=UPLOAD_TYPES,
                              max_upload_size=UPLOAD_LIMIT_MB)
    if upload is None:
        st.caption("The API resizes it for the model and returns the mask at the photo's own size.")
        return None
    data = upload.getvalue()
    try:
        photo = drawing.decode_image(data)
    except (UnidentifiedImageError, OSError, ValueError):
        photo = None  # the API judges it too, and explains

    # A POST is not cached: the answer is kept for this session, keyed by the photo's bytes.
    key = ("deployed_upload", api, hashlib.sha256(data).hexdigest())
    if st.session_state.get("deployed_upload_key") != key:
        try:
            with st.spinner("Segmenting your photo..."):
                result = predict_upload(api, upload.name, data, upload.type)
        except ApiProblem as problem:
            show_problem(problem)
            return None
        st.session_state["deployed_upload_key"] = key
        st.session_state["deployed_upload_result"] = result
    answer, round_trip_ms = st.session_state["deployed_upload_result"]

    columns = st.columns([2, 2, 1])  # the photo, its mask, the mask's legend
    if photo is not None:
        columns[0].image(photo, caption=f"{upload.name} ({photo.shape[1]}x{photo.shape[0]})", width="stretch")
    columns[1].image(drawing.decode_png(answer["color_png"]), caption=f"Prediction of {answer['run']}",
                     width="stretch")
    legend = mask_legend(answer)
    if legend:
        columns[2].markdown(legend, unsafe_allow_html=True)
        columns[2].caption("Share of the mask's pixels.")
    else:
        columns[2].caption(f"No legend: the API's class set {answer.get('classes')!r} is not one this "
                           "dashboard knows.")
    shares = pixel_share_frame(answer["class_pixels"])
    st.dataframe(shares, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.ProgressColumn(
                     "pixel share", format="percent", min_value=0.0, max_value=1.0)})
    st.caption(f"Round trip {round_trip_ms:.0f} ms, server inference {answer['inference_ms']:.1f} ms.")
    return answer


# ---------------------------------------------------------------------------- page

def main() -> None:
    st.title("Deployed model")
    st.markdown("What a client of the segmentation API gets: the deployed model's prediction for an "
                "image of the dataset next to its ground truth, or for a photo of your own.")
    api = api_base_url()
    if health_ui(api) is None:
        st.stop()
    dataset_image_ui(api)
    upload_ui(api)


main()
