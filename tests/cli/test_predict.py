"""`posebh predict` on images, folders, videos (synthetic and the real samples) and bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from cli_support import assert_user_error
from engine_fixtures import tiny_run  # noqa: F401  (session fixture)
from typer.testing import CliRunner

from posebh_cli.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["predict", *args])


def make_video(tiny_run, path, frames: int = 6, size=(160, 120)):  # noqa: F811
    from posebh_cli.io.video import AtomicVideoWriter

    images = sorted((tiny_run.data / "images" / "animal" / "train").glob("*.jpg"))
    with AtomicVideoWriter(path, 5.0, size) as writer:
        for n in range(frames):
            writer.write(cv2.resize(cv2.imread(str(images[n % len(images)])), size))
    return path


def read_video_frames(path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.mark.parametrize("box_padding", [None, 1.1])
def test_predictor_matches_evaluation_records(tiny_run, box_padding):  # noqa: F811
    """Prediction crops boxes as evaluation does, with the dataset's own box padding if any."""
    import dataclasses

    from posebh_cli.data.image_cache import read_image
    from posebh_cli.engine.evaluate import evaluate_recipe_dataset
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.engine.predict_loop import PosePredictor

    loaded = load_run(tiny_run.run_dir, None, "cpu")
    if box_padding is not None:
        datasets = tuple(dataclasses.replace(d, box_padding=box_padding)
                         if d.name == "synth_animal" else d for d in loaded.recipe.datasets)
        loaded.recipe = dataclasses.replace(loaded.recipe, datasets=datasets)
    config = loaded.recipe.dataset("synth_animal")
    report = evaluate_recipe_dataset(loaded.model, loaded.recipe, loaded.types, config, "val",
                                     device=torch.device("cpu"), return_records=True)
    gt = json.loads((tiny_run.data / "annotations" / "animal_val.json").read_text())
    files = {image["id"]: image["file_name"] for image in gt["images"]}
    predictor = PosePredictor(loaded, ["synth_animal"], device=torch.device("cpu"))
    for record in report["records"]:
        image = read_image(tiny_run.data / "images" / "animal" / "val" /
                           files[record["image_id"]])
        keypoints, scores = predictor.predict(image, np.array([record["bbox"]]), "synth_animal")
        expected = np.asarray(record["keypoints"]).reshape(-1, 3)
        np.testing.assert_allclose(keypoints[0], expected[:, :2], atol=2e-3)
        np.testing.assert_allclose(scores[0], expected[:, 2], atol=2e-3)


def test_predict_image_folder_writes_overlays_and_coco_results(tiny_run, tmp_path):  # noqa: F811
    folder = tiny_run.data / "images" / "human" / "train"
    out = tmp_path / "out"
    result = invoke(str(folder), "--skeleton", "human", "--run", str(tiny_run.run_dir),
                    "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "images/s" in result.stdout
    records = json.loads((out / "predictions.json").read_text())
    images = sorted(folder.glob("*.jpg"))
    assert len(records) == len(images)  # one whole-image instance per image
    assert {r["image_id"] for r in records} == {int(p.stem) for p in images}
    assert all(len(r["keypoints"]) == 17 * 3 and r["skeleton"] == "coco" for r in records)
    for path in images:
        overlay = cv2.imread(str(out / f"{path.stem}_pose.jpg"))
        assert overlay is not None and overlay.shape == cv2.imread(str(path)).shape


def test_predict_image_with_detection_boxes_and_prototypes(tiny_run, tmp_path):  # noqa: F811
    image = tiny_run.data / "images" / "hand" / "train" / "000001.jpg"
    boxes = tmp_path / "det.json"
    boxes.write_text(json.dumps([
        {"image_id": 1, "bbox": [5, 5, 40, 50], "score": 0.9, "category_id": 1},
        {"file_name": "000001.jpg", "bbox": [10, 10, 30, 30], "score": 0.8},
        {"image_id": 1, "bbox": [0, 0, 20, 20], "score": 0.1},  # under --box-threshold
    ]))
    out = tmp_path / "out"
    result = invoke(str(image), "--skeleton", "onehand10k", "--run", str(tiny_run.run_dir),
                    "--boxes", str(boxes), "--decoder", "prototypes", "--no-flip", "--out",
                    str(out), "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["decoder"] == "prototypes" and summary["datasets"] == ["synth_hand"]
    records = json.loads((out / "predictions.json").read_text())
    assert [r["bbox"] for r in records] == [[5, 5, 40, 50], [10, 10, 30, 30]]
    # Prototype heatmaps are |cos| clamped to [1e-4, 1 - 1e-4]: so are the keypoint scores.
    scores = np.asarray([r["keypoints"][2::3] for r in records])
    assert scores.min() >= 1e-4 - 1e-6 and scores.max() <= 1.0


def test_predict_synthetic_video_tracking_and_smoothing(tiny_run, tmp_path):  # noqa: F811
    video = make_video(tiny_run, tmp_path / "clip.mp4")
    out = tmp_path / "out"
    result = invoke(str(video), "--skeleton", "animal,hand", "--run", str(tiny_run.run_dir),
                    "--smooth", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.stdout
    assert read_video_frames(out / "clip_pose.mp4") == 6
    lines = [json.loads(line) for line in (out / "clip_pose.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(6))
    first = lines[0]["instances"]
    assert [i["dataset"] for i in first] == ["synth_animal", "synth_hand"]
    assert first[0]["box_source"] == "full_frame" and first[0]["bbox"] == [0, 0, 160, 120]
    assert len(first[0]["keypoints"]) == 17 and len(first[1]["keypoints"]) == 21
    assert not list(out.glob(".*"))  # no temporary file left behind


def test_predict_video_with_per_frame_boxes(tiny_run, tmp_path):  # noqa: F811
    video = make_video(tiny_run, tmp_path / "clip.mp4", frames=4)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"frame": 0, "bbox": [0, 0, 80, 60], "score": 1.0},
                                 {"frame": 0, "bbox": [80, 60, 80, 60], "score": 0.9},
                                 {"frame": 2, "bbox": [10, 10, 100, 100]}]))
    out = tmp_path / "out"
    result = invoke(str(video), "--skeleton", "synth_human", "--run", str(tiny_run.run_dir),
                    "--boxes", str(boxes), "--out", str(out), "--device", "cpu",
                    "--max-frames", "3")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "clip_pose.jsonl").read_text().splitlines()]
    assert [len(line["instances"]) for line in lines] == [2, 0, 1]
    assert {i["box_source"] for line in lines for i in line["instances"]} == {"detections"}


def test_predict_real_photo_and_video(tiny_run, tmp_path, shared_data):  # noqa: F811
    out = tmp_path / "real"
    result = invoke(str(shared_data / "photos" / "chelsea.png"), "--skeleton", "animal",
                    "--run", str(tiny_run.run_dir), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out / "chelsea_pose.png")).shape == (300, 451, 3)
    assert json.loads((out / "predictions.json").read_text())[0]["skeleton"] == "ap10k"
    result = invoke(str(shared_data / "video" / "demo.mp4"), "--skeleton", "human", "--run",
                    str(tiny_run.run_dir), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert read_video_frames(out / "demo_pose.mp4") == 5
    assert len((out / "demo_pose.jsonl").read_text().splitlines()) == 5


def test_predict_user_errors(tiny_run, tmp_path, monkeypatch):  # noqa: F811
    run = str(tiny_run.run_dir)
    image = str(tiny_run.data / "images" / "human" / "val" / "000000.jpg")
    assert_user_error(invoke(image, "--skeleton", "dragon", "--run", run), "--skeleton dragon",
                      "synth_hand (onehand10k, hand)")
    assert_user_error(invoke(image, "--skeleton", "wholebody", "--run", run), "no head")
    assert_user_error(invoke(image, "--skeleton", "aic", "--run", run), "no head")
    assert_user_error(invoke(image, "--decoder", "argmax", "--run", run), "--decoder argmax")
    assert_user_error(invoke(str(tmp_path / "nothing.jpg"), "--run", run), "no such file")
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    assert_user_error(invoke(str(empty_folder), "--run", run), "holds no image")
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    assert_user_error(invoke(str(notes), "--run", run), "unknown file type")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    assert_user_error(invoke(str(garbage), "--run", run), "garbage.mp4")
    empty_video = tmp_path / "empty.mp4"
    empty_video.write_bytes(b"")
    assert_user_error(invoke(str(empty_video), "--run", run), "empty.mp4")
    bad_boxes = tmp_path / "boxes.json"
    bad_boxes.write_text(json.dumps([{"bbox": [0, 0, 5, 5]}]))
    assert_user_error(invoke(image, "--boxes", str(bad_boxes), "--run", run), "record [0]")
    bad_boxes.write_text(json.dumps([{"image_id": 99, "bbox": [0, 0, 5, 5]}]))
    assert_user_error(invoke(image, "--boxes", str(bad_boxes), "--run", run), "99")
    assert_user_error(invoke(image, "--run", run, "--boxes", str(tmp_path / "no.json")),
                      "not found")
    video = str(make_video(tiny_run, tmp_path / "clip.mp4", frames=2))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert_user_error(invoke(video, "--show", "--run", run), "--show", "no display")
    monkeypatch.chdir(tmp_path)
    assert_user_error(invoke(image), "runs/latest")


@pytest.mark.parametrize("source", ["0", "3"])
def test_webcam_index_is_a_webcam_source(source):
    from posebh_cli.io.video import resolve_source

    resolved = resolve_source(source)
    assert resolved.kind == "webcam" and resolved.webcam == int(source)


def test_overlay_names_stay_unique_across_folders():
    from pathlib import Path

    from posebh_cli.engine.predict_loop import overlay_stems

    paths = [Path("d/human/val/000000.jpg"), Path("d/hand/val/000000.jpg")]
    assert overlay_stems(paths) == ["human_val_000000", "hand_val_000000"]
    assert overlay_stems([Path("a.jpg"), Path("b.png")]) == ["a", "b"]


class InterruptedStream:
    """A live source whose user presses Ctrl-C after `frames` frames."""

    def __init__(self, frames: int) -> None:
        self.frames, self.fps, self.frame_count, self.size = frames, 10.0, None, (64, 48)

    def __iter__(self):
        for n in range(self.frames):
            yield np.full((48, 64, 3), 30 * n, np.uint8)
        raise KeyboardInterrupt


def test_ctrl_c_keeps_a_webcam_recording_but_not_a_partial_file(tiny_run, tmp_path):  # noqa: F811
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.engine.predict_loop import PosePredictor, predict_video

    loaded = load_run(tiny_run.run_dir, None, "cpu")
    predictor = PosePredictor(loaded, ["synth_human"], device=torch.device("cpu"))
    summary = predict_video(predictor, ["synth_human"], InterruptedStream(3), tmp_path / "w.mp4",
                            tmp_path / "w.jsonl", live=True)
    assert summary["frames"] == 3 and read_video_frames(tmp_path / "w.mp4") == 3
    assert len((tmp_path / "w.jsonl").read_text().splitlines()) == 3
    with pytest.raises(KeyboardInterrupt):
        predict_video(predictor, ["synth_human"], InterruptedStream(2), tmp_path / "f.mp4",
                      tmp_path / "f.jsonl", live=False)
    assert not (tmp_path / "f.mp4").exists() and not (tmp_path / "f.jsonl").exists()
    assert not list(tmp_path.glob(".*"))
