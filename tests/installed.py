"""charlm as a user installs it: a wheel built offline from the tracked files, installed (not
editable) into a fresh virtual environment that borrows this one's packages (torch is far too big
to download per test run). conftest.py imports the fixtures, so any test can ask for them; tests
that share them should sit in the xdist group INSTALL_GROUP, or each worker builds its own."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_GROUP = "installed-charlm"


def tracked_files() -> list[str]:
    """The checkout's tracked files that exist in its working tree (a deletion not yet committed
    is gone); pytest.skip where there is no git or no git checkout to ask."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: no list of tracked files to build the wheel from")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: {listed.stderr.strip()}")
    return [name for name in listed.stdout.split("\0")
            if name and ((ROOT / name).is_symlink() or (ROOT / name).exists())]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment (the per-test CHARLM_* dirs included) with nothing that would
    point an interpreter back at the clone or this virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, **extra}


def venv_paths(python: Path) -> tuple[Path, Path]:
    """(site-packages, scripts directory) of the environment that `python` runs in."""
    ask = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['scripts'])"
    asked = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True, env=clean_env(),
                           timeout=60)
    purelib, scripts = asked.stdout.splitlines()
    return Path(purelib), Path(scripts)


@pytest.fixture(scope="session")
def charlm_wheel(tmp_path_factory) -> Path:
    """charlm's wheel, built once per session without the network, from a copy of the tracked
    files: untracked junk and egg-info in the checkout cannot leak in, and build/ lands in the copy."""
    if importlib.util.find_spec("setuptools") is None or importlib.util.find_spec("pip") is None:
        pytest.skip("setuptools and pip are needed to build the wheel offline")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-index",
                            "--no-build-isolation", "-w", str(root / "dist")],
                           cwd=root, capture_output=True, text=True, env=clean_env(), timeout=180)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("charlm-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_charlm(charlm_wheel, tmp_path_factory) -> Path:
    """The `charlm` script of a fresh virtual environment that has the wheel installed; its
    python is beside it. Every other package comes from this interpreter's site-packages."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages, scripts = venv_paths(python)
    # Plain directory lines: Python appends each to sys.path without reading the .pth files inside,
    # so the clone's editable install (a .pth that installs a finder) stays out of the new venv.
    (site_packages / "borrowed-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    empty = tmp_path_factory.mktemp("empty")
    before = subprocess.run([str(python), "-c", "import importlib.util; print(importlib.util.find_spec('charlm'))"],
                            cwd=empty, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert before.stdout.strip() == "None", f"charlm importable before the install: {before.stdout}{before.stderr}"
    # --ignore-installed: pip sees the clone's editable charlm through the borrowed directories and
    # must neither count it as installed nor try to uninstall it.
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                                str(charlm_wheel)], cwd=empty, capture_output=True, text=True, env=clean_env(),
                               timeout=180)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return scripts / "charlm"
