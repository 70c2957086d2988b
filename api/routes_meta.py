"""The home page, the deployed model's card, the runs, health and the OpenAPI description."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template_string

from api.serving import serving
from training.runs.store import ArtifactError, list_runs
from training.runs.summary import deployed_name, run_summary

bp = Blueprint("meta", __name__)

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
on {{ run.metrics.get("classes") }}.</p>
{% else %}
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
    from api.errors import DEPLOY_HINT

    state = serving()
    try:
        run = state.run(required=False)
    except Exception:  # the home page explains, it never fails
        run = None
    example = None
    try:
        tests = state.dataset().index.split("test")
        example = tests[0].id if tests else None
    except Exception:
        example = None
    return render_template_string(HOME, run=run, hint=DEPLOY_HINT, example=example)


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
    try:
        run = state.run(required=False)
        name = run.name if run else None
    except Exception as error:  # liveness must answer even with a damaged store
        name, problem = None, str(error)
    else:
        problem = None if name else "no deployed run"
    return jsonify(status="ok", model_loaded=state.model_loaded, loaded_run=state.loaded_run,
                   run=name, problem=problem)


def _card(run, deployed: str | None = None) -> dict:
    """The run's summary (as the leaderboard and ``python -m training table`` show it) with its
    per-class numbers, dataset and versions."""
    metrics = run.metrics
    details = ("class_names", "iou", "iou_official", "dataset", "versions")
    return {**run_summary(run, deployed), **{key: metrics.get(key) for key in details}}


@bp.get("/api/model")
def model_card():
    """The deployed model.
    ---
    get:
      summary: The deployed run's card (config summary and metrics)
      responses:
        200: {description: The card, content: {application/json: {schema: {type: object}}}}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    run = state.run()
    return jsonify(**_card(run, deployed_name(state.artifacts)), config=state.run_config(run),
                   model_loaded=state.loaded_run == run.name)


@bp.get("/api/runs")
def runs():
    """All runs.
    ---
    get:
      summary: Every published run with its headline numbers
      responses:
        200: {description: The runs, content: {application/json: {schema: {type: object}}}}
    """
    state = serving()
    try:
        deployed = state.run(required=False)
    except Exception:
        deployed = None
    name = deployed.name if deployed else None
    rows = []
    for run in list_runs(state.artifacts):
        try:
            rows.append(_card(run, name))
        except ArtifactError as error:
            rows.append({"run": run.name, "error": str(error)})
    return jsonify(runs=rows, deployed=name)


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

