"""Random COCO-style keypoint cases (GT + results) for OKS parity tests."""

from __future__ import annotations

import numpy as np


def random_case(rng: np.random.Generator, num_images: int = 8, num_keypoints: int = 17,
                num_categories: int = 1, crowd_rate: float = 0.1, score_decimals: int | None = 1,
                first_gt_id: int = 1, max_gt: int = 5, max_dets_per_gt: int = 3):
    """A GT dict and results list with perfect-ish, perturbed, missing and extra predictions,
    crowd GT, GT without labelled keypoints, images without GT or without predictions, and
    tied scores (scores rounded to `score_decimals`)."""
    K = num_keypoints
    images = [{"id": int(i)} for i in rng.choice(100000, num_images, replace=False)]
    anns, results = [], []
    next_id = first_gt_id

    def score() -> float:
        s = rng.random()
        return float(np.round(s, score_decimals) if score_decimals is not None else s)

    for image in images:
        for _ in range(rng.integers(0, max_gt + 1)):
            cx, cy = rng.uniform(50, 500, 2)
            w, h = rng.uniform(5, 250, 2)
            kpts = np.zeros((K, 3))
            kpts[:, 0] = cx + rng.uniform(-w / 2, w / 2, K)
            kpts[:, 1] = cy + rng.uniform(-h / 2, h / 2, K)
            vis = (rng.choice([0, 1, 2], K, p=[.3, .2, .5]) if rng.random() < .9
                   else np.zeros(K, dtype=int))
            kpts[:, 2] = vis
            kpts[vis == 0, :2] = 0
            category = int(rng.integers(1, num_categories + 1))
            anns.append({
                "id": next_id, "image_id": image["id"], "category_id": category,
                "keypoints": kpts.ravel().tolist(), "num_keypoints": int((vis > 0).sum()),
                "bbox": [cx - w / 2, cy - h / 2, w, h],
                "area": float(w * h * rng.uniform(.2, 1.)),
                "iscrowd": int(rng.random() < crowd_rate),
            })
            next_id += 1
            for _ in range(rng.integers(0, max_dets_per_gt + 1)):  # 0 = a missed instance
                det = kpts.copy()
                det[:, :2] += rng.normal(0, rng.choice([0.0, 1.0, 5.0, 20.0]), (K, 2))
                if vis.sum() == 0:
                    det[:, 0] = cx + rng.uniform(-w, w, K)
                    det[:, 1] = cy + rng.uniform(-h, h, K)
                det[:, 2] = rng.random(K)
                results.append({"image_id": image["id"], "category_id": category,
                                "keypoints": det.ravel().tolist(), "score": score()})
        for _ in range(rng.integers(0, 3)):  # extra predictions on nothing
            det = np.ones((K, 3))
            det[:, 0] = rng.uniform(0, 600, K)
            det[:, 1] = rng.uniform(0, 600, K)
            results.append({"image_id": image["id"],
                            "category_id": int(rng.integers(1, num_categories + 1)),
                            "keypoints": det.ravel().tolist(), "score": score()})
    categories = [{"id": c, "name": f"c{c}"} for c in range(1, num_categories + 1)]
    return {"images": images, "annotations": anns, "categories": categories}, results
