"""gradcourse.core.norms: the norm of a tensor without float32 underflow, and of groups of tensors."""

import math

import pytest
import torch

import gradcourse.core.norms as norms_module
from gradcourse.core.norms import group_norms, joint_norms


@pytest.mark.parametrize("scale", [1e20, 1.0, 1e-14, 1e-20, 1e-30, 1e-40])
@pytest.mark.parametrize("compute", [norms_module.norm,
                                     lambda t: norms_module._norm_without_sync(t, torch.linalg.vector_norm(t))],
                         ids=["norm", "without_sync"])
def test_norm_matches_float64_from_overflow_to_subnormal(scale, compute):
    torch.manual_seed(0)
    gradient = torch.randn(64, 64) * scale
    expected = torch.linalg.vector_norm(gradient.double()).item()
    result = compute(gradient)
    assert result.dtype == torch.float64
    assert result.item() == pytest.approx(expected, rel=1e-6)


def test_float32_norm_underflows_where_norm_does_not():
    gradient = torch.full((128, 128), 1e-25)
    assert torch.linalg.vector_norm(gradient).item() == 0.0
    assert norms_module.norm(gradient).item() == pytest.approx(128 * 1e-25, rel=1e-6)


@pytest.mark.parametrize("values, expected", [([float("inf"), 1.0], math.inf), ([float("nan"), 1.0], math.nan),
                                              ([0.0, 0.0], 0.0), ([], 0.0), ([3e30, 4e30], 5e30)])
def test_norm_of_special_values(values, expected):
    tensor = torch.tensor(values)
    for result in [norms_module.norm(tensor)] + ([norms_module._norm_without_sync(tensor, torch.linalg.vector_norm(tensor))]
                                                    if values else []):
        assert result.item() == pytest.approx(expected, nan_ok=True)


def test_norm_keeps_float64_and_accepts_float16():
    assert norms_module.norm(torch.tensor([3.0, 4.0], dtype=torch.float64)).item() == 5.0
    assert norms_module.norm(torch.tensor([3.0, 4.0], dtype=torch.float16)).item() == 5.0


def _reference(group):
    """The float64 norm of a group's entries laid end to end."""
    return torch.linalg.vector_norm(torch.cat([t.double().flatten() for t in group])).item() if group else 0.0


@pytest.mark.parametrize("scale", [1e20, 1.0, 1e-14, 1e-20, 1e-40])
def test_group_norms_match_float64_whatever_the_scale(scale):
    torch.manual_seed(0)
    groups = [[torch.randn(32, 16) * scale, torch.randn(16) * scale] for _ in range(5)]
    result = group_norms(groups)
    assert all(value.dtype == torch.float64 for value in result)
    assert [v.item() for v in result] == pytest.approx([_reference(g) for g in groups], rel=1e-6)


def test_group_norms_mix_dtypes_special_values_and_empty_groups():
    groups = [[torch.tensor([3.0, 4.0], dtype=torch.float16), torch.tensor([12.0], dtype=torch.float64)],
              [torch.full((4,), 1e-30), torch.tensor([float("inf")])],
              [torch.tensor([float("nan"), 1.0])],
              [],
              [torch.full((100,), 1e-25), torch.ones(1)]]
    result = [v.item() for v in group_norms(groups)]
    assert result[0] == 13.0
    assert result[1] == math.inf and math.isnan(result[2]) and result[3] == 0.0
    assert result[4] == pytest.approx(_reference(groups[4]), rel=1e-6)


def test_group_norms_of_subnormal_entries_are_not_zero():
    # a float32 sum of squares gives exactly 0 here; the fused path must send these to norm()
    groups = [[torch.full((64, 64), 1e-25)], [torch.full((8,), 3e-40)]]
    assert [v.item() for v in group_norms(groups)] == pytest.approx([64 * 1e-25, math.sqrt(8) * 3e-40], rel=1e-5)


def test_joint_norms_combine_members_in_quadrature():
    norms = [torch.tensor(3.0, dtype=torch.float64), torch.tensor(4.0, dtype=torch.float64),
             torch.tensor(12.0, dtype=torch.float64)]
    assert [v.item() for v in joint_norms(norms, [2, 0, 1])] == [5.0, 0.0, 12.0]
    assert [v.item() for v in joint_norms(torch.stack(norms), [3])] == [13.0]
    with pytest.raises(ValueError, match=r"sizes must add up to the number of norms, 3; got \[1, 1\]"):
        joint_norms(norms, [1, 1])
