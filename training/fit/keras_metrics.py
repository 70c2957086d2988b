"""The training-time mIoU: a streaming confusion matrix inside Keras.

Same definition as ``training/evaluation/metrics.py`` (argmax of the predicted probabilities, ground-truth
pixels equal to the ignore index left out, a class absent from both is left out of the mean),
so the mIoU Keras logs per epoch is the number the evaluation reports.

Under a ``tf.distribute`` strategy with several replicas (``mirrored``, ``multiworker``) each
replica sees a slice of the global batch: the counts of a batch are summed across replicas before
they are added, so every replica holds the confusion matrix of the whole batch and its mIoU is the
one of the run, not the mean of the replicas' own mIoUs (a ratio of sums, not a mean of ratios).
"""

from __future__ import annotations

import keras
from keras import ops

from training.data.labels import IGNORE_INDEX


@keras.saving.register_keras_serializable(package="training")
class StreamingMeanIoU(keras.metrics.Metric):
    """mIoU accumulated over batches.

    Args:
        num_classes: K.
        ignore_index: ground-truth value that is not counted (``IGNORE_INDEX``, 255).
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, name: str = "miou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.confusion = self.add_variable(shape=(self.num_classes, self.num_classes),
                                           initializer="zeros", dtype="float64", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        k = self.num_classes
        # Keras may hand the labels over as floats; round before comparing with the ignore index.
        labels = ops.reshape(ops.cast(ops.round(ops.cast(y_true, "float32")), "int32"), (-1,))
        predicted = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), (-1,))
        valid = ops.logical_and(ops.not_equal(labels, self.ignore_index),
                                ops.logical_and(labels >= 0, labels < k))
        pairs = ops.where(valid, labels * k + predicted, 0)
        counts = _sum_across_replicas(ops.bincount(pairs, weights=ops.cast(valid, "float64"), minlength=k * k))
        self.confusion.assign_add(ops.reshape(ops.cast(counts, "float64"), (k, k)))

    def result(self):
        true_positive = ops.diagonal(self.confusion)
        union = ops.sum(self.confusion, axis=0) + ops.sum(self.confusion, axis=1) - true_positive
        present = ops.cast(union > 0, "float64")
        iou = true_positive / ops.maximum(union, 1.0)
        return ops.cast(ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0), "float32")

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float64"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_index": self.ignore_index}


def _sum_across_replicas(counts):
    """``counts`` summed over the replicas of the running ``tf.distribute`` strategy (itself when
    there is one replica, or outside a replica context)."""
    if keras.backend.backend() != "tensorflow":
        return counts
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return counts
    return context.all_reduce(tf.distribute.ReduceOp.SUM, counts)
