"""OKS keypoint AP/AR through pycocotools: the reference oracle (METHOD.md §6).

COCO objects are built in memory from already-normalised dicts (see `coco_format`), and
pycocotools' progress prints are captured so they never reach the user's terminal.
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np

# The 10 numbers COCOeval.summarize() computes for keypoints, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")


def _coco_from_dict(dataset: dict[str, Any]):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def pycocotools_eval(gt: dict[str, Any], results: list[dict[str, Any]], sigmas: np.ndarray):
    """Run COCOeval (keypoints) and return it after evaluate + accumulate + summarize.

    gt: normalised GT dict; results: normalised result records; sigmas: (K,) OKS sigmas.
    """
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco_from_dict(copy.deepcopy(gt))
        if results:
            # loadRes writes id/area/bbox into the records: hand it copies.
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        else:
            # pycocotools cannot load an empty list; an empty result set scores like one.
            coco_dt = _coco_from_dict({"images": list(gt["images"]), "annotations": [],
                                       "categories": copy.deepcopy(gt["categories"])})
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def pycocotools_keypoint_stats(gt: dict[str, Any], results: list[dict[str, Any]],
                               sigmas: np.ndarray) -> dict[str, float]:
    """{AP, AP50, ..., AR_L} from pycocotools (-1 where undefined, as pycocotools)."""
    evaluator = pycocotools_eval(gt, results, sigmas)
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats, strict=True)}
