"""skops vs joblib for the router's scikit-learn heads: load time, file size, and which types
skops refuses to load unless trusted by name.

``python bench/bench_skops_heads.py [--repeats 20]``

Heads of the shapes a router holds: the task classifier's logreg (11 classes, 400 features) and
its MLP alternative, a ridge (complexity / cost heads), k-NN, and the answer scorer's
gradient-boosted trees with isotonic calibration (3 folds). Also shows skops refusing an object
whose unpickling would run a command. Prints one JSON line per head.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this ran",))


def _ms(f, repeats: int) -> float:
    f()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f()
    return round((time.perf_counter() - t0) / repeats * 1000, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    import joblib
    import numpy as np
    import skops
    import skops.io as sio
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 400)).astype(np.float32)
    y = rng.integers(0, 11, 600)
    yb = (X[:, 0] > 0).astype(int)
    heads = {
        "logreg (11 classes, 400 features)": LogisticRegression(max_iter=200).fit(X, y),
        "ridge": Ridge().fit(X, X[:, 0]),
        "mlp (256 hidden)": MLPClassifier((256,), max_iter=20).fit(X, y),
        "knn": KNeighborsClassifier().fit(X, y),
        "gradient-boosted trees + isotonic (answer scorer)": CalibratedClassifierCV(
            HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15), method="isotonic", cv=3).fit(X[:, :20], yb),
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, head in heads.items():
            pj, ps = d / "h.joblib", d / "h.skops"
            joblib.dump(head, pj)
            sio.dump(head, ps)
            untrusted = sio.get_untrusted_types(file=ps)
            print(json.dumps({"head": name, "joblib_load_ms": _ms(lambda: joblib.load(pj), args.repeats),
                              "skops_load_ms": _ms(lambda: sio.load(ps, trusted=untrusted), args.repeats),
                              "joblib_kb": pj.stat().st_size // 1024, "skops_kb": ps.stat().st_size // 1024,
                              "must_trust": untrusted}))
        sio.dump({"x": _RunsACommand()}, d / "evil.skops")
        try:
            sio.load(d / "evil.skops")
            refused = None
        except Exception as exc:  # skops.io.exceptions.UntrustedTypesFoundException
            refused = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"skops": skops.__version__, "object running a command": refused}))


if __name__ == "__main__":
    main()
