"""Helpers of the dashboard's AppTest tests: opening a page, every text a page shows, and a
stand-in for the segmentation API (the Deployed model page needs one to show anything of the
store) that answers like the API from a run's files."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGES = {"overview": "app_pages/overview.py", "explorer": "app_pages/explorer.py",
         "comparison": "app_pages/comparison.py", "deployed": "app_pages/deployed.py",
         "anatomy": "app_pages/anatomy.py", "labels": "app_pages/labels_check.py",
         "gallery": "app_pages/gallery.py", "tags": "app_pages/tags.py", "drive": "app_pages/drive.py"}


def open_page(page: str, query_params: dict | None = None) -> AppTest:
    """The app opened on ``page`` (a key of ``PAGES``), the URL holding ``query_params``."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query_params or {})
    at.run()
    if page != "overview":
        at.switch_page(PAGES[page]).run()
    return at


def shown_text(at: AppTest) -> str:
    """Everything the page sends to the browser (every element's message, tables and charts
    included), as one string: to look for what must never be shown, such as an absolute path."""
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def notes(at: AppTest) -> str:
    """The text of every warning, error, info, caption and markdown (body and sidebar)."""
    elements = [*at.warning, *at.error, *at.info, *at.caption, *at.markdown]
    return "\n".join(str(element.value) for element in elements)


def image_captions(at: AppTest) -> list[str]:
    """The captions of the pictures shown: each ``st.image``'s, and the titles of the panels of the
    explorer's side-by-side view (one plotly figure; ``layout.meta["panels"]``)."""
    captions = [caption for image in at.image for caption in image.captions]
    for chart in at.get("plotly_chart"):
        meta = json.loads(chart.proto.spec).get("layout", {}).get("meta")
        captions += meta.get("panels", []) if isinstance(meta, dict) else []
    return captions


def point_dashboard_at(monkeypatch, artifacts, data_root) -> None:
    """The environment a dashboard test runs in: this run store and dataset, and no API (a
    closed port, so the Deployed page shows its 'API down' state)."""
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(data_root))
    monkeypatch.setenv("SEGMENTATION_API_URL", "http://127.0.0.1:9")


# ---------------------------------------------------------------------------- a stand-in API

def _png(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@contextmanager
def fake_api(run: str = "tiny_simple", class_names=("void", "flat"), colors=((0, 0, 0), (128, 64, 128))):
    """An HTTP server on a free loopback port that answers ``/health`` and
    ``/api/images/<id>/segmentation`` as the API does (16 x 32 pictures); yields its URL."""
    picture = _png(np.zeros((16, 32, 3), dtype=np.uint8))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                self._json({"status": "ok", "run": run, "model_loaded": True})
            elif match := re.fullmatch(r"/api/images/(\d+)/segmentation(\?.*)?", self.path):
                self._json({
                    "run": run, "image_id": int(match.group(1)), "model": "simple", "classes": "categories8",
                    "class_names": list(class_names), "colors": [list(c) for c in colors],
                    "ground_truth": {"color_png": picture}, "prediction": {"color_png": picture},
                    "iou": {name: 0.5 for name in class_names}, "miou": 0.5, "pixel_accuracy": 0.75,
                    "inference_ms": 1.5, "width": 32, "height": 16, "cached": False})
            else:
                self.send_error(404)

        def _json(self, payload):
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


# ---------------------------------------------------------------------------- imported runs

IMPORTED_C8, IMPORTED_C19 = "imported_c8", "imported_c19"
IMPORTED_C8_MS = 7.5  # the inference time given at import
CAR_LABEL_ID, ROAD_LABEL_ID = 26, 7


def imported_predictions(data_root: Path, out: Path, classes: str, covered: int) -> list[int]:
    """Prediction PNGs of another tool for the first ``covered`` test images of the tiny dataset,
    written from their ground truth with known mistakes; returns the ids they cover.

    categories8 (labelIds): the two leftmost columns of every car predicted as road.
    cityscapes19 (trainIds): every car pixel predicted as 255, "no class".
    """
    from training.data.cityscapes import read_label_ids
    from training.data.index import load_or_build_index
    from training.data.labels import get_class_set

    index = load_or_build_index(data_root, write=False, report=lambda message: None)
    entries = index.split("test")[:covered]
    out.mkdir(parents=True)
    for entry in entries:
        label_ids = read_label_ids(data_root / entry.label)
        if classes == "categories8":
            predicted = label_ids.copy()
            columns = np.flatnonzero((label_ids == CAR_LABEL_ID).any(axis=0))[:2]
            car_rows = label_ids[:, columns] == CAR_LABEL_ID
            predicted[:, columns] = np.where(car_rows, ROAD_LABEL_ID, label_ids[:, columns])
        else:
            predicted = get_class_set("cityscapes19").lut[label_ids]  # trainIds, 255 where no class
            predicted[label_ids == CAR_LABEL_ID] = 255
        Image.fromarray(predicted.astype(np.uint8)).save(out / f"{entry.stem}_prediction.png")
    return [entry.id for entry in entries]


def add_imported_runs(artifacts: Path, data_root: Path, scratch: Path) -> dict[str, list[int]]:
    """Two imported runs published into ``artifacts`` by ``import_predictions`` itself:
    ``IMPORTED_C8`` (categories8, 3 of the 4 test images, inference time given) and
    ``IMPORTED_C19`` (cityscapes19, 2 of 4, with "no class" pixels). Returns the ids each covers."""
    from training.runs.imported import import_predictions

    covered = {}
    for name, classes, count, image_format, extra in (
            (IMPORTED_C8, "categories8", 3, "labelIds", {"model": "othernet", "inference_ms": IMPORTED_C8_MS}),
            (IMPORTED_C19, "cityscapes19", 2, "trainIds", {})):
        covered[name] = imported_predictions(data_root, scratch / name, classes, count)
        run_dir, _ = import_predictions(scratch / name, name, data_root, classes=classes, format=image_format,
                                        artifacts=artifacts, workers=1, progress=False, **extra)
        assert run_dir.name == name
    return covered


# ---------------------------------------------------------------------------- known predictions and confidence

CALIBRATION_PAGE = "app_pages/calibration.py"  # not in PAGES: the damaged-store tests check PAGES' pictures
WRONG_COLUMNS = (2, 5, 9, 1)  # per test image, in id order: the leftmost columns the second run gets wrong
IMPORTED_WORSE = "imported_worse"


def _known_masks(data_root: Path):
    """(entry, ground truth in categories8 classes, the right prediction, the worse one, wrong columns)
    for each test image of the tiny dataset."""
    from training.data.cityscapes import read_label_ids
    from training.data.index import load_or_build_index
    from training.data.labels import get_class_set

    class_set = get_class_set("categories8")
    index = load_or_build_index(data_root, write=False, report=lambda message: None)
    entries = index.split("test")
    assert len(entries) == len(WRONG_COLUMNS)
    for entry, columns in zip(entries, WRONG_COLUMNS):
        truth = class_set.lut[read_label_ids(data_root / entry.label)]
        right = np.where(truth == 255, 0, truth).astype(np.uint8)  # a prediction names a class everywhere
        worse = right.copy()
        worse[:, :columns] = (right[:, :columns] + 1) % class_set.num_classes
        yield entry, truth, right, worse, columns


def add_imported_worse(artifacts: Path, data_root: Path, scratch: Path) -> str:
    """The worse predictions of ``write_known_outputs`` published by ``import_predictions`` (as
    labelIds, one per class): a run whose every file its evaluation wrote agrees with them, and
    whose images differ (a few columns wrong or many), so its pooled and per-image mIoU differ."""
    from training.data.labels import get_class_set
    from training.runs.imported import import_predictions

    lut = get_class_set("categories8").lut
    label_of_class = np.array([int(np.flatnonzero(lut == c)[0]) for c in range(8)], dtype=np.uint8)
    scratch.mkdir(parents=True)
    for entry, _, _, worse, _ in _known_masks(data_root):
        Image.fromarray(label_of_class[worse]).save(scratch / f"{entry.stem}_prediction.png")
    run_dir, _ = import_predictions(scratch, IMPORTED_WORSE, data_root, classes="categories8", format="labelIds",
                                    artifacts=artifacts, workers=1, progress=False)
    assert run_dir.name == IMPORTED_WORSE
    return IMPORTED_WORSE


def write_known_outputs(artifacts: Path, data_root: Path, run_a: str, run_b: str) -> dict[int, int]:
    """Rewrites two categories8 runs' outputs for the test images of the tiny dataset, as their
    evaluation writes them (palette / grey PNGs): ``run_a`` predicts the ground truth exactly;
    ``run_b`` the ground truth with its ``WRONG_COLUMNS`` leftmost columns wrong (another class), so
    the images where B gets worse rank neither by id nor backwards; ``run_b``'s confidence rises from
    0 (left) to 1 (right), and its metrics.json's calibration block is recomputed from these files by
    the evaluation's own functions. Returns image id -> wrong columns of ``run_b``."""
    import json

    from training.data.labels import get_class_set
    from training.evaluation.calibration import calibration_counts, summarize_calibration

    class_set = get_class_set("categories8")
    k = class_set.num_classes
    palette = class_set.palette().reshape(-1).tolist()
    counts, sums, wrong = 0, 0, {}
    for entry, truth, right, worse, columns in _known_masks(data_root):
        confidence = np.broadcast_to(np.rint(np.linspace(0, 255, truth.shape[1])).astype(np.uint8), truth.shape)
        for run, predicted in ((run_a, right), (run_b, worse)):
            image = Image.fromarray(predicted, mode="P")
            image.putpalette(palette)
            image.save(artifacts / "runs" / run / "predictions" / f"{entry.id}.png")
        Image.fromarray(np.ascontiguousarray(confidence), mode="L").save(
            artifacts / "runs" / run_b / "confidence" / f"{entry.id}.png")
        image_counts, image_sums = calibration_counts(truth, worse, np.ascontiguousarray(confidence), k)
        counts, sums = counts + image_counts, sums + image_sums
        wrong[entry.id] = columns
    metrics_path = artifacts / "runs" / run_b / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["calibration"] = summarize_calibration(counts, sums)
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return wrong
