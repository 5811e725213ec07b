"""Keypoint-driven box tracking: full frame first, box from confident keypoints, re-init."""

from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.engine.tracking import KeypointBoxTracker


def test_starts_on_the_full_frame_and_follows_confident_keypoints():
    tracker = KeypointBoxTracker((640, 480), margin=0.0, min_size=0.0)
    assert tracker.box.tolist() == [0, 0, 640, 480] and not tracker.tracking
    keypoints = np.array([[100.0, 100.0], [200.0, 300.0], [150.0, 200.0], [600.0, 10.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.05])  # the last is ignored
    box = tracker.update(keypoints, scores)
    assert box.tolist() == pytest.approx([100, 100, 100, 200]) and tracker.tracking


def test_margin_grows_the_box_and_it_stays_in_the_frame():
    tracker = KeypointBoxTracker((300, 300), margin=0.5, min_size=0.0)
    box = tracker.update(np.array([[0.0, 0.0], [100.0, 100.0], [50, 50]]), np.ones(3))
    assert box.tolist() == pytest.approx([0, 0, 150, 150])  # [-50, 150] clipped at 0


def test_reinitialises_when_confidence_drops():
    tracker = KeypointBoxTracker((640, 480))
    tracker.update(np.array([[10.0, 10], [50, 50], [30, 40]]), np.ones(3))
    assert tracker.tracking
    box = tracker.update(np.array([[10.0, 10], [50, 50], [30, 40]]), np.array([0.9, 0.1, 0.1]))
    assert box.tolist() == [0, 0, 640, 480] and not tracker.tracking


def test_minimum_box_size():
    tracker = KeypointBoxTracker((400, 200), min_size=0.25, margin=0.0)
    box = tracker.update(np.array([[100.0, 100], [101, 101], [100, 101]]), np.ones(3))
    assert box[2] == pytest.approx(50) and box[3] == pytest.approx(50)
