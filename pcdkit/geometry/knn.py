"""Exact k-nearest-neighbour search, batched, on the tensors' device, with pluggable backends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from pcdkit.errors import PcdkitError
from pcdkit.geometry.backends import pick

#: bytes of distance matrix the torch backend materialises at once
CHUNK_BYTES = 128 * 2**20


def knn(
    query: torch.Tensor, ref: torch.Tensor, k: int, *, norm: int = 2, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of ``ref`` for every point of ``query``.

    Shapes: ``query`` (B, M, D) or (M, D), ``ref`` (B, N, D) or (N, D). Returns ``(dist, idx)``
    sorted ascending, each (B, M, k) (or (M, k)): for ``norm=2`` squared Euclidean distances
    (pytorch3d's convention), for ``norm=1`` L1 distances. A point is its own neighbour when it
    belongs to both sets.
    """
    dist, idx = _search(query, ref, k, norm, backend, distances=True)
    assert dist is not None
    return dist, idx


def knn_indices(
    query: torch.Tensor, ref: torch.Tensor, k: int, *, norm: int = 2, backend: str = "auto",
    rerank: bool = True,
) -> torch.Tensor:
    """The indices of :func:`knn` alone, (B, M, k) or (M, k); backends that search on the host
    skip recomputing the distances. ``rerank=False`` lets the brute-force ``torch`` backend
    rank by its matrix-product distances alone: the same neighbours but for near-ties within
    their rounding (~1e-7 relative), in about half the time; for training, where no reference
    ordering is at stake."""
    return _search(query, ref, k, norm, backend, distances=False, rerank=rerank)[1]


def _search(query: torch.Tensor, ref: torch.Tensor, k: int, norm: int, backend: str,
            distances: bool, rerank: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    single = query.dim() == 2
    q = query.unsqueeze(0) if single else query
    r = ref.unsqueeze(0) if ref.dim() == 2 else ref
    if q.shape[0] != r.shape[0] or q.shape[-1] != r.shape[-1]:
        raise ValueError(f"knn: incompatible shapes {tuple(query.shape)} and {tuple(ref.shape)}")
    if not 1 <= k <= r.shape[1]:
        raise ValueError(f"knn: k={k} must be in [1, {r.shape[1]}] (points in ref)")
    if norm not in (1, 2):
        raise ValueError(f"knn: norm must be 1 or 2, got {norm}")
    which = pick(backend, q.device, "knn", dims=q.shape[-1])
    if which == "scipy":
        idx = _knn_scipy(q, r, k, norm)
        dist = _exact(q, r, idx, norm) if distances else None
    elif which == "avx512" and norm == 2 and q.dtype == torch.float32 and k <= _BRUTE_MAX_K:
        idx = _knn_avx512(q, r, k)
        dist = _exact(q, r, idx, norm) if distances else None
    elif which == "torch" and not rerank:
        dist, idx = None, _knn_torch_unranked(q, r, k, norm)
    else:
        fn = {"torch": _knn_torch, "pytorch3d": _knn_pytorch3d, "pyg": _knn_pyg,
              "avx512": _knn_torch}[which]  # avx512 outside its kernel's cases: brute force
        dist, idx = fn(q, r, k, norm)
    if single:
        return (None if dist is None else dist[0]), idx[0]
    return dist, idx


def gather_neighbours(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (B, N, F) at ``idx`` (B, M, K) -> (B, M, K, F)."""
    B, N, F = x.shape
    # one index_select over the flattened batch: 3-5x faster than advanced indexing x[b, idx]
    # (benchmarks/geometry.py)
    flat = (idx + N * torch.arange(B, device=idx.device).view(B, *([1] * (idx.dim() - 1))))
    return x.reshape(B * N, F).index_select(0, flat.reshape(-1)).view(*idx.shape, F)


def _exact(q: torch.Tensor, r: torch.Tensor, idx: torch.Tensor, norm: int) -> torch.Tensor:
    diff = gather_neighbours(r, idx) - q.unsqueeze(2)
    return diff.abs().sum(-1) if norm == 1 else diff.square().sum(-1)


def _knn_torch(q: torch.Tensor, r: torch.Tensor, k: int, norm: int) -> tuple[torch.Tensor, ...]:
    N = r.shape[1]
    # Candidates from the fast matrix-product distance, then exact re-ranking, so cancellation in
    # |a|^2 - 2ab + |b|^2 can never change the returned distances.
    extra = min(N, k + 8) if norm == 2 else k
    dists, idxs = [], []
    for qc, d in _distance_chunks(q, r, norm):
        cand = smallest_indices(d, extra)
        exact = _exact(qc, r, cand, norm)
        order = exact.topk(k, dim=-1, largest=False)
        dists.append(order.values)
        idxs.append(torch.gather(cand, -1, order.indices))
    return torch.cat(dists, 1), torch.cat(idxs, 1)


def _knn_torch_unranked(q: torch.Tensor, r: torch.Tensor, k: int, norm: int) -> torch.Tensor:
    idxs = []
    for _, d in _distance_chunks(q, r, norm):
        cand = smallest_indices(d, k)
        order = _order_key(torch.gather(d, -1, cand)).argsort(-1)
        idxs.append(torch.gather(cand, -1, order))
    return torch.cat(idxs, 1)


def _distance_chunks(q: torch.Tensor, r: torch.Tensor, norm: int
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(query chunk (B, m, D), its distances to ``r`` (B, m, N)) of at most CHUNK_BYTES each:
    squared Euclidean by one batched product ``|a|^2 - 2 a.b + |b|^2`` (cancellation can make
    it slightly negative; it only ranks), or L1."""
    B, M, _ = q.shape
    N = r.shape[1]
    step = max(1, CHUNK_BYTES // max(1, B * N * q.element_size()))
    r_sq = r.square().sum(-1).unsqueeze(-2) if norm == 2 else None
    for s in range(0, M, step):
        qc = q[:, s:s + step]
        if r_sq is None:
            yield qc, torch.cdist(qc, r, p=1.0)
        else:
            d = torch.baddbmm(r_sq, qc, r.transpose(1, 2), alpha=-2)
            yield qc, d.add_(qc.square().sum(-1, keepdim=True))


def smallest_indices(d: torch.Tensor, c: int) -> torch.Tensor:
    """Indices (..., c) of the ``c`` smallest entries of each row of ``d`` (..., N), in no order.

    On CPU, for long rows, in two levels: the columns fall into strided groups of ``g ~ sqrt(N /
    c)``, the ``c`` groups with the smallest minima are kept and the ``c`` smallest of their
    entries chosen. Exact: each of the row's ``c`` smallest entries lies in a group whose
    minimum is itself among the ``c`` smallest, and at most ``c`` groups have one (ties aside,
    where any choice is as good). A row then costs one minimum pass and two selections over
    ~2 sqrt(c N) entries, ranked as integers with the floats' order: 1.3-1.6x faster than
    ``torch.topk`` on 1000-wide rows (``benchmarks/knn_select.py``). CUDA's top-k is a radix
    select and keeps it.
    """
    N = d.shape[-1]
    size = max(2, round(math.sqrt(N / c)))
    n_groups = N // size  # the last N - n_groups * size (< size) columns are always candidates
    if d.device.type != "cpu" or n_groups < c:
        return d.topk(c, dim=-1, largest=False, sorted=False).indices
    rows = d.reshape(-1, N)
    grouped = n_groups * size
    minima = rows[:, :grouped].reshape(-1, size, n_groups).amin(1)  # group j: j, j + n_groups, ...
    kept = _order_key(minima).topk(c, dim=-1, largest=False, sorted=False).indices
    cols = (kept.unsqueeze(-1) + n_groups * torch.arange(size, device=d.device)).flatten(1)
    if grouped < N:
        cols = torch.cat([cols, torch.arange(grouped, N, device=d.device).expand(len(rows), -1)],
                         1)
    chosen = _order_key(torch.gather(rows, 1, cols)).topk(c, dim=-1, largest=False,
                                                          sorted=False).indices
    return torch.gather(cols, 1, chosen).reshape(*d.shape[:-1], c)


_SIGNED_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def _order_key(x: torch.Tensor) -> torch.Tensor:
    """Integers ordered as the floats of ``x`` (IEEE bits, negatives' magnitude bits flipped),
    else ``x``: CPU top-k on them runs 1.3-2x faster, since it skips the NaN-aware float
    comparisons."""
    ints = _SIGNED_BITS.get(x.dtype)
    if ints is None:
        return x
    bits = x.contiguous().view(ints)
    return bits ^ ((bits >> (bits.element_size() * 8 - 1)) & torch.iinfo(ints).max)


_PARALLEL_QUERY = 50_000  # query points x k above which cKDTree uses every core


def _knn_scipy(q: torch.Tensor, r: torch.Tensor, k: int, norm: int) -> torch.Tensor:
    """Indices only: the caller recomputes distances in the input precision when it needs them,
    identical to what the torch backend returns."""
    from scipy.spatial import cKDTree

    # cKDTree is CPU-only: a CUDA tensor is searched on the host, the result goes back
    qs, rs = q.detach().cpu().numpy(), r.detach().cpu().numpy()

    def one(b: int) -> np.ndarray:
        # threads inside a query pay off only for large ones; small ones (denoising patches)
        # lose more to thread start-up and lock waits than they gain
        workers = -1 if len(qs[b]) * k >= _PARALLEL_QUERY else 1
        return cKDTree(rs[b]).query(qs[b], k=k, p=norm, workers=workers)[1]

    threads = min(len(qs), torch.get_num_threads())
    if threads > 1 and len(qs[0]) * k < _PARALLEL_QUERY:
        # a batch of small searches: one patch per thread (cKDTree releases the GIL)
        with ThreadPoolExecutor(threads) as pool:
            found = list(pool.map(one, range(len(qs))))
    else:
        found = [one(b) for b in range(len(qs))]
    idx = np.stack([i.reshape(len(qs[0]), k) for i in found]).astype(np.int64)
    return torch.from_numpy(idx).to(q.device)


_BRUTE_MAX_K = 64  # knn_brute.cpp's kMaxK


def _knn_avx512(q: torch.Tensor, r: torch.Tensor, k: int) -> torch.Tensor:
    """Indices by pcdkit's brute-force kernel: squared distances as sums of squared differences
    in float32 (pytorch3d's arithmetic), ties to the lower index. For a patch's 1,000 points it
    is 2.5-3x faster than a k-d tree per patch (k = 4, 3-D) or the batched product (k = 17,
    24-D) (``benchmarks/geometry.py``)."""
    from pcdkit.kernels import cpu_kernels

    kernels = cpu_kernels()
    if kernels is None:
        raise PcdkitError("geometry backend 'avx512': pcdkit's CPU kernels could not be built "
                          "here (needs AVX512-VNNI and a C++ compiler); use backend: auto")
    return kernels.knn_brute(q.detach().contiguous(), r.detach().contiguous(), k)


def _knn_pytorch3d(q: torch.Tensor, r: torch.Tensor, k: int, norm: int) -> tuple[torch.Tensor, ...]:
    from pytorch3d.ops import knn_points

    out = knn_points(q, r, K=k, norm=norm, return_sorted=True)
    return out.dists, out.idx


def _knn_pyg(q: torch.Tensor, r: torch.Tensor, k: int, norm: int) -> tuple[torch.Tensor, ...]:
    import torch_cluster

    if norm != 2:
        return _knn_torch(q, r, k, norm)
    B, M, D = q.shape
    N = r.shape[1]
    bx = torch.arange(B, device=r.device).repeat_interleave(N)
    by = torch.arange(B, device=q.device).repeat_interleave(M)
    row, col = torch_cluster.knn(r.reshape(-1, D), q.reshape(-1, D), k, bx, by)
    # row: flat query index, col: flat ref index; exactly k per query when N >= k
    order = torch.argsort(row, stable=True)
    col = col[order].view(B, M, k) - (torch.arange(B, device=q.device) * N).view(B, 1, 1)
    dist = _exact(q, r, col, norm)
    dist, o = dist.sort(dim=-1)
    return dist, torch.gather(col, -1, o)
