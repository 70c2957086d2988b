"""The official ``evalPixelLevelSemanticLabeling`` (cityscapesScripts) on a folder of predictions,
exactly as ``csEvalPixelLevelSemanticLabeling`` runs it, with two adjustments:

* cityscapesscripts 2.3.0 calls ``numpy.in1d``, which numpy 2.4 removed; it is put back as
  ``numpy.isin`` (the same values: the script reshapes the result itself);
* the instance-level score (iIoU) needs ``gtFine/*_instanceIds.png``; without them it is
  switched off instead of failing. Its result file goes into the results folder, not the dataset.

    .venv/bin/python scripts/official_pixel_eval.py --data-root ROOT --results results/

The ground truth is every ``gtFine/val/*/*_gtFine_labelIds.png`` of ROOT (the script's own
rule); each prediction is found under ``--results`` by ``<city>_<seq>_<frame>*.png``
(``python -m training export-predictions RUN --out results/`` writes that layout).
"""

import argparse
import glob
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="dataset in the Cityscapes layout")
    parser.add_argument("--results", required=True, help="folder of prediction PNGs (labelIds)")
    args = parser.parse_args()
    os.environ["CITYSCAPES_DATASET"] = args.data_root
    os.environ["CITYSCAPES_RESULTS"] = args.results
    os.environ["CITYSCAPES_EXPORT_DIR"] = args.results

    import numpy

    if not hasattr(numpy, "in1d"):
        numpy.in1d = numpy.isin
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    labels = glob.glob(official.args.groundTruthSearch)
    official.args.evalInstLevelScore = bool(labels) and all(
        os.path.exists(path.replace("_labelIds.png", "_instanceIds.png")) for path in labels)
    official.args.colorized = False
    sys.argv = sys.argv[:1]  # the official main reads file lists from argv; we use its search
    official.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
