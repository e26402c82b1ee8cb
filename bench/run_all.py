"""Run every benchmark in bench/ in turn (`make bench`); results are printed as JSON (copy into
BENCHMARKS.md).

The benchmarks that need a trained router get one, trained once and reused by later runs
(``--retrain`` trains them afresh), and every result names it:

- ``artifacts/bench-router``: ``router train`` as a user runs it (the project's and the shared
  labelled prompts, catalog priors per task, the language-gated encoder): the speed, gateway and
  load benchmarks.
- ``artifacts/bench-router-outcomes``: ``router train --catalog models/routerbench.yaml
  --outcomes <the shared outcome files>`` (learned quality and cost heads): the routing
  benchmarks, skipped, saying so, when the shared outcome data is missing.

``bench_gated.py`` and ``bench_early_exit.py`` need a task encoder fine-tuned with their group of
collections held out; ``bench_gated.py`` builds it once into ``artifacts/bench-gated-encoder``
(~20 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
ARTIFACTS = ROOT / "artifacts"


@dataclass(frozen=True)
class Bench:
    """How ``run_all`` runs one script: ``router``: which benchmark router it gets as ``--router``
    (``"default"``, ``"outcomes"`` or none); ``outcomes``: skipped without the shared outcome data;
    ``args``: extra arguments, ``{encoder}`` standing for the gated benchmark's encoder folder;
    ``builds``: a folder the script builds itself when given ``--build`` and it is missing."""

    router: str | None = None
    outcomes: bool = False
    args: tuple[str, ...] = ()
    builds: str | None = None


SCRIPTS = {
    "bench_route.py": Bench(router="default"),
    "bench_first_decision.py": Bench(router="default"),
    "bench_embed.py": Bench(),
    "bench_classify.py": Bench(router="default"),
    "bench_gateway.py": Bench(router="default"),
    "bench_routing_transfer.py": Bench(router="outcomes", outcomes=True),
    "bench_routing_ceiling.py": Bench(router="outcomes", outcomes=True),
    "bench_loop.py": Bench(outcomes=True),
    "bench_precall.py": Bench(router="outcomes", outcomes=True),
    "bench_cascade.py": Bench(outcomes=True),
    "bench_encoder.py": Bench(),
    "bench_router_load.py": Bench(router="default"),
    "bench_skops_heads.py": Bench(),
    "bench_fake_upstream.py": Bench(),
    "bench_faults.py": Bench(),
    "bench_stats.py": Bench(),
    "bench_scale.py": Bench(),
    "bench_static.py": Bench(),
    "bench_scorer_features.py": Bench(outcomes=True),
    "bench_gated.py": Bench(args=("--encoder", "{encoder}"), builds="{encoder}"),
    "bench_early_exit.py": Bench(args=("--encoder", "{encoder}")),  # after bench_gated: its encoder
}


def unknown_scripts(folder: Path = HERE) -> list[str]:
    """The ``bench_*.py`` scripts in ``folder`` that :data:`SCRIPTS` does not say how to run."""
    return sorted(set(p.name for p in folder.glob("bench_*.py")) - set(SCRIPTS))


def command(name: str, bench: Bench, routers: dict[str, Path], encoder: Path) -> list[str]:
    """The command line that runs script ``name`` (``routers``: kind -> folder)."""
    cmd = [sys.executable, str(HERE / name)]
    if bench.router is not None:
        cmd += ["--router", str(routers[bench.router])]
    cmd += [a.format(encoder=encoder) for a in bench.args]
    if bench.builds is not None and not Path(bench.builds.format(encoder=encoder)).exists():
        cmd.append("--build")
    return cmd


def train_router(folder: Path, outcomes: list[str]) -> None:
    cmd = [sys.executable, "-m", "router", "train", "--out", str(folder), "--no-track"]
    if outcomes:
        cmd += ["--catalog", str(ROOT / "models" / "routerbench.yaml"), "--outcomes", *outcomes]
    what = f"{len(outcomes)} outcome files" if outcomes else "labelled prompts, catalog priors"
    print(f"== training the benchmark router {folder} (router train, {what})", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="where the benchmark routers and encoder live")
    ap.add_argument("--retrain", action="store_true", help="train the benchmark routers afresh")
    ap.add_argument("--only", help="comma-separated script names to run (default: all)")
    args = ap.parse_args()
    missing = unknown_scripts()
    if missing:
        sys.exit(f"run_all.py does not know how to run {missing}: add them to SCRIPTS")
    only = set(args.only.split(",")) if args.only else set(SCRIPTS)
    if only - set(SCRIPTS):
        sys.exit(f"--only names unknown scripts {sorted(only - set(SCRIPTS))}; known: {sorted(SCRIPTS)}")

    from router.config import shared_data_dir
    from router.training.data.outcomes import default_outcome_files

    shared = shared_data_dir()
    outcomes = [str(p) for p in default_outcome_files(shared)]
    routers = {"default": args.artifacts / "bench-router", "outcomes": args.artifacts / "bench-router-outcomes"}
    wanted = {SCRIPTS[n].router for n in only if SCRIPTS[n].router and (outcomes or not SCRIPTS[n].outcomes)}
    for kind in sorted(wanted):
        folder = routers[kind]
        if args.retrain and folder.exists():
            shutil.rmtree(folder)
        if not folder.exists():
            train_router(folder, outcomes if kind == "outcomes" else [])
    for name, bench in SCRIPTS.items():
        if name not in only:
            continue
        print(f"== {name}", flush=True)
        if bench.outcomes and not outcomes:
            print(f"skipped: no outcome data under {shared / 'outcomes'}", flush=True)
            continue
        cmd = command(name, bench, routers, args.artifacts / "bench-gated-encoder")
        if bench.router is not None:
            print(f"router: {routers[bench.router]}", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
