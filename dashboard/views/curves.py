"""Training curves of several runs, shaped for charts: which runs share a chart, and what they are called.

A loss is only comparable with the same loss: cross-entropy (nats per pixel), Dice (1 - an
overlap, at most 1) and their sum live on different scales, so the losses come one chart per
loss type, titled with its name, and runs of one loss share its axis. mIoU means the same for
every run of a class set: the mIoU curves of all of them share one chart (one per class set, as
the rest of the comparison page never mixes class sets).

Plain functions of names (no Streamlit), like every module of ``dashboard.views``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MIOU, LOSS = "miou", "loss"  # history.csv's columns; the validation ones are "val_" + these
UNKNOWN_LOSS = "unknown loss"  # a run whose metrics.json does not name its loss

# How a chart's title spells a loss (``training.losses.LOSSES`` names them; the dashboard does not
# import the Keras side). A loss not listed here is titled with its own name.
LOSS_TITLES = {
    "cce": "cross-entropy",
    "dice": "Dice",
    "cce_dice": "cross-entropy + Dice",
    "soft_iou": "soft IoU",
    "lovasz": "Lovász-softmax",
    "lovasz_gaussian": "Lovász, Gaussian",
    "lovasz_gaussian_wide": "Lovász, wide Gaussian",
    "lovasz_fp": "Lovász, false positives",
    "lovasz_step": "Lovász, step",
}


@dataclass(frozen=True)
class CurveChart:
    """One chart: ``metric`` (a column of history.csv, its validation twin dashed) of ``runs``."""

    title: str
    metric: str
    runs: tuple[str, ...]

    @property
    def key(self) -> str:
        """A name for the chart's widget key, unique among the charts of one page."""
        return f"{self.metric}_{self.title}"


def loss_title(loss_name: str) -> str:
    spelled = LOSS_TITLES.get(loss_name)
    return f"{loss_name} loss" if spelled is None else f"{loss_name} loss ({spelled})"


def curve_charts(runs: Sequence[str], loss_of: Mapping[str, str], classes_of: Mapping[str, str]) -> list[CurveChart]:
    """The charts of the training curves of ``runs`` (in that order inside every chart): first the
    mIoU of all runs of a class set, then one chart per loss type (and class set, when the runs hold
    several), in the order the runs first name them. ``loss_of`` and ``classes_of`` map a run to its
    loss name and class set; a run without a loss name goes in an "unknown loss" chart of its own."""
    class_sets = list(dict.fromkeys(classes_of[run] for run in runs))
    several = len(class_sets) > 1

    def titled(title: str, classes: str) -> str:
        return f"{title} ({classes})" if several else title

    charts = [CurveChart(titled("mIoU", classes), MIOU, tuple(run for run in runs if classes_of[run] == classes))
              for classes in class_sets]
    groups: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        groups.setdefault((loss_of.get(run) or UNKNOWN_LOSS, classes_of[run]), []).append(run)
    for (loss, classes), members in groups.items():
        title = UNKNOWN_LOSS if loss == UNKNOWN_LOSS else loss_title(loss)
        charts.append(CurveChart(titled(title, classes), LOSS, tuple(members)))
    return charts
