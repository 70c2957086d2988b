import numpy as np
import pytest

from training.evaluation.metrics import confusion_matrix, iou_per_class, mean_iou
from training.fit.keras_metrics import StreamingMeanIoU


def _probabilities(classes: np.ndarray, k: int, rng) -> np.ndarray:
    logits = rng.random((*classes.shape, k)).astype(np.float32)
    logits[..., :] += 3.0 * np.eye(k, dtype=np.float32)[classes]
    return logits / logits.sum(-1, keepdims=True)


def test_streaming_miou_equals_the_numpy_metric_over_batches():
    rng = np.random.default_rng(0)
    k = 5
    metric = StreamingMeanIoU(k)
    total = np.zeros((k, k), np.int64)
    for _ in range(3):
        truth = rng.integers(0, k, (2, 6, 7)).astype(np.uint8)
        truth[0, 0, :3] = 255
        predicted = rng.integers(0, k, truth.shape)
        metric.update_state(truth, _probabilities(predicted, k, rng))
        total += confusion_matrix(truth, predicted, k)
    np.testing.assert_allclose(metric.confusion.numpy(), total)
    assert float(metric.result()) == pytest.approx(mean_iou(iou_per_class(total)), abs=1e-6)


def test_absent_class_is_left_out_and_reset_clears():
    metric = StreamingMeanIoU(4)
    truth = np.array([[[0, 1]]], np.uint8)
    metric.update_state(truth.astype(np.float32), np.eye(4, dtype=np.float32)[truth])
    assert float(metric.result()) == pytest.approx(1.0)  # classes 2 and 3 absent: not zeros
    metric.reset_state()
    assert float(metric.confusion.numpy().sum()) == 0.0
    assert metric.get_config()["num_classes"] == 4
