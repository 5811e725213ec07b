"""Top-down prediction on arbitrary images and videos (`posebh predict`).

Crops follow the evaluation geometry exactly (box -> centre/scale with the recipe's padding,
no rotation, the dataset's UDP/standard affine), and heatmaps go through the same
`predict_heatmaps` / `decode_to_image` as `posebh eval`, so a box of a validation image gives
the keypoints evaluation scored.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from posebh_cli.data.affine import box_to_center_scale, warp_image, warp_matrix
from posebh_cli.data.image_cache import read_image, to_warp_layout
from posebh_cli.data.transforms import normalize_images
from posebh_cli.engine.evaluate import eval_autocast
from posebh_cli.engine.inference import (
    InferenceSettings,
    decode_to_image,
    predict_heatmaps,
    resolve_heatmap_decoder,
)
from posebh_cli.engine.load_run import LoadedRun
from posebh_cli.engine.smoothing import OneEuroFilter
from posebh_cli.engine.tracking import KeypointBoxTracker
from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_write_bytes, atomic_write_text
from posebh_cli.io.results import write_coco_results
from posebh_cli.skeletons import FAMILIES, get_skeleton
from posebh_cli.viz.skeleton_overlay import draw_pose

Progress = Callable[[int, "int | None"], None]
BoxesByKey = dict[int, tuple[np.ndarray, np.ndarray]]  # key -> boxes (N, 4) xywh, scores (N,)


@contextlib.contextmanager
def _stop_on_interrupt(enabled: bool):
    try:
        yield
    except KeyboardInterrupt:
        if not enabled:
            raise


def select_datasets(loaded: LoadedRun, spec: str | None) -> list[str]:
    """The run's datasets to predict from `--skeleton` (default: the run's first dataset).

    Each comma-separated entry is a dataset of the run, a skeleton family (human, animal, hand,
    wholebody: the first dataset of that family) or a skeleton name (its first dataset).
    """
    types = loaded.types
    if spec is None or not spec.strip():
        return [types.datasets[0]]
    chosen: list[str] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        if entry in types.datasets:
            match = [entry]
        elif entry in FAMILIES:
            match = [d for d, s in zip(types.datasets, types.skeletons) if s.family == entry]
        else:
            try:
                name = get_skeleton(entry).name
            except PosebhError:
                raise PosebhError(f"--skeleton {entry}: unknown; give a family "
                                  f"({', '.join(FAMILIES)}), a skeleton or a dataset of the "
                                  f"checkpoint: {loaded.describe_heads()}") from None
            match = [d for d, s in zip(types.datasets, types.skeletons) if s.name == name]
        if not match:
            raise PosebhError(f"--skeleton {entry}: the checkpoint has no head for it; it has "
                              f"{loaded.describe_heads()}")
        if match[0] not in chosen:
            chosen.append(match[0])
    if not chosen:
        raise PosebhError(f"--skeleton '{spec}': names no skeleton")
    return chosen


class PosePredictor:
    """Keypoints of boxes in an image, for chosen datasets (heads or prototype heatmaps)."""

    def __init__(self, loaded: LoadedRun, datasets: list[str], *, device: torch.device,
                 decoder: str = "heads", flip_test: bool | None = None) -> None:
        if decoder not in ("heads", "prototypes"):
            raise PosebhError(f"--decoder {decoder}: expected heads or prototypes")
        if decoder == "prototypes" and loaded.model.prototype_table is None:
            raise PosebhError("--decoder prototypes: this checkpoint has no prototype table "
                              "(model.embedding_dim = 0)")
        recipe = loaded.recipe
        self.loaded, self.device = loaded, device
        self.input_size = tuple(recipe.model.input_size)
        self.aspect_ratio = self.input_size[1] / self.input_size[0]
        self.batch_size = recipe.eval.batch_size
        self.settings: dict[str, InferenceSettings] = {}
        for name in datasets:
            config, skeleton = recipe.dataset(name), loaded.types.skeleton(name)
            self.settings[name] = InferenceSettings(
                dataset_index=loaded.types.dataset_index(name),
                flip_index=skeleton.flip_index,
                udp=config.encoding == "udp",
                heatmap_decoder=resolve_heatmap_decoder(recipe.eval.heatmap_decoder,
                                                        config.encoding),
                flip_test=recipe.eval.flip_test if flip_test is None else flip_test,
                decoder=decoder,
                autocast_dtype=eval_autocast(recipe.train.precision, device),
            )

    def skeleton(self, dataset: str):
        return self.loaded.types.skeleton(dataset)

    def predict(self, image: np.ndarray, boxes: np.ndarray, dataset: str
                ) -> tuple[np.ndarray, np.ndarray]:
        """image (H, W, 3|4) uint8 BGR(A); boxes (N, 4) xywh -> keypoints (N, K, 2), scores (N, K).
        """
        settings = self.settings[dataset]
        k = len(settings.flip_index)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, k, 2)), np.zeros((0, k))
        image = to_warp_layout(image)  # the evaluation loader's layout (same interpolation)
        # As the evaluation loader: crops warped with the float64 centre/scale, keypoints mapped
        # back with their float32 copies (its batch tensors), so the keypoints are identical.
        center64, scale64 = box_to_center_scale(boxes, self.aspect_ratio,
                                                self.loaded.recipe.box_padding(dataset))
        center, scale = center64.astype(np.float32), scale64.astype(np.float32)
        keypoints, scores = [], []
        for start in range(0, len(boxes), self.batch_size):
            stop = start + self.batch_size
            crops = [warp_image(image, warp_matrix(c, s, 0.0, self.input_size, settings.udp),
                                self.input_size)
                     for c, s in zip(center64[start:stop], scale64[start:stop])]
            # HWC BGR(A) -> CHW RGB, alpha dropped.
            batch = torch.from_numpy(np.stack([np.ascontiguousarray(c.transpose(2, 0, 1)[2::-1])
                                               for c in crops]))
            images = normalize_images(batch.to(self.device))
            heatmaps = predict_heatmaps(self.loaded.model, images, settings)
            xy, score = decode_to_image(heatmaps, torch.from_numpy(center[start:stop]),
                                        torch.from_numpy(scale[start:stop]), self.input_size,
                                        settings)
            keypoints.append(xy)
            scores.append(score)
        return np.concatenate(keypoints), np.concatenate(scores)


def instance_score(scores: np.ndarray, box_score: float, threshold: float) -> float:
    """Box score x mean score of the confident keypoints (the reference rescoring, §6)."""
    confident = scores[scores > threshold]
    return float(box_score * (confident.mean() if confident.size else 0.0))


def image_ids(paths: list[Path]) -> list[int]:
    """COCO image ids: the file stems when all are distinct integers (000000000785.jpg -> 785),
    else positions 0..N-1."""
    stems = [p.stem for p in paths]
    if all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(len(paths)))


def overlay_stems(paths: list[Path]) -> list[str]:
    """Output names per image: the stem, prefixed by the parent folder(s) where stems repeat
    (a glob over several folders), so no overlay overwrites another."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return ["_".join(p.with_suffix("").parts[-3:]).lstrip("_/") for p in paths]


def full_frame_box(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([[0.0, 0.0, image.shape[1], image.shape[0]]]), np.ones(1)


def predict_images(predictor: PosePredictor, datasets: list[str], paths: list[Path],
                   out_dir: Path, *, boxes: BoxesByKey | None = None, threshold: float = 0.3,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Overlay `<stem>_pose<ext>` per image and `predictions.json` (COCO results) in out_dir.

    boxes: per image position, (boxes, scores); None = the whole image is the box.
    """
    ids = image_ids(paths)
    stems = overlay_stems(paths)
    records: list[dict[str, Any]] = []
    overlays = []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        image = read_image(path)
        frame_boxes, box_scores = full_frame_box(image) if boxes is None else boxes.get(
            i, (np.zeros((0, 4)), np.zeros(0)))
        overlay = image.copy()
        for name in datasets:
            skeleton = predictor.skeleton(name)
            keypoints, scores = predictor.predict(image, frame_boxes, name)
            for n in range(len(frame_boxes)):
                kpts = np.concatenate([keypoints[n], scores[n][:, None]], axis=1)
                records.append({
                    "image_id": ids[i], "file_name": path.name, "category_id": 1,
                    "dataset": name, "skeleton": skeleton.name,
                    "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
                    "score": instance_score(scores[n], float(box_scores[n]), threshold),
                    "bbox": [round(float(v), 2) for v in frame_boxes[n]],
                })
                draw_pose(overlay, keypoints[n], scores[n], skeleton, threshold=threshold,
                          box=frame_boxes[n] if boxes is not None else None,
                          label=name if boxes is not None else None)
        suffix = path.suffix.lower() if path.suffix.lower() in (".png", ".jpg", ".jpeg") \
            else ".png"
        ok, encoded = cv2.imencode(suffix, overlay)
        if not ok:
            raise RuntimeError(f"cannot encode the overlay of {path}")
        target = out_dir / f"{stems[i]}_pose{suffix}"
        atomic_write_bytes(target, encoded.tobytes())
        overlays.append(str(target))
        if progress:
            progress(i + 1, len(paths))
    seconds = time.perf_counter() - start
    results = out_dir / "predictions.json"
    write_coco_results(results, records)
    return {"kind": "images", "images": len(paths), "instances": len(records),
            "overlays": overlays, "results": str(results), "seconds": seconds,
            "fps": len(paths) / max(seconds, 1e-9)}


def predict_video(predictor: PosePredictor, datasets: list[str], reader, video_path: Path,
                  jsonl_path: Path, *, boxes: BoxesByKey | None = None, threshold: float = 0.3,
                  smooth: bool = False, max_frames: int | None = None,
                  show: Callable[[np.ndarray], bool] | None = None,
                  progress: Progress | None = None, live: bool = False) -> dict[str, Any]:
    """Overlay video (mp4v) and JSON Lines (one object per frame) for a VideoReader.

    boxes: per frame index, (boxes, scores); None = follow one instance per skeleton from the
    full frame (KeypointBoxTracker). smooth: One-Euro filter per (skeleton, instance) track.
    show(frame) -> False stops early (the --show window's 'q').
    live: a webcam, which only stops when interrupted: Ctrl-C ends the stream and keeps what was
    recorded (for a file, an interrupt discards the partial outputs like any failure).
    """
    from posebh_cli.io.video import AtomicVideoWriter

    trackers = {name: KeypointBoxTracker(reader.size, score_threshold=threshold)
                for name in datasets}
    filters: dict[tuple[str, int], OneEuroFilter] = {}
    lines: list[str] = []
    total = reader.frame_count if max_frames is None else min(
        max_frames, reader.frame_count or max_frames)
    start = time.perf_counter()
    with AtomicVideoWriter(video_path, reader.fps, reader.size) as writer, \
            _stop_on_interrupt(live):
        for f, frame in enumerate(reader):
            if max_frames is not None and f >= max_frames:
                break
            t = f / reader.fps
            overlay = frame.copy()
            instances = []
            for name in datasets:
                skeleton = predictor.skeleton(name)
                if boxes is not None:
                    frame_boxes, box_scores = boxes.get(f, (np.zeros((0, 4)), np.zeros(0)))
                    box_source = "detections"
                else:
                    tracker = trackers[name]
                    frame_boxes, box_scores = tracker.box[None], np.ones(1)
                    box_source = "tracked" if tracker.tracking else "full_frame"
                keypoints, scores = predictor.predict(frame, frame_boxes, name)
                if boxes is None:
                    trackers[name].update(keypoints[0], scores[0])
                for n in range(len(frame_boxes)):
                    if smooth:
                        track = filters.setdefault((name, n), OneEuroFilter())
                        if box_source == "full_frame":
                            track.reset()  # a re-initialised track starts a new trajectory
                        keypoints[n] = track(keypoints[n], t)
                    kpts = np.concatenate([keypoints[n], scores[n][:, None]], axis=1)
                    instances.append({
                        "dataset": name, "skeleton": skeleton.name, "box_source": box_source,
                        "bbox": [round(float(v), 2) for v in frame_boxes[n]],
                        "score": instance_score(scores[n], float(box_scores[n]), threshold),
                        "keypoints": np.round(kpts, 3).tolist(),
                    })
                    draw_pose(overlay, keypoints[n], scores[n], skeleton, threshold=threshold,
                              box=frame_boxes[n], label=name)
            writer.write(overlay)
            lines.append(json.dumps({"frame": f, "time": round(t, 4), "instances": instances}))
            if progress:
                progress(f + 1, total)
            if show is not None and not show(overlay):
                break
    frames = writer.frames
    seconds = time.perf_counter() - start
    atomic_write_text(jsonl_path, "\n".join(lines) + "\n")
    return {"kind": "video", "frames": frames, "video": str(video_path),
            "results": str(jsonl_path), "seconds": seconds,
            "fps": frames / max(seconds, 1e-9), "source_fps": reader.fps}
