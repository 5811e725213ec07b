"""`posebh visualize-prototypes` on the tiny run: figures, correspondence JSON, bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
from engine_fixtures import tiny_run  # noqa: F401  (session fixture)
from typer.testing import CliRunner

from posebh_cli.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["visualize-prototypes", *args])


def test_visualize_prototypes_writes_figures_and_correspondences(tiny_run, tmp_path):  # noqa: F811
    out = tmp_path / "viz"
    image = tiny_run.data / "images" / "animal" / "val" / "000000.jpg"
    result = invoke("--run", str(tiny_run.run_dir), "--skeletons", "human,animal", "--image",
                    str(image), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "synth_human -> synth_animal" in result.stdout
    for name in ("similarity_synth_human_vs_synth_animal.png", "similarity_all.png",
                 "prototypes_pca.png", "assignment_000000.png"):
        figure = cv2.imread(str(out / name))
        assert figure is not None and figure.std() > 10, name  # a real drawing, not blank
    assignment = cv2.imread(str(out / "assignment_000000.png"))
    assert assignment.shape[0] >= cv2.imread(str(image)).shape[0]
    data = json.loads((out / "correspondence.json").read_text())
    assert [(p["a"], p["b"]) for p in data["pairs"]] == [("synth_human", "synth_animal"),
                                                         ("synth_animal", "synth_human")]
    human_to_animal = data["pairs"][0]["matches"]
    assert len(human_to_animal) == 17 and human_to_animal[0]["keypoint"] == "nose"

    # The printed matches are the prototype table's: recompute one from the weights.
    from safetensors.torch import load_file

    table = load_file(tiny_run.run_dir / "model.safetensors")["prototype_table.prototypes"]
    protos = table.numpy()  # (J, M, F); human types 0..16, animal 17..33
    similarity = np.abs(np.einsum("mf,tnf->tmn", protos[0], protos[17:34])).max(axis=(1, 2))
    animal = json.loads((tiny_run.data / "annotations" / "animal_val.json").read_text())
    names = animal["categories"][0]["keypoints"]
    assert human_to_animal[0]["match"] == names[int(similarity.argmax())]
    assert abs(human_to_animal[0]["similarity"] - similarity.max()) < 1e-4


def test_visualize_prototypes_json_default_all(tiny_run, tmp_path):  # noqa: F811
    result = invoke("--run", str(tiny_run.run_dir), "--out", str(tmp_path / "v"), "--device",
                    "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["pairs"]) == 6  # ordered pairs of 3 skeletons


def test_visualize_prototypes_scores_the_generators_correspondences(tiny_run, tmp_path):  # noqa: F811
    out = tmp_path / "v"
    expected = tiny_run.data / "correspondence.json"
    result = invoke("--run", str(tiny_run.run_dir), "--out", str(out), "--device", "cpu",
                    "--expected", str(expected))
    assert result.exit_code == 0, result.output
    score = json.loads((out / "correspondence.json").read_text())["expected"]
    assert f"{score['recovered']} of {score['total']} recovered" in " ".join(result.stdout.split())
    # Recount from the written matches: every expected keypoint, both directions.
    best = {(p["skeleton_a"], m["keypoint"], p["skeleton_b"]): m["match"]
            for p in json.loads((out / "correspondence.json").read_text())["pairs"]
            for m in p["matches"]}
    accepted = {}
    for pair in json.loads(expected.read_text())["pairs"]:
        a, ka, b, kb = (pair[k] for k in ("skeleton_a", "keypoint_a", "skeleton_b", "keypoint_b"))
        accepted.setdefault((a, ka, b), set()).add(kb)
        accepted.setdefault((b, kb, a), set()).add(ka)
    assert score["total"] == len(accepted) > 30
    assert score["recovered"] == sum(best[key] in ok for key, ok in accepted.items())


def test_visualize_prototypes_user_errors(tiny_run, tmp_path):  # noqa: F811
    run = str(tiny_run.run_dir)
    for args, fragment in ((["--skeletons", "dragon"], "--skeleton dragon"),
                           (["--skeletons", "wholebody"], "no head"),
                           (["--image", str(tmp_path / "missing.png")], "--image"),
                           (["--expected", str(tmp_path / "none.json")], "none.json")):
        result = invoke("--run", run, "--out", str(tmp_path / "v"), *args)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and fragment in result.output


def test_visualize_prototypes_prints_output_paths_with_brackets(tiny_run, tmp_path):  # noqa: F811
    out = tmp_path / "[v]"
    result = invoke("--run", str(tiny_run.run_dir), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert str(out / "prototypes_pca.png") in result.output.replace("\n", "")
