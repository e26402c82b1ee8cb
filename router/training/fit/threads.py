"""Many small scikit-learn fits at once.

On these shapes (10^4 rows x 10^3 features, lbfgs) OpenBLAS's own threads cost more than they
give: one BLAS thread per fit, and one fit per core, is 3.5x faster on 2 cores than one fit at a
time on multi-threaded BLAS (BENCHMARKS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["map_on_threads", "one_blas_thread"]

T = TypeVar("T")


def one_blas_thread():
    """Context manager: BLAS (and OpenMP) limited to one thread inside it."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def map_on_threads(fn: Callable[[T], Any], items: Iterable[T], n_jobs: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on ``n_jobs`` threads (default: one per core), in order,
    each with one BLAS thread."""
    from joblib import Parallel, delayed

    items = list(items)
    jobs = max(1, min(len(items), n_jobs or os.cpu_count() or 1))
    with one_blas_thread():
        return Parallel(n_jobs=jobs, backend="threading")(delayed(fn)(x) for x in items)
