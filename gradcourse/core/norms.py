"""The Frobenius norm of a tensor as a float64 number that does not underflow in float32.

Vanishing gradients are exactly the tensors whose entries fall below float32's range for squares
(about 1e-23), so every gradient norm the package reports goes through :func:`norm`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gradient_norm", "group_norms", "joint_norms", "norm", "SAFE_FLOAT32_NORM", "tensor_norms"]

SAFE_FLOAT32_NORM = 1e-14
"""Above this norm, a float32 sum of squares is accurate: squares that underflow or turn subnormal
(entries below about 1e-19) are each off by at most 1.4e-45, so ``n`` entries move ``||g||**2``
(at least 1e-28 here) by at most ``n * 1.4e-45``, under 1e-7 of it for tensors of up to 7e9 entries."""


def norm(tensor):
    """The Frobenius norm ``||g|| = sqrt(sum g_i**2)`` as a float64 scalar tensor, without underflow.

    In float32, ``sqrt(sum(g**2))`` underflows to exactly 0 once the entries fall
    below about 1e-23 (their squares are below float32's smallest subnormal,
    1.4e-45), which is precisely the regime a vanishing-gradient course measures.
    Below :data:`SAFE_FLOAT32_NORM` (and on overflow), the entries are therefore first divided
    by the largest magnitude ``m = max_i |g_i|``: ``||g|| = m * ||g / m||``, the scaling of
    LAPACK's ``xNRM2`` (Blue 1978, "A portable Fortran program to find the Euclidean norm of a
    vector", ACM TOMS 4(1)). Every scaled entry lies in [-1, 1] and the largest is 1, so the
    scaled sum of squares is at least 1, and an entry whose square underflows would have added
    less than 1e-45 to it. Either way the result is as accurate as float32 arithmetic (about
    1e-7 relative); an infinite entry gives inf, a NaN gives NaN. Float64 tensors are summed directly;
    a complex tensor's norm is that of its real and imaginary parts, ``sqrt(sum |z_i|**2)``.

    Summing in float64 instead would allocate a float64 copy, twice the tensor's size, at every call;
    the scaling needs no copy of that size, and none at all in the common case.
    """
    tensor = tensor.detach()
    if tensor.is_complex():        # |z|^2 = Re(z)^2 + Im(z)^2: the norm of the real and imaginary parts together
        tensor = torch.view_as_real(tensor.resolve_conj())
    if tensor.dtype == torch.float64:
        return torch.linalg.vector_norm(tensor)
    tensor = tensor.float()
    direct = torch.linalg.vector_norm(tensor)
    if tensor.numel() == 0:
        return direct.double()        # 0
    if tensor.device.type == "cpu" and SAFE_FLOAT32_NORM < direct.item() < math.inf:
        return direct.double()        # the common case; on CPU, reading the value costs nothing
    return _norm_without_sync(tensor, direct)


def _norm_without_sync(tensor, direct):
    """:func:`norm` of a non-empty float32 ``tensor`` given its float32 norm ``direct``, choosing
    between ``direct`` and the scaled norm with tensor operations only, so that a GPU never waits."""
    largest = torch.linalg.vector_norm(tensor, ord=math.inf)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    scaled = torch.linalg.vector_norm(tensor / scale).double() * scale.double()
    scaled = torch.where(torch.isinf(largest), torch.full_like(scaled, math.inf), scaled)
    return torch.where((direct > SAFE_FLOAT32_NORM) & torch.isfinite(direct), direct.double(), scaled)


def tensor_norms(tensors):
    """:func:`norm` of each tensor, as one 1-D float64 tensor.

    Float32 tensors on the CPU, the usual case, are measured by one fused ``torch._foreach_norm``
    call (as ``torch.nn.utils.get_total_norm`` does) and checked with one read of the results;
    the rare tensor whose float32 norm is below :data:`SAFE_FLOAT32_NORM` or not finite is measured
    again by :func:`norm`. Other tensors go through :func:`norm` one by one.

    Example:
        >>> tensor_norms([torch.tensor([3.0, 4.0]), torch.full((4,), 1e-30)])
        tensor([5.0000e+00, 2.0000e-30], dtype=torch.float64)
    """
    flat = [t.detach() for t in tensors]
    if not flat:
        return torch.zeros(0, dtype=torch.float64)
    fused = [k for k, t in enumerate(flat) if t.dtype == torch.float32 and t.device.type == "cpu"]
    if len(fused) == len(flat):
        direct = torch.stack(torch._foreach_norm(flat))
        if all(SAFE_FLOAT32_NORM < value < math.inf for value in direct.tolist()):
            return direct.double()
    return _stack([norm(t) for t in flat])


def _stack(values):
    """Scalar tensors as one 1-D tensor; on the CPU when they live on different devices."""
    if len({value.device for value in values}) == 1:
        return torch.stack(values)
    return torch.stack([value.cpu() for value in values])


def joint_norms(norms, sizes):
    """The norm of each group of tensors taken as one vector, given the norms of its members:
    ``||(t_1, ..., t_k)|| = sqrt(sum_j ||t_j||**2)``.

    Args:
        norms: the members' norms, float64: a 1-D tensor or a list of scalar tensors, the members
            of the first group, then of the second, ...
        sizes: how many members each group has (a group of none has norm 0).

    Returns:
        A 1-D float64 tensor, one norm per group, computed in a few tensor operations whatever the
        number of groups.

    Example:
        >>> joint_norms(torch.tensor([3.0, 4.0, 12.0], dtype=torch.float64), [2, 0, 1])
        tensor([ 5.,  0., 12.], dtype=torch.float64)
    """
    sizes = list(sizes)
    if sum(sizes) != len(norms):
        raise ValueError(f"sizes must add up to the number of norms, {len(norms)}; got {sizes}")
    if not torch.is_tensor(norms):
        norms = _stack(norms) if norms else torch.zeros(0, dtype=torch.float64)
    squares = norms.double().square()
    if sizes and all(size == sizes[0] for size in sizes) and sizes[0] > 0:   # e.g. a weight and a bias per layer
        return squares.reshape(len(sizes), sizes[0]).sum(dim=1).sqrt()
    index = torch.repeat_interleave(torch.arange(len(sizes), device=squares.device),
                                    torch.tensor(sizes, dtype=torch.long, device=squares.device))
    total = torch.zeros(len(sizes), dtype=torch.float64, device=squares.device).index_add_(0, index, squares)
    return total.sqrt()


def group_norms(groups):
    """:func:`norm` of each group of tensors taken as one vector (e.g. a layer's weight and bias):
    ``sqrt(sum_j ||t_j||**2)``, as a 1-D float64 tensor, one entry per group (see :func:`tensor_norms`).

    Example:
        >>> group_norms([[torch.tensor([3.0]), torch.tensor([4.0])], []])
        tensor([5., 0.], dtype=torch.float64)
    """
    groups = [list(group) for group in groups]
    return joint_norms(tensor_norms([t for group in groups for t in group]), [len(group) for group in groups])


def gradient_norm(params):
    """The global norm ``||g||`` of the gradients of ``params`` (as ``torch.nn.utils.clip_grad_norm_``
    computes it), as a tensor, read without touching the gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(grads)
    if not grads:   # torch before 2.6: the norm clip_grad_norm_ computes, from the same pieces
        return torch.tensor(0.0)
    with torch.no_grad():
        first = grads[0].device
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, 2.0).to(first) for g in grads]), 2.0)
