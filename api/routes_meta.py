"""The home page, the deployed model's card, the runs, health and the OpenAPI description."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template_string

from api.errors import DEPLOY_HINT, UNEXPECTED, ApiError, no_deployed_run
from api.serving import serving
from training.runs.health import inspect_run
from training.runs.layout import ArtifactError
from training.runs.reader import list_runs
from training.runs.summary import deployed_name, run_summary

bp = Blueprint("meta", __name__)
log = logging.getLogger(__name__)

HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Street-scene segmentation API</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;line-height:1.5}
code{background:#f3f3f3;padding:0 .25rem}</style></head>
<body>
<h1>Street-scene segmentation API</h1>
<p>Welcome. Give an image id, get its ground-truth segmentation and the one predicted by the
deployed model.</p>
{% if run %}
<p>Deployed model: <b>{{ run.name }}</b> ({{ run.metrics.get("model") }}{% if run.metrics.get("backbone") %},
{{ run.metrics.get("backbone") }}{% endif %}), test mIoU <b>{{ "%.3f"|format(run.metrics.get("miou") or 0) }}</b>
on {{ run.metrics.get("classes") }}{% if run.export %}, served from its TFLite export <code>{{ run.served_file }}</code>{% endif %}.</p>
{% endif %}
{% if problem %}
<p><b>The model cannot be served.</b> {{ problem }}</p>
{% elif not run %}
<p><b>No model is deployed.</b> {{ hint }}</p>
{% endif %}
<ul>
<li><a href="{{ url_for('images.list_images') }}">Image ids</a> <code>GET /api/images?split=test</code></li>
<li>Segmentation of an id: <code>GET /api/images/&lt;id&gt;/segmentation</code>{% if example %}, e.g.
<a href="{{ url_for('images.segmentation', image_id=example) }}">id {{ example }}</a>
(<a href="{{ url_for('images.prediction_png', image_id=example, overlay=0.5) }}">as a picture</a>){% endif %}</li>
<li>Your own photo: <code>POST /api/predict</code> (multipart field <code>image</code>)</li>
<li><a href="{{ url_for('meta.model_card') }}">The deployed model</a>,
<a href="{{ url_for('meta.runs') }}">all runs</a>, <a href="{{ url_for('meta.health') }}">health</a>,
<a href="{{ url_for('meta.openapi') }}">OpenAPI description</a></li>
</ul></body></html>"""


@bp.get("/")
def home():
    """Home page.
    ---
    get:
      summary: Welcome page with the deployed model and links to the routes
      responses:
        200: {description: HTML, content: {text/html: {schema: {type: string}}}}
    """
    state = serving()
    run, problem = _served_run(state)
    example = None
    try:
        tests = state.dataset_for(run).index.split("test") if problem is None else []
        example = tests[0].id if tests else None
    except ApiError:  # no dataset here: the page has no example link
        pass
    return render_template_string(HOME, run=run, problem=problem, hint=DEPLOY_HINT, example=example)


def _served_run(state):
    """(the run served, or None; what keeps it from being served, or None): the home page and
    /health explain a damaged store rather than fail with it."""
    try:
        run = state.run(required=False)
    except ApiError as error:
        return None, error.detail
    except Exception:  # liveness answers whatever happens; what did is in the log
        log.exception("cannot tell which run to serve")
        return None, UNEXPECTED
    return run, state.model_problem(run) if run else None


@bp.get("/health")
def health():
    """Liveness.
    ---
    get:
      summary: Liveness, and whether the model is loaded in this process
      responses:
        200: {description: Alive, content: {application/json: {schema: Health}}}
    """
    state = serving()
    run, problem = _served_run(state)
    if run is None and problem is None:
        problem = no_deployed_run().detail
    return jsonify(status="ok", model_loaded=state.model_loaded, loaded_run=state.loaded_run,
                   run=run.name if run else None, problem=problem)


def _card(run, deployed: str | None = None) -> dict:
    """The run's summary (as the leaderboard and ``python -m training table`` show it) with its
    per-class numbers, dataset and versions; paths only by their folder's name.

    Raises:
        ArtifactError: metrics.json is missing or damaged.
    """
    metrics = run.metrics
    details = ("class_names", "iou", "iou_official", "dataset", "versions")
    return serving().paths.value({**run_summary(run, deployed), **{key: metrics.get(key) for key in details}})


@bp.get("/api/model")
def model_card():
    """The deployed model.
    ---
    get:
      summary: The deployed run's card (config summary and metrics) and the model file served (served.file - model.keras or a TFLite export - with the export's quantisation, size, latency and scores)
      responses:
        200: {description: The card, content: {application/json: {schema: {type: object}}}}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    run = state.run()
    return jsonify(**_card(run, deployed_name(state.artifacts)), config=state.paths.value(state.run_config(run)),
                   model_loaded=state.model_loaded_for(run), served=state.served_model(run))


@bp.get("/api/runs")
def runs():
    """All runs.
    ---
    get:
      summary: Every published run with its headline numbers; a damaged one with what is wrong
      responses:
        200: {description: The runs, content: {application/json: {schema: {type: object}}}}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    deployed = deployed_name(state.artifacts)
    try:
        found = list_runs(state.artifacts)
    except OSError as error:  # the runs folder cannot be read, or a run vanished while it was listed
        raise state.unavailable(error, "run store unavailable", "let the server read the run store") from None
    return jsonify(runs=[_row(state, run, deployed) for run in found], deployed=deployed)


def _row(state, run, deployed: str | None) -> dict:
    """A run's card, or ``{"run", "error"}`` saying what keeps it from being shown: the listing
    answers whatever one run holds."""
    try:
        health = inspect_run(run)
        if health.ok:
            return _card(run, deployed)
        reason = health.reason
    except (ArtifactError, OSError) as error:  # a file that cannot be read at all, or damaged since
        reason = str(error)
    except Exception:  # nobody foresaw it: the other runs are still listed, the details are logged
        log.exception("run %s: cannot be listed", run.name)
        reason = "cannot be read; the details are in the server's log"
    return {"run": run.name, "error": state.paths.text(reason)}


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI description.
    ---
    get:
      summary: OpenAPI 3 description of this API
      responses:
        200: {description: OpenAPI document, content: {application/json: {schema: {type: object}}}}
    """
    from api.openapi import build_spec

    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["openapi"])

