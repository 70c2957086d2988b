"""The outcome map of run A and run B on one image (A right and B wrong, the reverse, both wrong;
``training.evaluation.metrics.paired_outcomes``) at display size, drawn from the views the explorer
shows anyway and cached like the other pictures."""

from __future__ import annotations

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
from training.data.labels import get_class_set
from training.evaluation.metrics import paired_outcomes
from training.viz import outcome_picture as draw_outcomes


def outcome_picture(image: pictures.ImageRef, run_a: pictures.RunRef, run_b: pictures.RunRef) -> bytes | None:
    """The outcome map of A and B on the image at display size (PNG: its colours stay exact), from
    the display-size views the explorer shows anyway; None when either has no prediction to show."""
    photo = pictures.photo_view(image)
    views = [pictures.prediction_view(image, run) for run in (run_a, run_b)]
    if any(view is None or view.problem for view in views):
        return None

    def compute() -> bytes:
        truth = photo.truth(get_class_set(run_a.classes))
        return display.encode_png(draw_outcomes(photo.photo, paired_outcomes(truth, views[0].classes,
                                                                             views[1].classes)))

    return pictures.cache().get_or_compute(("outcomes", image, run_a, run_b), compute)
