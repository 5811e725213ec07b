"""`posebh cluster` on a tiny trained run: refresh, new skeleton, concepts, and user errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_support import assert_user_error
from engine_fixtures import tiny_run  # noqa: F401  (session fixture)
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.engine.load_run import load_run
from posebh_cli.io.checkpoint import load_weights_file


def invoke(*args: str):
    return CliRunner().invoke(app, ["cluster", *args])


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:  # noqa: F811
    """A private copy of the tiny run (tests here write next to it or into it)."""
    target = tmp_path / "runs" / "tiny_test"
    shutil.copytree(tiny_run.run_dir, target)
    return target


PROTOTYPES = "prototype_table.prototypes"


def test_refresh_writes_a_new_run_and_leaves_the_source_alone(run_copy):
    source_bytes = (run_copy / "model.safetensors").read_bytes()
    result = invoke("--run", str(run_copy), "--dataset", "synth_human", "--images", "4",
                    "--concepts", "5", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "joint concepts" in result.output
    out_dir = run_copy.parent / "tiny_test_clustered"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "clustering_report.json", "model.safetensors", "recipe.resolved.toml", "run.json"]
    assert (run_copy / "model.safetensors").read_bytes() == source_bytes
    old, new = load_weights_file(run_copy / "model.safetensors"), \
        load_weights_file(out_dir / "model.safetensors")
    assert sorted(old) == sorted(new)
    assert not torch.equal(old[PROTOTYPES][:17], new[PROTOTYPES][:17])  # COCO block refreshed
    assert torch.equal(old[PROTOTYPES][17:], new[PROTOTYPES][17:])  # other datasets untouched
    assert all(torch.equal(old[k], new[k]) for k in old if k != PROTOTYPES)
    assert torch.allclose(new[PROTOTYPES].norm(dim=-1), torch.ones(55, 2), atol=1e-5)
    loaded = load_run(out_dir)
    assert loaded.types.datasets == ("synth_human", "synth_animal", "synth_hand")
    info = json.loads((out_dir / "run.json").read_text())
    assert info["clustering"]["dataset"] == "synth_human"
    assert info["clustering"]["source"] == str((run_copy / "model.safetensors").resolve())
    assert info["clustering"]["concepts"] == 5
    report = json.loads((out_dir / "clustering_report.json").read_text())
    refresh = report["refresh"]
    assert refresh["images"] == 4 and refresh["instances"] >= 4
    assert [r["keypoint"] for r in refresh["keypoints"]][:2] == ["nose", "left_eye"]
    assert sum(r["samples"] for r in refresh["keypoints"]) == refresh["embeddings"]
    assert all(sum(r["cluster_sizes"]) == r["samples"] for r in refresh["keypoints"])
    concepts = report["concepts"]["concepts"]
    assert len(concepts) == 5 and sum(c["size"] for c in concepts) == 55
    assert sorted(m["type_id"] for c in concepts for m in c["members"]) == list(range(55))


def test_in_place_updates_the_source_run(run_copy):
    before = load_weights_file(run_copy / "model.safetensors")[PROTOTYPES]
    result = invoke("--run", str(run_copy), "--dataset", "synth_hand", "--in-place",
                    "--concepts", "0", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["concepts"] is None and report["refresh"]["dataset"] == "synth_hand"
    after = load_weights_file(run_copy / "model.safetensors")[PROTOTYPES]
    assert torch.equal(before[:34], after[:34]) and not torch.equal(before[34:], after[34:])
    assert json.loads((run_copy / "run.json").read_text())["clustering"]["dataset"] == \
        "synth_hand"
    assert (run_copy / "clustering_report.json").is_file()


def test_new_skeleton_is_registered_and_decodes_with_prototypes(run_copy, tiny_run, tmp_path):  # noqa: F811
    from posebh_cli.engine.inference import InferenceSettings, predict_heatmaps

    out = tmp_path / "registered" / "model.safetensors"
    data = tiny_run.data
    result = invoke("--run", str(run_copy), "--ann", str(data / "annotations/animal_train.json"),
                    "--image-dir", str(data / "images/animal/train"), "--skeleton", "apt36k",
                    "--name", "new_animals", "--format", "synthetic", "--out", str(out),
                    "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["refresh"]["new_dataset"] and report["refresh"]["like"] == "synth_animal"
    loaded = load_run(out.parent)
    assert loaded.types.datasets[-1] == "new_animals" and loaded.types.num_types == 55 + 17
    assert loaded.recipe.dataset("new_animals").encoding == "udp"  # taken from --like
    old = load_weights_file(run_copy / "model.safetensors")
    new = load_weights_file(out)
    assert torch.equal(new[PROTOTYPES][:55], old[PROTOTYPES])  # existing ids do not move
    expert = next(k for k in new if k.endswith("expert_weight"))
    assert torch.equal(new[expert][3], old[expert][1])  # expert copied from synth_animal
    assert torch.equal(new["heads.new_animals.deconv.0.weight"],
                       old["heads.synth_animal.deconv.0.weight"])
    assert not new["heads.new_animals.final.weight"].any()
    info = json.loads((out.parent / "run.json").read_text())
    assert info["datasets"][-1]["head_trained"] is False
    assert info["keypoint_types"]["num_types"] == 72
    # The new skeleton decodes with --decoder prototypes: phm of its 17 types.
    skeleton = loaded.types.skeleton("new_animals")
    settings = InferenceSettings(dataset_index=3, flip_index=skeleton.flip_index, udp=True,
                                 heatmap_decoder="udp", decoder="prototypes")
    heatmaps = predict_heatmaps(loaded.model, torch.randn(2, 3, 64, 48), settings)
    assert heatmaps.shape == (2, 17, 16, 12) and heatmaps.max() > 0.5
    refreshed = [r for r in report["refresh"]["keypoints"] if r["samples"]]
    assert refreshed and all(r["similarity_after"] >= r["similarity_before"] - 1e-6
                             for r in refreshed)


def test_concepts_alone_write_only_a_report(run_copy, tmp_path):
    report_file = tmp_path / "concepts.json"
    result = invoke("--run", str(run_copy), "--concepts", "3", "--report", str(report_file),
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["output"] is None and "refresh" not in report
    assert [c["concept"] for c in report["concepts"]["concepts"]] == [0, 1, 2]
    assert not (run_copy.parent / "tiny_test_clustered").exists()


def test_user_errors_are_one_line(run_copy, tiny_run, tmp_path):  # noqa: F811
    run = ["--run", str(run_copy), "--device", "cpu"]
    assert_user_error(invoke(*run, "--dataset", "synth_humans"), "unknown dataset",
                      "synth_human")
    assert_user_error(invoke("--checkpoint", str(tmp_path / "nope.safetensors"),
                             "--dataset", "synth_human"), "file not found")
    assert_user_error(invoke(*run), "--dataset NAME")
    assert_user_error(invoke(*run, "--dataset", "synth_human", "--out",
                             str(run_copy / "model.safetensors")), "--in-place")
    assert_user_error(invoke(*run, "--dataset", "synth_human", "--concepts", "99"),
                      "--concepts 99")
    assert_user_error(invoke(*run, "--dataset", "synth_human", "--ann", "x.json"), "not both")
    assert_user_error(invoke(*run, "--dataset", "synth_human", "--init", "pca"), "--init")
    assert_user_error(invoke(*run, "--ann", "x.json", "--skeleton", "coco"), "--image-dir",
                      "--name")
    data = tiny_run.data
    new = ["--ann", str(data / "annotations/animal_train.json"), "--image-dir",
           str(data / "images/animal/train"), "--name", "x", "--format", "synthetic"]
    assert_user_error(invoke(*run, *new, "--skeleton", "apt37k"), "unknown skeleton")
    assert_user_error(invoke(*run, *new[:4], "--format", "synthetic", "--skeleton",
                             "apt36k", "--name", "synth_animal"), "already has a dataset")
    assert_user_error(invoke(*run, *new, "--skeleton", "apt36k", "--like", "synth_cat"),
                      "unknown dataset")
    existing = tmp_path / "exists.safetensors"
    existing.write_bytes(b"x")
    assert_user_error(invoke(*run, "--dataset", "synth_human", "--out", str(existing)),
                      "--overwrite")
    assert existing.read_bytes() == b"x"
    assert not (run_copy.parent / "tiny_test_clustered").exists()  # nothing half-written
