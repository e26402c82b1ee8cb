"""The built wheel works once installed, outside the checkout (issue 11).

Builds the wheel from a copy of the sources, installs it with ``--no-deps`` into a fresh
virtualenv whose ``.pth`` file points at this environment's site-packages (so torch & co are
importable without a download, while the checkout's editable ``router`` is not), and runs the
library and the CLI from an empty folder: everything must come from package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHECKOUT = Path(__file__).resolve().parents[2]


def _run(cmd, cwd, env, check=True):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


def build_and_install(tmp: Path, source: Path = CHECKOUT) -> tuple[Path, dict[str, str]]:
    """Build ``source``'s wheel, install it in a fresh venv under ``tmp``; (venv bin, env)."""
    src = tmp / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (source / name).exists():
            shutil.copy2(source / name, src / name)
    shutil.copytree(source / "router", src / "router", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(src),
          "-w", str(wheels)], tmp, dict(os.environ))
    (wheel,) = wheels.glob("*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp, dict(os.environ)).stdout.strip())
    # a plain path line: the dependencies, without running the editable install's .pth hooks
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
          str(wheel)], tmp, dict(os.environ))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROUTER_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return venv / "bin", env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    bin_dir, env = build_and_install(tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return bin_dir, env, work


def test_library_runs_from_the_installed_wheel(installed):
    bin_dir, env, work = installed
    code = ("import router; from router import Router; "
            "print(router.__file__); print(Router.default().route('hi').model)")
    out = _run([str(bin_dir / "python"), "-c", code], work, env).stdout.splitlines()
    assert Path(out[0]).is_relative_to(bin_dir.parent), out[0]  # the wheel's copy, not the checkout's
    assert out[1]  # a model name from the packaged catalog


@pytest.mark.parametrize("args", [["route", "hi"], ["classify", "x"], ["models"], ["serve", "--help"],
                                  ["stats", "--help"], ["eval", "--help"]])
def test_cli_runs_from_the_installed_wheel(installed, args):
    bin_dir, env, work = installed
    out = _run([str(bin_dir / "router"), *args], work, env)
    assert out.stdout.strip()


def test_train_without_data_names_what_is_missing(installed):
    bin_dir, env, work = installed
    empty = work / "empty"
    empty.mkdir()
    out = _run([str(bin_dir / "router"), "train", "--out", "X", "--no-track"], empty, env, check=False)
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr
    assert str(empty / "data" / "prompts") in out.stderr, out.stderr


def test_the_check_fails_without_the_catalog_as_package_data(tmp_path):
    # the same check on a copy whose pyproject ships no catalog YAML must fail
    source = tmp_path / "broken"
    source.mkdir()
    shutil.copytree(CHECKOUT / "router", source / "router", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(CHECKOUT / "README.md", source / "README.md")
    text = (CHECKOUT / "pyproject.toml").read_text()
    assert '"router.catalog" = ["*.yaml"]' in text
    (source / "pyproject.toml").write_text(text.replace('"router.catalog" = ["*.yaml"]\n', ""))
    bin_dir, env = build_and_install(tmp_path / "t", source)
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = _run([str(bin_dir / "router"), "route", "hi"], work, env, check=False)
    assert out.returncode != 0
    assert "default.yaml" in out.stderr or "catalog" in out.stderr.lower(), out.stderr
