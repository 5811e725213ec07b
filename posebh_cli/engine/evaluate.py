"""Evaluate a model on one recipe dataset split: predictions, COCO results, metrics.

The ground truth is the split's own instances as COCO keypoints (`gt_from_table`), and the
predictions go through the reference post-processing (rescoring, OKS-NMS) and then
pycocotools (or PCK/AUC/EPE for hands) through posebh_cli.metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from posebh_cli.data.records import InstanceTable
from posebh_cli.engine.inference import (
    InferenceSettings,
    decode_to_image,
    predict_heatmaps,
    resolve_heatmap_decoder,
)
from posebh_cli.models.posebh import PoseBHModel
from posebh_cli.recipe import DatasetConfig, Recipe
from posebh_cli.skeletons import KeypointTypeTable

AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def eval_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """The training precision for inference too (fp16 only exists on CUDA)."""
    if precision == "fp16" and device.type != "cuda":
        return None
    return AUTOCAST[precision]


@dataclass
class Predictions:
    keypoints: np.ndarray  # (N, K, 2) image px
    scores: np.ndarray  # (N, K) heatmap peak values
    seconds: float

    @property
    def images_per_second(self) -> float:
        return len(self.keypoints) / max(self.seconds, 1e-9)


def predict_split(model: PoseBHModel, dataset: torch.utils.data.Dataset,
                  input_size: tuple[int, int], settings: InferenceSettings, *,
                  device: torch.device, batch_size: int, workers: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Run the model over every instance of a TopDownDataset (train=False), in order."""
    from posebh_cli.data.topdown_dataset import collate_pose_batch
    from posebh_cli.data.transforms import normalize_images

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=workers, collate_fn=collate_pose_batch,
                                         generator=torch.Generator().manual_seed(0))
    keypoints, scores, done = [], [], 0
    start = time.perf_counter()
    for batch in loader:
        images = normalize_images(batch["image"].to(device))
        heatmaps = predict_heatmaps(model, images, settings)
        xy, score = decode_to_image(heatmaps, batch["center"], batch["scale"], input_size,
                                    settings)
        keypoints.append(xy)
        scores.append(score)
        done += len(xy)
        if progress:
            progress(done, len(dataset))
    seconds = time.perf_counter() - start
    k = len(settings.flip_index)
    if not keypoints:
        return Predictions(np.zeros((0, k, 2)), np.zeros((0, k)), seconds)
    return Predictions(np.concatenate(keypoints), np.concatenate(scores), seconds)


def coco_results(table: InstanceTable, predictions: Predictions,
                 gt_boxes: bool = False) -> list[dict[str, Any]]:
    """COCO keypoint results, one record per predicted instance (box score in `score`).

    gt_boxes: the boxes are the ground truth's, so each record names its annotation (`ann_id`),
    which PCK needs to pair a prediction with its instance when an image holds several.
    """
    records = []
    for i in range(len(table)):
        kpts = np.concatenate([predictions.keypoints[i], predictions.scores[i][:, None]], axis=1)
        x, y, w, h = (float(v) for v in table.boxes[i])
        records.append({
            "image_id": int(table.image_ids[table.image_index[i]]),
            "category_id": int(table.category_ids[i]),
            "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
            "score": float(table.scores[i]),
            "bbox": [x, y, w, h],
            "area": float(table.areas[i]) if table.areas[i] > 0 else w * h,
        })
        if gt_boxes:
            records[-1]["ann_id"] = int(table.instance_ids[i])
    return records


def gt_from_table(table: InstanceTable) -> dict[str, Any]:
    """The split's ground truth as an in-memory COCO keypoints dataset."""
    iscrowd = table.extras.get("iscrowd", np.zeros(len(table), dtype=np.int64))
    images = [{"id": int(image_id), "file_name": str(name), "height": int(size[0]),
               "width": int(size[1])}
              for image_id, name, size in zip(table.image_ids, table.image_files,
                                              table.image_sizes)]
    annotations = []
    for i in range(len(table)):
        kpts = table.keypoints[i]
        annotations.append({
            "id": int(table.instance_ids[i]),
            "image_id": int(table.image_ids[table.image_index[i]]),
            "category_id": int(table.category_ids[i]),
            "bbox": [float(v) for v in table.boxes[i]],
            "area": float(table.areas[i]),
            "iscrowd": int(iscrowd[i]),
            "keypoints": [float(v) for v in kpts.reshape(-1)],
            "num_keypoints": int((kpts[:, 2] > 0).sum()),
        })
    categories = [{"id": int(c), "name": str(c)} for c in sorted(set(table.category_ids.tolist()))]
    return {"images": images, "annotations": annotations, "categories": categories or
            [{"id": 1, "name": "instance"}]}


def evaluate_recipe_dataset(model: PoseBHModel, recipe: Recipe, types: KeypointTypeTable,
                            dataset: DatasetConfig, split: str, *, device: torch.device,
                            image_cache=None, flip_test: bool | None = None,
                            decoder: str | None = None, boxes: str | None = None,
                            progress: Callable[[int, int], None] | None = None,
                            return_records: bool = False) -> dict[str, Any]:
    """Predict and score one dataset split as the recipe defines it; returns the metrics report.

    With detection boxes the GT still comes from the split's annotations (boxes="gt" read).
    """
    from posebh_cli.engine.build import build_split, load_table
    from posebh_cli.metrics.score_results import score_results

    gt_table = load_table(dataset, split, boxes="gt")
    box_source = boxes or dataset.split(split).boxes
    if box_source == "gt":
        # GT boxes: predict for the instances with at least one labelled keypoint (§6).
        box_table = gt_table.select(gt_table.labelled_rows())
    else:
        box_table = load_table(dataset, split, boxes=box_source)
    data = build_split(recipe, types, dataset, split, train=False, image_cache=image_cache,
                       table=box_table)
    skeleton = types.skeleton(dataset.name)
    settings = InferenceSettings(
        dataset_index=types.dataset_index(dataset.name),
        flip_index=skeleton.flip_index,
        udp=dataset.encoding == "udp",
        heatmap_decoder=resolve_heatmap_decoder(recipe.eval.heatmap_decoder, dataset.encoding),
        flip_test=recipe.eval.flip_test if flip_test is None else flip_test,
        decoder=decoder or recipe.eval.decoder,
        autocast_dtype=eval_autocast(recipe.train.precision, device),
    )
    predictions = predict_split(model, data.dataset, tuple(recipe.model.input_size), settings,
                                device=device, batch_size=recipe.eval.batch_size,
                                progress=progress)
    records = coco_results(box_table, predictions, gt_boxes=box_source == "gt")
    report = score_results(gt_from_table(gt_table), records, skeleton.name, postprocess=True,
                           with_oks=skeleton.family == "hand",
                           gt_source=f"{dataset.name} {split}")
    report.update(dataset=dataset.name, split=split, decoder=settings.decoder,
                  flip_test=settings.flip_test, heatmap_decoder=settings.heatmap_decoder,
                  instances=len(box_table), images_per_second=predictions.images_per_second)
    if return_records:
        report["records"] = records
    return report
