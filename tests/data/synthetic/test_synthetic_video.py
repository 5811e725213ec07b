from __future__ import annotations

import cv2
import numpy as np

from posebh_cli.data.synthetic.video import camera_path, write_camera_video


def test_camera_path_is_a_smooth_loop():
    start, end = camera_path(0, 30), camera_path(30, 30)
    assert np.allclose(start, end)
    assert start == (0.0, 0.0, 1.0, 0.0)  # frame 0: the plain view


def test_camera_video_has_the_frames_and_moves(tmp_path):
    image = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(image, (80, 60), 20, (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    out = write_camera_video(tmp_path / "a.jpg", tmp_path / "v.mp4", frames=12, size=(160, 120))
    capture = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    assert len(frames) == 12
    assert np.abs(frames[3] - frames[0]).mean() > 1.0  # the camera moved
    assert not list(tmp_path.glob(".v.*"))  # no temporary file left behind
