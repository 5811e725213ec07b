"""Prototype similarity, correspondences, PCA and sign canonicalisation on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.viz.prototype_analysis import (
    correspondences,
    pca_2d,
    sign_canonical,
    type_similarity,
)


def test_type_similarity_is_max_abs_cosine_over_prototype_pairs():
    e = np.eye(3)
    prototypes = np.stack([
        np.stack([e[0], e[1]]),  # type 0
        np.stack([-e[0], e[2]]),  # type 1: shares the axis of type 0's first prototype (|cos|)
        np.stack([e[2], (e[1] + e[2]) / np.sqrt(2)]),  # type 2
    ])
    sim = type_similarity(prototypes, np.array([0]), np.array([1, 2]))
    assert sim.shape == (1, 2)
    assert sim[0, 0] == pytest.approx(1.0)  # |cos(e0, -e0)|
    assert sim[0, 1] == pytest.approx(1 / np.sqrt(2))  # e1 vs (e1 + e2)/sqrt2


def test_correspondences_pick_the_best_column_with_margin():
    sim = np.array([[0.2, 0.9, 0.5], [0.7, 0.1, 0.6]])
    matches = correspondences(sim, ["a", "b"], ["x", "y", "z"])
    assert [(m["keypoint"], m["match"]) for m in matches] == [("a", "y"), ("b", "x")]
    assert matches[0]["similarity"] == 0.9 and matches[0]["margin"] == pytest.approx(0.4)
    assert matches[1]["margin"] == pytest.approx(0.1)


def test_pca_recovers_the_dominant_axes():
    rng = np.random.default_rng(0)
    # Exactly uncorrelated, zero-mean latent axes with variances in ratio 100 : 9.
    centred = rng.normal(size=(200, 2))
    centred -= centred.mean(axis=0)
    latent = np.linalg.qr(centred)[0] * np.array([10.0, 3.0])
    basis = np.linalg.qr(rng.normal(size=(5, 5)))[0][:, :2]  # orthonormal (5, 2)
    points = latent @ basis.T + 7.0
    projected, explained = pca_2d(points)
    assert explained.sum() == pytest.approx(1.0)
    assert explained == pytest.approx([100 / 109, 9 / 109])
    # Up to sign, the projection is the latent coordinates.
    for axis in range(2):
        corr = np.corrcoef(projected[:, axis], latent[:, axis])[0, 1]
        assert abs(corr) == pytest.approx(1.0, abs=1e-9)


def test_sign_canonical_merges_p_and_minus_p():
    p = np.array([[0.1, -0.9, 0.3]])
    assert np.allclose(sign_canonical(p), sign_canonical(-p))
    assert sign_canonical(p)[0, 1] > 0
