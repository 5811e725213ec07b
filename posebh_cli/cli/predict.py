"""`posebh predict SOURCE`: keypoints on images, a video or a webcam with a trained run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from posebh_cli.cli.options import Checkpoint, Device, JsonOutput, RunDir
from posebh_cli.errors import PosebhError


def read_boxes_file(path: Path, *, keys: dict[Any, int], key_name: str,
                    score_threshold: float):
    """Boxes per image/frame position from a JSON list of {bbox: [x, y, w, h], score?, and
    file_name | image_id | frame}; `keys` maps file names / image ids / frame numbers to
    positions. Boxes under the score threshold are dropped."""
    import numpy as np

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosebhError(f"--boxes {path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as error:
        raise PosebhError(f"--boxes {path}: not a JSON file ({error})") from None
    if not isinstance(data, list):
        raise PosebhError(f"--boxes {path}: expected a JSON list of {{bbox, score, "
                          f"{key_name}}} records")
    grouped: dict[int, tuple[list, list]] = {}
    for n, record in enumerate(data):
        where = f"--boxes {path}: record [{n}]"
        if not isinstance(record, dict) or "bbox" not in record:
            raise PosebhError(f"{where}: expected an object with 'bbox': [x, y, w, h]")
        key = next((record[k] for k in ("file_name", "frame", "image_id") if k in record), None)
        if key is None:
            raise PosebhError(f"{where}: needs 'file_name', 'image_id' or 'frame' to say "
                              f"which {key_name} it belongs to")
        position = keys.get(Path(key).name if isinstance(key, str) else key)
        if position is None:
            raise PosebhError(f"{where}: {key!r} is no {key_name} of SOURCE")
        try:
            box = np.asarray(record["bbox"], dtype=np.float64)
            score = float(record.get("score", 1.0))
        except (TypeError, ValueError):
            raise PosebhError(f"{where}: 'bbox' must be 4 numbers and 'score' a number") \
                from None
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise PosebhError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h]")
        if score < score_threshold or box[2] <= 0 or box[3] <= 0:
            continue
        boxes, scores = grouped.setdefault(position, ([], []))
        boxes.append(box)
        scores.append(score)
    return {k: (np.asarray(b).reshape(-1, 4), np.asarray(s)) for k, (b, s) in grouped.items()}


def _show_window():
    import cv2

    from posebh_cli.io.video import display_available

    if not display_available():
        raise PosebhError("--show: no display available here (no DISPLAY, or OpenCV was built "
                          "without a GUI); drop --show, the overlay is written to --out")

    def show(frame) -> bool:
        cv2.imshow("posebh predict", frame)
        return (cv2.waitKey(1) & 0xFF) != ord("q")

    return show


def predict_command(
    source: Annotated[str, typer.Argument(
        metavar="SOURCE", help="An image, a folder or glob of images, a video file, or a webcam "
                               "index (0, 1, ...).")],
    skeleton: Annotated[Optional[str], typer.Option(
        "--skeleton", help="human|animal|hand|wholebody, a skeleton or a dataset of the run; "
                           "comma-separated for several (default: the run's first dataset).")
    ] = None,
    run: RunDir = None,
    checkpoint: Checkpoint = None,
    boxes: Annotated[Optional[Path], typer.Option(
        "--boxes", help="Boxes JSON: COCO detections (image_id or file_name) or per-frame "
                        "records {frame, bbox, score}; default: the whole frame (video: the "
                        "box follows the keypoints).")] = None,
    box_threshold: Annotated[float, typer.Option(
        "--box-threshold", min=0.0, max=1.0, help="Ignore boxes scoring below this.")] = 0.3,
    keypoint_threshold: Annotated[float, typer.Option(
        "--keypoint-threshold", min=0.0, max=1.0,
        help="Hide joints scoring below this in overlays (and use only those for tracking).")
    ] = 0.3,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("predictions"),
    decoder: Annotated[str, typer.Option(
        "--decoder", help="heads, or prototypes (keypoints from the prototype heatmaps).")
    ] = "heads",
    flip: Annotated[Optional[bool], typer.Option(
        "--flip/--no-flip", help="Flip test (default: the recipe's eval.flip_test).")] = None,
    smooth: Annotated[bool, typer.Option(
        "--smooth", help="Video: One-Euro temporal smoothing of keypoints.")] = False,
    show: Annotated[bool, typer.Option(
        "--show", help="Video: show the overlay in a window while predicting ('q' stops).")
    ] = False,
    max_frames: Annotated[Optional[int], typer.Option(
        "--max-frames", min=1, help="Video/webcam: stop after this many frames.")] = None,
    device: Device = "auto",
    json_output: JsonOutput = False,
) -> None:
    """Predict keypoints on images, a video or a webcam; write overlays and result files.

    Images: <out>/<name>_pose.<ext> and <out>/predictions.json (COCO results). Video:
    <out>/<name>_pose.mp4 and <out>/<name>_pose.jsonl (one line per frame, with scores).

    Example: posebh predict video.mp4 --skeleton animal --smooth --out preds
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from posebh_cli.cli.console import console
    from posebh_cli.cli.train import resolve_device
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.engine.predict_loop import (
        PosePredictor,
        image_ids,
        predict_images,
        predict_video,
        select_datasets,
    )
    from posebh_cli.io.atomic import json_ready
    from posebh_cli.io.video import VideoReader, resolve_source

    # Inputs are checked before the model is built, so a bad SOURCE or box file fails fast.
    resolved = resolve_source(source)
    if show and resolved.kind == "images":
        raise PosebhError("--show applies to a video or webcam SOURCE")
    if decoder not in ("heads", "prototypes"):
        raise PosebhError(f"--decoder {decoder}: expected heads or prototypes")
    show_fn = _show_window() if show else None
    torch_device = resolve_device(device)
    out = Path(out)
    reader = None
    if resolved.kind == "images":
        paths = list(resolved.paths)
        keys: dict[Any, int] = {p.name: i for i, p in enumerate(paths)}
        keys.update({image_id: i for i, image_id in enumerate(image_ids(paths))})
        box_table = None if boxes is None else read_boxes_file(
            boxes, keys=keys, key_name="image", score_threshold=box_threshold)
    else:
        reader = VideoReader(resolved.webcam if resolved.kind == "webcam" else resolved.paths[0])
    try:
        if reader is not None:
            count = reader.frame_count or (max_frames or 10**9)
            box_table = None if boxes is None else read_boxes_file(
                boxes, keys=_FrameKeys(count), key_name="frame", score_threshold=box_threshold)
        loaded = load_run(run, checkpoint, torch_device)
        datasets = select_datasets(loaded, skeleton)
        predictor = PosePredictor(loaded, datasets, device=torch_device, decoder=decoder,
                                  flip_test=flip)
        with Progress(TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), console=console, transient=True,
                      disable=json_output) as progress:
            task = progress.add_task("predict", total=None, rate="")

            def advance(done: int, total: int | None) -> None:
                elapsed = progress.tasks[0].elapsed or 0.0
                progress.update(task, completed=done, total=total,
                                rate=f"{done / elapsed:.1f} fps" if elapsed > 0 else "")

            if reader is None:
                summary = predict_images(predictor, datasets, paths, out, boxes=box_table,
                                         threshold=keypoint_threshold, progress=advance)
            else:
                summary = predict_video(
                    predictor, datasets, reader, out / f"{resolved.name}_pose.mp4",
                    out / f"{resolved.name}_pose.jsonl", boxes=box_table,
                    threshold=keypoint_threshold, smooth=smooth, max_frames=max_frames,
                    show=show_fn, progress=advance, live=resolved.kind == "webcam")
    finally:
        if reader is not None:
            reader.close()
        if show_fn is not None:
            import cv2

            cv2.destroyAllWindows()
    summary.update(run=str(loaded.run_dir), datasets=datasets, decoder=decoder,
                   device=str(torch_device))
    if json_output:
        console.print_json(json.dumps(json_ready(summary)))
        return
    count = summary.get("images", summary.get("frames"))
    unit = "images" if summary["kind"] == "images" else "frames"
    console.print(f"{count} {unit} ({', '.join(datasets)}; decoder {decoder}) in "
                  f"{summary['seconds']:.2f} s: {summary['fps']:.1f} {unit}/s on {torch_device}",
                  markup=False)
    written = summary.get("overlays", [summary.get("video")])
    console.print(f"overlays: {written[0]}{' ...' if len(written) > 1 else ''}; results: "
                  f"{summary['results']}", markup=False)


class _FrameKeys(dict):
    """Frame numbers 0..count-1 as box-file keys (a mapping without materialising them)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def get(self, key, default=None):
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < self.count:
            return key
        return default
