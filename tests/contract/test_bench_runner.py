"""`make bench` (bench/run_all.py) knows how to run every benchmark script, with the router it
needs; a script it does not know stops the whole run, so a new one must be registered."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_every_benchmark_script_is_registered(run_all):
    scripts = sorted(p.name for p in (ROOT / "bench").glob("bench_*.py"))
    assert scripts, "no benchmark scripts found"
    assert run_all.unknown_scripts() == []
    assert set(run_all.SCRIPTS) == set(scripts)  # and nothing registered that is gone


def test_an_unregistered_script_is_reported(run_all, tmp_path):
    for name in list(run_all.SCRIPTS)[:2] + ["bench_new_thing.py"]:
        (tmp_path / name).write_text("")
    assert run_all.unknown_scripts(tmp_path) == ["bench_new_thing.py"]


def test_router_kinds_are_known_and_routing_benchmarks_get_the_outcome_router(run_all):
    kinds = {b.router for b in run_all.SCRIPTS.values()}
    assert kinds <= {None, "default", "outcomes"}
    for b in run_all.SCRIPTS.values():
        if b.router == "outcomes":
            assert b.outcomes  # it cannot be trained without the outcome data


def test_commands(run_all, tmp_path):
    routers = {"default": tmp_path / "r", "outcomes": tmp_path / "ro"}
    enc = tmp_path / "enc"
    route = run_all.command("bench_route.py", run_all.SCRIPTS["bench_route.py"], routers, enc)
    assert route[0] == sys.executable and route[1].endswith("bench_route.py")
    assert route[2:] == ["--router", str(tmp_path / "r")]
    precall = run_all.command("bench_precall.py", run_all.SCRIPTS["bench_precall.py"], routers, enc)
    assert precall[2:] == ["--router", str(tmp_path / "ro")]
    gated = run_all.SCRIPTS["bench_gated.py"]
    assert run_all.command("bench_gated.py", gated, routers, enc)[2:] == ["--encoder", str(enc), "--build"]
    enc.mkdir()  # built once: reused, not rebuilt
    assert run_all.command("bench_gated.py", gated, routers, enc)[2:] == ["--encoder", str(enc)]


def test_scripts_that_read_the_gated_encoder_run_after_the_one_that_builds_it(run_all):
    names = list(run_all.SCRIPTS)
    builder = [n for n, b in run_all.SCRIPTS.items() if b.builds == "{encoder}"]
    assert builder == ["bench_gated.py"]
    readers = [n for n, b in run_all.SCRIPTS.items() if "{encoder}" in b.args and b.builds is None]
    assert readers and all(names.index(n) > names.index("bench_gated.py") for n in readers)
