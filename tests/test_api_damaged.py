"""A damaged run store or dataset file: answers that need what is damaged are 503 with what is
wrong and the fix, the others are the answers themselves; never a 500, never a server path.

Each test damages a private copy of the tiny store (``api_fixtures.copy_store``).
"""

import html
import json
import os
import shutil

import pytest
import yaml
from api_fixtures import IMAGES, copy_store, png_bytes, random_rgb, truncate

from api import create_app
from training.data.index import load_or_build_index
from training.runs.reader import get_run


def _test_ids(store):
    return [e.id for e in load_or_build_index(store.data_root).split("test")]


def _as_folder(path):
    """A file that cannot be read at all (as one without read permission, which root ignores)."""
    path.unlink()
    path.mkdir()


def _with_latin1_note(path):
    """One more entry whose text is Latin-1, not UTF-8 (a file saved by another editor): the rest
    of the file is still valid JSON or YAML."""
    data = path.read_bytes()
    if path.suffix == ".json":
        path.write_bytes(data.rstrip()[:-1] + b', "note": "caf\xe9"}')
    else:
        path.write_bytes(data + b"note: caf\xe9\n")


def _edit_config(run, **data):
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"].update(data)
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def _edit_metrics(run, **values):
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **values}))


# name -> (damage to the store, what the answers name, /api/runs: the reason given for run "tiny"
# ("" when it is whole, None when it is gone), whether deployed.json still names it)
DAMAGES = {
    "truncated metrics.json": (lambda run, artifacts: truncate(run / "metrics.json"), "metrics.json",
                               "metrics.json is not valid JSON", True),
    "metrics.json holding a list": (lambda run, artifacts: (run / "metrics.json").write_text("[]"),
                                    "metrics.json holds a list", "metrics.json holds a list", True),
    "metrics.json a folder": (lambda run, artifacts: _as_folder(run / "metrics.json"), "metrics.json",
                              "metrics.json", True),
    "metrics.json not UTF-8": (lambda run, artifacts: _with_latin1_note(run / "metrics.json"),
                               "metrics.json is not UTF-8", "metrics.json is not UTF-8", True),
    "metrics.json with a miou that is not a number": (lambda run, artifacts: _edit_metrics(run, miou="high"),
                                                      "metrics.json: miou is 'high', not a number",
                                                      "metrics.json: miou is 'high', not a number", True),
    "deployed.json naming no run": (lambda run, artifacts: (artifacts / "deployed.json").write_text('{"run": 5}'),
                                    "deployed.json is damaged", "", False),
    "truncated deployed.json": (lambda run, artifacts: truncate(artifacts / "deployed.json"),
                                "deployed.json is damaged", "", False),
    "garbage config.yaml": (lambda run, artifacts: (run / "config.yaml").write_text("data: [unclosed\n\t{: :"),
                            "config.yaml is not valid YAML", "config.yaml is not valid YAML", True),
    "config.yaml not a mapping": (lambda run, artifacts: (run / "config.yaml").write_text("just words"),
                                  "config.yaml holds a str", "config.yaml holds a str", True),
    "config.yaml not UTF-8": (lambda run, artifacts: _with_latin1_note(run / "config.yaml"),
                              "config.yaml is not UTF-8", "config.yaml is not UTF-8", True),
    "config.yaml without a data section": (lambda run, artifacts: (run / "config.yaml").write_text("name: tiny"),
                                           "config.yaml has no data.height and data.width", "", True),
    "data.height 0": (lambda run, artifacts: _edit_config(run, height=0), "data.width are 0x32",
                      "data.width are 0x32", True),
    "data.height -128": (lambda run, artifacts: _edit_config(run, height=-128), "data.width are -128x32",
                         "data.width are -128x32", True),
    # 100000 x 100000 x 3 bytes would be a 30 GB warm-up picture: refused before anything is allocated
    "data.height and data.width 100000": (lambda run, artifacts: _edit_config(run, height=100_000, width=100_000),
                                          "data.width are 100000x100000", "data.width are 100000x100000", True),
    "data.classes [1]": (lambda run, artifacts: _edit_config(run, classes=[1]), "data.classes is [1]",
                         "data.classes is [1]", True),
    "missing model.keras": (lambda run, artifacts: (run / "model.keras").unlink(), "missing model.keras",
                            "missing model.keras", True),
    "deployed run deleted": (lambda run, artifacts: shutil.rmtree(run), "no run named 'tiny'", None, False),
}
MODEL_ROUTES = (("get", "/api/model"), ("get", "/api/images/{id}/segmentation"),
                ("get", "/api/images/{id}/prediction.png"), ("post", "/api/predict"))
# Routes that need the run's class set (not its model): 503 too, the classes are the run's.
CLASS_SET_ROUTES = ("/api/images/{id}", "/api/images/{id}/ground_truth.png")


@pytest.fixture
def damaged_copy(api_store, tmp_path):
    """A copy of the store with a second, whole run beside the deployed one, and a function
    that damages the copy."""
    private = copy_store(api_store, tmp_path)
    shutil.copytree(private.artifacts / "runs" / api_store.run, private.artifacts / "runs" / "whole")

    def damage(name: str):
        DAMAGES[name][0](private.artifacts / "runs" / api_store.run, private.artifacts)
        return create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root),
                           "WARM_UP": True}).test_client()  # warm-up must not stop the app either

    return private, damage


def _upload():
    return {"data": png_bytes(random_rgb(8, 8)), "content_type": "image/png"}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_store_is_503_with_the_fix_and_never_500(damaged_copy, api_store, damage):
    private, make_damage = damaged_copy
    client = make_damage(damage)
    _, named, reason, still_deployed = DAMAGES[damage]
    image_id = _test_ids(api_store)[0]
    for method, route in MODEL_ROUTES:
        kwargs = _upload() if method == "post" else {}
        response = getattr(client, method)(route.format(id=image_id), **kwargs)
        assert response.status_code == 503, (route, response.status_code, response.get_data()[:300])
        assert response.json["error"] == "run unavailable", route
        assert named in response.json["detail"] and "python -m training deploy" in response.json["detail"], route
        assert str(private.artifacts) not in response.json["detail"]
    for route in CLASS_SET_ROUTES:
        response = client.get(route.format(id=image_id))
        assert response.status_code == 503 and named in response.json["detail"], route
    # the ids and the photos need only the dataset (DATA_ROOT): they are served whatever the run
    listing = client.get("/api/images")
    assert listing.status_code == 200 and listing.json["total"] == IMAGES
    photo = client.get(f"/api/images/{image_id}/image.png")
    entry = load_or_build_index(private.data_root)[image_id]
    assert photo.status_code == 200 and photo.data == (private.data_root / entry.image).read_bytes()
    # liveness and the home page answer, and say what is wrong
    health = client.get("/health")
    assert health.status_code == 200 and health.json["status"] == "ok" and health.json["model_loaded"] is False
    assert named in health.json["problem"] and "python -m training deploy" in health.json["problem"]
    home = client.get("/")
    assert home.status_code == 200 and named in html.unescape(home.get_data(as_text=True))
    # every run is listed, a damaged one with its reason
    runs = client.get("/api/runs")
    assert runs.status_code == 200
    rows = {row["run"]: row for row in runs.json["runs"]}
    assert "error" not in rows["whole"] and rows["whole"]["miou"] == get_run("whole", private.artifacts).metrics["miou"]
    if reason is None:
        assert set(rows) == {"whole"}
    elif reason:
        assert reason in rows[api_store.run]["error"]
    else:
        assert "error" not in rows[api_store.run]
    assert runs.json["deployed"] == (api_store.run if still_deployed else None)


def test_a_model_file_that_does_not_load_is_503_without_the_servers_paths(damaged_copy, api_store):
    private, _ = damaged_copy
    (private.artifacts / "runs" / api_store.run / "model.keras").write_bytes(b"not a keras archive")
    client = create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root),
                         "WARM_UP": True}).test_client()
    response = client.get(f"/api/images/{_test_ids(api_store)[0]}/segmentation")
    assert response.status_code == 503 and response.json["error"] == "model unavailable"
    assert "model.keras" in response.json["detail"] and "python -m training deploy" in response.json["detail"]
    assert str(private.artifacts) not in response.json["detail"]
    health = client.get("/health").json
    assert health["problem"] == response.json["detail"] and health["model_loaded"] is False
    assert client.get("/api/model").json["model_loaded"] is False


def test_a_config_size_that_is_not_the_models_input_is_503(api_store, tmp_path):
    """config.yaml says 130x250, model.keras takes 16x32: every route that predicts is 503 naming
    both (it was a 500 from deep in Keras), the model is not served, and nothing else changes."""
    private = copy_store(api_store, tmp_path)
    _edit_config(private.artifacts / "runs" / api_store.run, height=130, width=250)
    client = create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root),
                         "WARM_UP": True}).test_client()
    image_id = _test_ids(api_store)[0]
    for method, route in (("get", f"/api/images/{image_id}/segmentation"), ("post", "/api/predict"),
                          ("get", f"/api/images/{image_id}/prediction.png")):
        response = getattr(client, method)(route, **(_upload() if method == "post" else {}))
        assert response.status_code == 503, (route, response.status_code, response.get_data()[:300])
        detail = response.json["detail"]
        assert "config.yaml" in detail and "130x250" in detail and "16x32" in detail and "model.keras" in detail
        assert str(private.artifacts) not in detail
    health = client.get("/health").json
    assert health["model_loaded"] is False and "130x250" in health["problem"]
    assert client.get(f"/api/images/{image_id}").status_code == 200  # the data routes need no model


def test_runs_lists_the_whole_runs_and_names_one_cut_inside_its_last_row(api_store, tmp_path):
    private = copy_store(api_store, tmp_path)
    shutil.copytree(private.artifacts / "runs" / api_store.run, private.artifacts / "runs" / "cut")
    history = private.artifacts / "runs" / "cut" / "history.csv"
    text = history.read_text()
    last_row = text.rstrip("\n").rsplit("\n", 1)[1]
    two_fields = ",".join(last_row.split(",")[:2])  # the header has 5: a write stopped inside the row
    history.write_text(text[: text.rindex(last_row) + len(two_fields)])
    client = create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root)}).test_client()
    response = client.get("/api/runs")
    assert response.status_code == 200
    rows = {row["run"]: row for row in response.json["runs"]}
    assert set(rows) == {api_store.run, "cut"}
    assert "error" not in rows[api_store.run]
    assert rows[api_store.run]["miou"] == get_run(api_store.run, private.artifacts).metrics["miou"]
    assert "history.csv" in rows["cut"]["error"] and str(private.artifacts) not in rows["cut"]["error"]


def test_runs_answers_whatever_reading_one_run_raises(api_store, tmp_path, monkeypatch):
    """/api/runs is total: a run whose reading fails in a way nobody foresaw is listed with a
    generic error (the details go to the log), and the other runs are listed as they are."""
    import api.routes_meta
    from training.runs.health import inspect_run

    private = copy_store(api_store, tmp_path)
    shutil.copytree(private.artifacts / "runs" / api_store.run, private.artifacts / "runs" / "odd")

    def inspect(run):
        if run.name == "odd":
            raise RuntimeError(f"unforeseen trouble in {run.path}")
        return inspect_run(run)

    monkeypatch.setattr(api.routes_meta, "inspect_run", inspect)
    client = create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root)}).test_client()
    response = client.get("/api/runs")
    assert response.status_code == 200
    rows = {row["run"]: row for row in response.json["runs"]}
    assert "error" not in rows[api_store.run] and rows["odd"]["error"]
    assert str(private.artifacts) not in rows["odd"]["error"]


# ---------------------------------------------------------------------------- dataset files that are not photos

@pytest.fixture
def photo_file(api_store, tmp_path):
    """(client, image id, path of its photo) on a private copy of the dataset, whose index the
    app has read: the photo is replaced after it was indexed (a new index leaves out a name that
    is no regular file)."""
    private = copy_store(api_store, tmp_path)
    image_id = _test_ids(api_store)[0]
    path = private.data_root / load_or_build_index(private.data_root)[image_id].image
    client = create_app({"ARTIFACTS_DIR": str(private.artifacts), "DATA_ROOT": str(private.data_root)}).test_client()
    assert client.get("/api/images").status_code == 200
    return client, image_id, path


def _assert_unavailable_photo(client, image_id, path):
    for route in (f"/api/images/{image_id}/image.png", f"/api/images/{image_id}"):
        response = client.get(route)
        assert response.status_code == 503 and response.json["error"] == "image unavailable", route
        assert path.name in response.json["detail"] and str(path.parent) not in response.json["detail"]
    assert client.get(f"/api/images/{image_id + 1}/image.png").status_code == 200  # the other photos


@pytest.mark.parametrize("kind", ["link to /dev/zero", "FIFO"])
def test_a_photo_that_is_not_a_regular_file_is_never_read(photo_file, kind):
    """A link to /dev/zero would be read forever (and fill the memory), a FIFO without a writer
    would block the request forever: both are refused from their file type."""
    client, image_id, path = photo_file
    path.unlink()
    if kind == "FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    _assert_unavailable_photo(client, image_id, path)


def test_a_photo_file_larger_than_any_photo_is_refused(photo_file, monkeypatch):
    client, image_id, path = photo_file
    monkeypatch.setattr("api.image_store.MAX_PHOTO_BYTES", 4096)  # a real limit is hundreds of MB
    path.write_bytes(path.read_bytes() + bytes(8192))  # a whole PNG, then more bytes than the limit
    _assert_unavailable_photo(client, image_id, path)
