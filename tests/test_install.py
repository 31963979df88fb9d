"""charlm installed like a tool: the wheel holds everything charlm reads at run time, and the
installed (not editable) `charlm` trains, samples, evaluates and builds its C step from an empty
directory far from the clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import TINY_TEXT
from installed import INSTALL_GROUP, ROOT, clean_env, tracked_files, venv_paths

pytestmark = pytest.mark.xdist_group(INSTALL_GROUP)

# What charlm reads beside its modules, through Path(__file__): the app's layout, the corpus
# catalog, and the C step it compiles on first use.
RUN_TIME_DATA = ("charlm/tui/app.tcss", "charlm/corpus/catalog.toml", "charlm/generate/native/step.c")
TRAIN_ARGS = ("--preset", "tiny", "--steps", "30", "--device", "cpu", "--precision", "fp32", "--seed", "7")


def run_installed(program: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(program), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, f"{program.name} {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def test_the_wheel_holds_what_charlm_reads_at_run_time_and_nothing_else(charlm_wheel):
    with zipfile.ZipFile(charlm_wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    dist_info = entry_points.split("/")[0]
    assert [f for f in RUN_TIME_DATA if f not in names] == [], "see [tool.setuptools.package-data]"
    missing = [f for f in tracked_files() if f.startswith("charlm/") and f not in names]
    assert missing == [], "tracked in charlm/ but not in the wheel: add them to [tool.setuptools.package-data]"
    assert "[console_scripts]\ncharlm = charlm.cli.main:main" in scripts
    # No tests, bench, corpora, checkpoints, .venv or build leftovers: only the package and its metadata.
    assert sorted(n for n in names if not n.startswith(("charlm/", f"{dist_info}/"))) == []
    assert sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc")) == []


def test_the_installed_charlm_is_the_wheel_not_the_clone(installed_charlm, tmp_path):
    site_packages, _ = venv_paths(installed_charlm.with_name("python"))
    imported = run_installed(installed_charlm.with_name("python"), "-c", "import charlm; print(charlm.__file__)",
                             cwd=tmp_path, env=clean_env())
    where = Path(imported.stdout.strip())
    assert where.is_relative_to(site_packages) and not where.is_relative_to(ROOT), where


def test_the_installed_charlm_trains_samples_evaluates_and_describes(installed_charlm, tmp_path):
    work = tmp_path / "elsewhere"          # an empty directory, not the clone
    work.mkdir()
    (work / "tiny.txt").write_text(TINY_TEXT, encoding="utf-8")
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"))
    python = installed_charlm.with_name("python")

    run_installed(installed_charlm, "train", "tiny.txt", *TRAIN_ARGS, "--out", "RUN", cwd=work, env=env)
    assert (work / "RUN" / "best").is_dir()
    sample = run_installed(installed_charlm, "sample", "RUN", "--prime", "The cat", "--length", "80", "--seed", "1",
                           "--device", "cpu", cwd=work, env=env).stdout
    assert sample.startswith("The cat") and len(sample.strip()) > 60, sample
    assert "nats/char" in run_installed(installed_charlm, "eval", "RUN", cwd=work, env=env).stdout
    info = run_installed(installed_charlm, "info", "RUN", cwd=work, env=env).stdout
    assert "parameters" in info and "nats/char" in info, info
    assert "usage: charlm" in run_installed(python, "-m", "charlm", "--help", cwd=work, env=env).stdout
    assert sorted(os.listdir(work)) == ["RUN", "tiny.txt"]     # nothing written beside the user's files


def test_the_installed_package_builds_its_c_step(installed_charlm, tmp_path):
    compiler = os.environ.get("CC", "").split()[:1] or ["cc", "gcc", "clang"]
    if not any(shutil.which(c) for c in compiler):
        pytest.skip(f"no C compiler ({' or '.join(compiler)}): generation would run on PyTorch's kernels")
    site_packages, _ = venv_paths(installed_charlm.with_name("python"))
    env = {k: v for k, v in clean_env().items() if k != "CHARLM_NATIVE"}
    built = run_installed(installed_charlm.with_name("python"), "-c",
                          "from charlm.generate.native import build; "
                          "print(build.SOURCE); print(build.problem()); print(build.library() is not None)",
                          cwd=tmp_path, env=env).stdout.splitlines()
    assert built[1:] == ["None", "True"], built
    assert Path(built[0]).is_relative_to(site_packages), built


def test_the_installed_charlm_finds_its_runs_from_any_directory(installed_charlm, tmp_path):
    """Trained in one directory with no --out, a run lives in the per-user data directory: from
    another directory, offline, `info` lists it, and `eval` and `sample` find it by name and its
    text by the absolute path the run recorded, or, once the text has moved, in the cache."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "tiny.txt").write_text(TINY_TEXT, encoding="utf-8")
    env = {k: v for k, v in clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"), CHARLM_OFFLINE="1").items()
           if k not in ("CHARLM_CHECKPOINTS", "CHARLM_CORPORA")}
    run_installed(installed_charlm, "train", "tiny.txt", *TRAIN_ARGS, cwd=a, env=env)
    home = tmp_path / "xdg" / "charlm" / "checkpoints"
    (name,) = os.listdir(home)
    assert os.listdir(a) == ["tiny.txt"]
    for here in (a, b):
        where = json.loads(run_installed(installed_charlm, "info", "--json", cwd=here, env=env).stdout)
        assert where["checkpoints"]["path"] == str(home) and [r["name"] for r in where["checkpoints"]["runs"]] == [name]
    evaluated = run_installed(installed_charlm, "eval", name, cwd=b, env=env).stdout
    assert "validation split of tiny" in evaluated
    sample = run_installed(installed_charlm, "sample", name, "--prime", "The", "--length", "40", "--device", "cpu",
                           cwd=b, env=env).stdout
    assert sample.startswith("The")
    (a / "tiny.txt").rename(a / "moved.txt")
    moved = run_installed(installed_charlm, "eval", name, cwd=b, env=env)
    assert moved.stdout == evaluated and "its copy in charlm's cache" in moved.stderr
