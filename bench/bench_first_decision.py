"""Time to the first routing decision in a fresh process: from a router folder, from the MLflow
registry (alias, first download and cached), and through the ``router route`` CLI.

``python bench/bench_first_decision.py --router DIR [--repeats 3]``

The folder is registered once in a throwaway sqlite MLflow store (a temporary project with its
own ``mlflow.yaml``), then every scenario runs ``--repeats`` times in a new Python process; the
median of each phase is printed as JSON, with which heavy libraries each process imported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Integrate x^2 * e^x dx"

# Runs in the child: phases of one first decision, and which heavy modules got imported.
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from router import Router
t1 = time.perf_counter()
spec = sys.argv[1]
r = Router.from_config(None if spec == "-" else spec)
t2 = time.perf_counter()
d = r.route(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_route_s": t3 - t2, "total_s": t3 - t0,
                  "task_source": d.task_source,
                  "imported": sorted(m for m in ("torch", "mlflow", "sklearn", "sentence_transformers", "pandas")
                                     if m in sys.modules)}))
"""


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_avg_1min": round(os.getloadavg()[0], 2)}


def register(folder: Path, project: Path) -> str:
    """Register ``folder`` as version 1 (and champion) of ``bench-router`` in a new sqlite store."""
    (project / "mlflow.yaml").write_text(f"tracking_uri: sqlite:///{project}/mlflow.db\n"
                                         "experiment: bench\nregistered_model: bench-router\n")
    env = dict(os.environ, ROUTER_PROJECT_DIR=str(project), MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
               MLFLOW_LOGGING_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    code = ("from pathlib import Path; from router import Router; "
            "from router.training.tracking.runs import load_settings, log_training; "
            f"log_training(load_settings(), Router.load({str(folder)!r}), params={{}}, data_files=[], metrics={{}})")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=project, capture_output=True)
    return "models:/bench-router@champion"


def run_probe(spec: str, env: dict, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, spec, PROMPT], env=env, cwd=cwd, capture_output=True,
                         text=True)
    if out.returncode:
        raise SystemExit(f"probe failed for {spec}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(args: list[str], env: dict, cwd: Path) -> dict:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "router", "route", "--quiet", "--json", *args, PROMPT], env=env,
                         cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"router route {args} failed:\n{out.stderr}")
    return {"total_s": time.perf_counter() - t, "task_source": json.loads(out.stdout)[0]["task_source"]}


def summarise(runs: list[dict]) -> dict:
    out = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0] if k.endswith("_s")}
    out["task_source"] = runs[0]["task_source"]
    if "imported" in runs[0]:
        out["imported"] = runs[0]["imported"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", required=True, help="a trained router folder (e.g. from `router train --no-track`)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per scenario (median reported)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # this checkout's router, as in the children
    folder = Path(args.router).resolve()
    results: dict[str, dict] = {}
    from router.config import project_dir

    # the exported ONNX encoder lives in the embedding cache: use the invoking project's
    cache = Path(os.environ.get("ROUTER_CACHE_DIR") or project_dir() / ".cache")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        base = dict(os.environ, ROUTER_PROJECT_DIR=str(project), ROUTER_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1",
                    TOKENIZERS_PARALLELISM="false", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
                    MLFLOW_LOGGING_LEVEL="WARNING")
        # the children import this checkout's router, whatever the venv's editable install points at
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        base.pop("ROUTER_MODEL", None)
        base.pop("MLFLOW_TRACKING_URI", None)
        alias = register(folder, project)
        # this throwaway store's downloads (router.persistence.resolve.fetch keys them by store)
        store = hashlib.sha256(f"sqlite:///{project}/mlflow.db".encode()).hexdigest()[:12]
        routers = cache / "routers" / store

        def forget() -> None:
            from router.persistence.resolve import forget_aliases

            forget_aliases(f"sqlite:///{project}/mlflow.db", environ=base)
        scenarios = {
            "folder (Router.load)": lambda: run_probe(str(folder), base, project),
            "registry alias, not cached (download)": lambda: (shutil.rmtree(routers, ignore_errors=True),
                                                             run_probe(alias, base, project))[1],
            "registry alias, cached (alias lookup only)": lambda: run_probe("-", base, project),
            "registry version, cached (no mlflow)": lambda: run_probe("models:/bench-router/1", base, project),
            "CLI: router route --router DIR": lambda: run_cli(["--router", str(folder)], base, project),
            "CLI: router route, champion (alias looked up)": lambda: (forget(), run_cli([], base, project))[1],
            "CLI: router route, champion (lookup < 60 s old reused)": lambda: run_cli([], base, project),
        }
        for name, fn in scenarios.items():
            results[name] = summarise([fn() for _ in range(args.repeats)])
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        shutil.rmtree(routers, ignore_errors=True)
    print(json.dumps({"router": str(folder), "prompt": PROMPT, "repeats": args.repeats, "results": results,
                      "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
