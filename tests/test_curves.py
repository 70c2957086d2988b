"""Which runs share a training-curve chart (``dashboard.curves``)."""

from dashboard.views.curves import LOSS, MIOU, UNKNOWN_LOSS, CurveChart, curve_charts

SOURCE = ["09_smunet_efficientnetb3-imagenet_dice_v1_128x256", "04_unet_scratch_cce_v1_128x256",
          "10_smfpn_efficientnetb3-imagenet_dice_v1_128x256", "13_unet_scratch_cce_dice_v1_128x256"]


def test_losses_one_chart_per_loss_type_and_the_miou_of_all_runs_together():
    loss_of = {SOURCE[0]: "dice", SOURCE[1]: "cce", SOURCE[2]: "dice", SOURCE[3]: "cce_dice"}
    classes_of = dict.fromkeys(SOURCE, "categories8")
    assert curve_charts(SOURCE, loss_of, classes_of) == [
        CurveChart("mIoU", MIOU, tuple(SOURCE)),
        CurveChart("dice loss (Dice)", LOSS, (SOURCE[0], SOURCE[2])),
        CurveChart("cce loss (cross-entropy)", LOSS, (SOURCE[1],)),
        CurveChart("cce_dice loss (cross-entropy + Dice)", LOSS, (SOURCE[3],)),
    ]


def test_class_sets_are_never_mixed_and_a_run_without_a_loss_name_is_alone():
    runs = ["a", "b", "c", "d"]
    loss_of = {"a": "cce", "b": "cce", "c": "lovasz_xyz", "d": ""}  # d: an old run, c: a loss added later
    classes_of = {"a": "categories8", "b": "cityscapes19", "c": "categories8", "d": "categories8"}
    charts = curve_charts(runs, loss_of, classes_of)
    assert [(chart.title, chart.metric, chart.runs) for chart in charts] == [
        ("mIoU (categories8)", MIOU, ("a", "c", "d")),
        ("mIoU (cityscapes19)", MIOU, ("b",)),
        ("cce loss (cross-entropy) (categories8)", LOSS, ("a",)),
        ("cce loss (cross-entropy) (cityscapes19)", LOSS, ("b",)),
        ("lovasz_xyz loss (categories8)", LOSS, ("c",)),
        (f"{UNKNOWN_LOSS} (categories8)", LOSS, ("d",)),
    ]
    assert len({chart.key for chart in charts}) == len(charts)  # one widget key each
    assert curve_charts([], {}, {}) == []
