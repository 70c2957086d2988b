"""Flask service for the deployed segmentation model: ``create_app(test_config)``.

Settings (``app.config``; environment variables prefixed ``SEGAPI_`` override the defaults,
e.g. ``SEGAPI_RUN=my_run``; ``api.settings`` holds the defaults and refuses a wrong value):

- ``ARTIFACTS_DIR``: the run store (default ``$ARTIFACTS_DIR`` or ``artifacts/``);
- ``DATA_ROOT``: the dataset (default: the served run's ``data.root``, ``$CITYSCAPES_DATASET``, then
  the embedded dataset); with it set, the ids and the photos are served even when the deployed
  run is damaged;
- ``RUN``: serve this run instead of the one in ``artifacts/deployed.json``;
- ``EXPORT``: with ``RUN``, serve this TFLite export of it instead of its Keras model (``deploy RUN
  --export NAME`` records one in ``deployed.json``);
- ``MAX_CONTENT_LENGTH`` (bytes) and ``MAX_UPLOAD_PIXELS``: upload limits (413 beyond);
- ``MAX_DECODING_UPLOADS`` and ``UPLOAD_QUEUE_SECONDS``: uploads decoded at once per process, and
  how long another waits for its turn (503 after);
- ``CACHE_BYTES``: memory for cached predictions, responses and pictures;
- ``INPUT_CACHE_BYTES``: memory for decoded photos and labels, shared by the routes of an image;
- ``WARM_UP``: load the model and predict once when the app is created (gunicorn does).

Importing this package does not import TensorFlow; the first prediction does.
"""

from __future__ import annotations

from flask import Flask

import training  # noqa: F401  (import-time environment of the libraries, before anything else)


def create_app(test_config: dict | None = None) -> Flask:
    """The API's app.

    Raises:
        api.settings.SettingsError: a setting is wrong (the message names each, with its value).
    """
    from api import errors, routes_images, routes_meta, routes_predict, routes_sequences, serving, settings

    app = Flask(__name__)
    # "/api/images//segmentation" is a JSON 404, not an HTML redirect to a merged path (before any rule).
    app.url_map.merge_slashes = False
    app.config.from_mapping(settings.DEFAULTS)
    app.config.from_prefixed_env(settings.PREFIX)
    if test_config:
        app.config.update(test_config)
    settings.check_settings(app.config)

    errors.register_error_handlers(app)
    app.register_blueprint(routes_meta.bp)
    app.register_blueprint(routes_images.bp)
    app.register_blueprint(routes_predict.bp)
    app.register_blueprint(routes_sequences.bp)
    serving.init_app(app)
    return app
