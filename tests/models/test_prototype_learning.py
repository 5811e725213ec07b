from __future__ import annotations

import torch
import torch.nn.functional as F

from posebh_cli.models.prototype_learning import DatasetPixels, label_pixels, learn_prototypes
from posebh_cli.models.prototypes import PrototypeTable


def _table() -> PrototypeTable:
    # J = 4 types (dataset A: types 0-1, dataset B: types 2-3), M = 2, F = 4.
    table = PrototypeTable(4, 2, 4)
    protos = torch.zeros(4, 2, 4)
    for j in range(4):
        protos[j, 0, j] = 1.0
        protos[j, 1] = F.normalize(torch.ones(4), dim=0)
    table.set_prototypes(protos)
    return table


def _group(table: PrototypeTable, offset: int, embedding_axis: int) -> DatasetPixels:
    """One sample, 1x3 heatmap; keypoint 1 of the dataset labels pixels 0 and 1."""
    embeddings = torch.zeros(1, 4, 1, 3)
    embeddings[0, embedding_axis, 0, :] = 1.0
    embeddings[0, (embedding_axis + 1) % 4, 0, :2] = 0.2  # off-axis so the update can move it
    heatmaps = torch.zeros(1, 2, 1, 3)
    heatmaps[0, 1, 0, 0] = 1.0
    heatmaps[0, 1, 0, 1] = 0.5
    weights = torch.tensor([[1.0, 1.0]])
    similarity = table.similarity(embeddings, torch.arange(offset, offset + 2))
    return DatasetPixels(offset, similarity, embeddings, heatmaps, weights)


def test_label_pixels_class_confidence_and_correctness() -> None:
    similarity = torch.zeros(1, 2, 1, 1, 3)
    similarity[0, 1, 0, 0, 0] = 0.9  # pixel 0 looks like keypoint 1 (correct)
    similarity[0, 0, 0, 0, 1] = 0.9  # pixel 1 looks like keypoint 0 (wrong)
    heatmaps = torch.zeros(1, 2, 1, 3)
    heatmaps[0, 1, 0, :2] = torch.tensor([1.0, 0.5])
    heatmaps[0, 0, 0, 2] = 0.7  # keypoint 0 is invisible: pixel 2 must stay unlabelled
    labelled, cls, conf, correct = label_pixels(similarity, heatmaps, torch.tensor([[0.0, 1.0]]))
    assert labelled.tolist() == [[[True, True, False]]]
    assert cls[0, 0, :2].tolist() == [1, 1]
    assert conf[0, 0].tolist() == [1.0, 0.5, 0.0]
    assert correct.tolist() == [[[True, False, False]]]


def test_learning_moves_only_prototypes_of_types_present_in_second_dataset() -> None:
    table = _table()
    before = table.prototypes.clone()
    # Dataset B (offset 2): its keypoint 1 is GLOBAL type 3; embeddings along axis 3.
    result = learn_prototypes(table.prototypes, [_group(table, 2, 3)], momentum=0.5, seed=0)
    changed = (result.prototypes - before).abs().amax(dim=-1) > 1e-6  # (J, M)
    assert changed[3].any()  # type 3 moved: global ids, not local id 1 (defect 1)
    assert not changed[[0, 1, 2]].any()
    assert result.kept_per_type.tolist() == [0, 0, 0, 2]
    assert int(result.pixels_kept) == 2 and int(result.pixels_labelled) == 2
    torch.testing.assert_close(result.prototypes.norm(dim=-1), torch.ones(4, 2))
    target = result.targets[0]
    assert target.global_type[0, 0, :2].tolist() == [3, 3]
    assert target.prototype[0, 0, :2].tolist() == [0, 0]  # axis prototype wins (|cos| ~ 0.98)


def test_one_call_handles_two_datasets_and_update_false_keeps_table() -> None:
    table = _table()
    groups = [_group(table, 0, 1), _group(table, 2, 3)]
    result = learn_prototypes(table.prototypes, groups, momentum=0.5, seed=0)
    assert result.kept_per_type.tolist() == [0, 2, 0, 2]
    frozen = learn_prototypes(table.prototypes, groups, update=False, seed=0)
    assert torch.equal(frozen.prototypes, table.prototypes)
    assert [t.global_type[0, 0, 0].item() for t in frozen.targets] == [1, 3]


def test_misclassified_pixels_get_no_update_and_labelled_mode_assigns_them() -> None:
    table = _table()
    group = _group(table, 0, 0)  # embeddings look like type 0 but are labelled keypoint 1
    result = learn_prototypes(table.prototypes, [group], seed=0)
    assert int(result.pixels_kept) == 0 and torch.equal(result.prototypes, table.prototypes)
    assert not result.targets[0].assigned.any()
    labelled = learn_prototypes(table.prototypes, [group], seed=0, sinkhorn_pixels="labelled")
    assert labelled.targets[0].assigned[0, 0].tolist() == [True, True, False]
    assert torch.equal(labelled.prototypes, table.prototypes)
