"""What the prototype table says about skeletons (METHOD.md §1): cross-skeleton similarity of
keypoint types, best-match correspondences, a 2-D projection, per-pixel type assignment.

Similarity of two keypoint types is the largest |cos| between any of their prototypes,
max_{m,n} |<P_am, P_bn>|, the same absolute cosine the model scores pixels with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def type_similarity(prototypes: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """prototypes (J, M, F) unit vectors; rows (R,), cols (C,) global type ids -> (R, C) in [0, 1].
    """
    a = prototypes[rows]  # (R, M, F)
    b = prototypes[cols]  # (C, M, F)
    cosines = np.abs(np.einsum("rmf,cnf->rcmn", a, b))
    return cosines.reshape(len(rows), len(cols), -1).max(axis=-1)


def correspondences(similarity: np.ndarray, names_a: list[str], names_b: list[str]
                    ) -> list[dict[str, Any]]:
    """For each keypoint of A (rows), the best-matching keypoint of B (columns), its similarity
    and the runner-up margin (how clear the match is)."""
    matches = []
    for r, name in enumerate(names_a):
        order = np.argsort(-similarity[r])
        best = int(order[0])
        second = float(similarity[r, order[1]]) if len(order) > 1 else 0.0
        matches.append({"keypoint": name, "match": names_b[best],
                        "similarity": round(float(similarity[r, best]), 4),
                        "margin": round(float(similarity[r, best]) - second, 4)})
    return matches


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """points (N, F) -> (N, 2) coordinates on the two principal axes, and the fraction of
    variance each axis explains (2,)."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    explained = variance[:2] / max(variance.sum(), 1e-12)
    projected = centred @ vt[:2].T
    if projected.shape[1] < 2:  # F == 1
        projected = np.concatenate([projected, np.zeros((len(points), 1))], axis=1)
        explained = np.concatenate([explained, [0.0]])
    return projected, explained


def sign_canonical(prototypes: np.ndarray) -> np.ndarray:
    """(..., F) vectors with the sign flipped so the largest-magnitude entry is positive.

    The model scores |cos|, so p and -p are the same prototype; without this a projection would
    show one prototype as two mirrored points.
    """
    flat = prototypes.reshape(-1, prototypes.shape[-1])
    pivot = flat[np.arange(len(flat)), np.abs(flat).argmax(axis=1)]
    return (flat * np.where(pivot < 0, -1.0, 1.0)[:, None]).reshape(prototypes.shape)


@torch.no_grad()
def pixel_assignment(model, image: np.ndarray, type_ids: np.ndarray, dataset_index: int, *,
                     input_size: tuple[int, int], udp: bool, box_padding: float,
                     device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The best keypoint type of every pixel of `image` (whole-frame crop) among `type_ids`.

    image (H, W, 3) uint8 BGR. Returns labels (H, W) int64 positions into type_ids and
    similarity (H, W) float32 (max_m |cos| of the winning type), mapped back to image pixels.
    """
    import cv2

    from posebh_cli.data.affine import box_to_center_scale, warp_image, warp_matrix
    from posebh_cli.data.transforms import normalize_images

    height, width = image.shape[:2]
    center, scale = box_to_center_scale(np.array([0.0, 0.0, width, height]),
                                        input_size[1] / input_size[0], box_padding)
    matrix = warp_matrix(center, scale, 0.0, input_size, udp)
    crop = warp_image(image, matrix, input_size)
    batch = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)[2::-1]))[None]
    images = normalize_images(batch.to(device))
    embeddings = model.embedding_head(model.dataset_features(images, dataset_index))
    ids = torch.as_tensor(type_ids, dtype=torch.int64, device=device)
    similarity = model.prototype_table.similarity(embeddings, ids).amax(dim=2)[0]  # (T, h, w)
    best, labels = similarity.max(dim=0)  # (h, w)
    in_h, in_w = input_size
    # Heatmap grid -> network input (nearest keeps labels whole) -> image via the inverse crop.
    labels_in = cv2.resize(labels.cpu().numpy().astype(np.float32), (in_w, in_h),
                           interpolation=cv2.INTER_NEAREST)
    best_in = cv2.resize(best.cpu().numpy().astype(np.float32), (in_w, in_h),
                         interpolation=cv2.INTER_LINEAR)
    flags = cv2.WARP_INVERSE_MAP
    labels_img = cv2.warpAffine(labels_in, matrix, (width, height),
                                flags=cv2.INTER_NEAREST | flags)
    best_img = cv2.warpAffine(best_in, matrix, (width, height), flags=cv2.INTER_LINEAR | flags)
    return labels_img.round().astype(np.int64), best_img
