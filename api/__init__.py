"""Flask service for the deployed segmentation model: ``create_app(test_config)``.

Settings (``app.config``; environment variables prefixed ``SEGAPI_`` override the defaults,
e.g. ``SEGAPI_RUN=my_run``):

- ``ARTIFACTS_DIR``: the run store (default ``$ARTIFACTS_DIR`` or ``artifacts/``);
- ``DATA_ROOT``: the dataset (default: the served run's ``data.root``, ``$CITYSCAPES_DATASET``, then
  the embedded dataset);
- ``RUN``: serve this run instead of the one in ``artifacts/deployed.json``;
- ``EXPORT``: with ``RUN``, serve this TFLite export of it instead of its Keras model (``deploy RUN
  --export NAME`` records one in ``deployed.json``);
- ``MAX_CONTENT_LENGTH`` (bytes) and ``MAX_UPLOAD_PIXELS``: upload limits (413 beyond);
- ``CACHE_BYTES``: memory for cached predictions, responses and pictures;
- ``INPUT_CACHE_BYTES``: memory for decoded photos and labels, shared by the routes of an image;
- ``WARM_UP``: load the model and predict once when the app is created (gunicorn does).

Importing this package does not import TensorFlow; the first prediction does.
"""

from __future__ import annotations

from flask import Flask

import training  # noqa: F401  (import-time environment of the libraries, before anything else)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        ARTIFACTS_DIR=None,
        DATA_ROOT=None,
        RUN=None,
        EXPORT=None,
        MAX_CONTENT_LENGTH=16 * 2**20,
        MAX_UPLOAD_PIXELS=40_000_000,
        CACHE_BYTES=256 * 2**20,
        INPUT_CACHE_BYTES=96 * 2**20,
        WARM_UP=False,
    )
    app.config.from_prefixed_env("SEGAPI")
    if test_config:
        app.config.update(test_config)

    from api import errors, routes_images, routes_meta, routes_predict, serving

    errors.register_error_handlers(app)
    app.register_blueprint(routes_meta.bp)
    app.register_blueprint(routes_images.bp)
    app.register_blueprint(routes_predict.bp)
    serving.init_app(app)
    return app
