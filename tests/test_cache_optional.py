"""Caches are optional: with the cache where it cannot be written (under a regular file, in a
read-only folder, with no home, with a home that is not there) every command still works, says
why once on stderr, and the C step falls back to PyTorch's kernels with the same text."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from charlm import paths
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.files import source_of_path

from conftest import TINY_TEXT

NOTE = "charlm: note: cannot write the cache"
FAST = ("--preset", "tiny", "--batch-size", "4", "--seq-len", "16", "--steps", "3", "--eval-every", "2",
        "--device", "cpu", "--precision", "fp32", "--quiet")
# `python -c` runs charlm as a user whose uid has no passwd entry (many containers): with HOME
# unset too, Path.home() raises.
NO_PASSWD = ("import pwd, runpy\n"
             "def no_entry(uid):\n    raise KeyError(uid)\n"
             "pwd.getpwuid = no_entry\n"
             "runpy.run_module('charlm', run_name='__main__', alter_sys=True)\n")
WHERE = ["under-a-file", "read-only-folder", "no-home", "home-not-there"]
pytestmark = pytest.mark.xdist_group("cache-optional")     # one worker trains each condition's run once


@dataclass(frozen=True)
class NoCache:
    """A tiny run trained by `charlm train` where the cache cannot be written, and how to run
    charlm again in the same conditions."""
    where: str
    root: Path
    env: dict[str, str]
    no_passwd: bool
    train: subprocess.CompletedProcess

    def charlm(self, *args: str) -> subprocess.CompletedProcess:
        start = ["-c", NO_PASSWD] if self.no_passwd else ["-m", "charlm"]
        return subprocess.run([sys.executable, *start, *args], capture_output=True, text=True, timeout=180, check=False,
                              env=self.env, cwd=self.root)


def read_only_folder(path: Path) -> Path:
    """`path` made and left read-only; skipped where that does not stop writes (root)."""
    path.mkdir()
    path.chmod(0o500)
    try:
        (path / "probe").mkdir()
    except PermissionError:
        return path
    (path / "probe").rmdir()
    pytest.skip("a read-only folder does not stop this user's writes (root)")


def conditions(where: str, root: Path) -> tuple[dict[str, str], bool]:
    """The environment for `where`, and whether the user has no passwd entry."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHARLM_CACHE", "HOME")}
    env |= {"CHARLM_CHECKPOINTS": str(root / "checkpoints"), "CHARLM_CORPORA": str(root / "corpora"),
            "COLUMNS": "200"}
    blocker = root / "a-file"       # a path under a regular file cannot be made, by root either
    blocker.write_text("not a folder")
    if where == "under-a-file":
        env["CHARLM_CACHE"] = str(blocker / "cache")
    elif where == "read-only-folder":
        env["CHARLM_CACHE"] = str(read_only_folder(root / "read-only"))
    elif where == "home-not-there":
        env["HOME"] = str(blocker / "home")
    return env, where == "no-home"


@pytest.fixture(scope="module", params=WHERE)
def nocache(request, tmp_path_factory) -> NoCache:
    root = tmp_path_factory.mktemp(request.param)
    (root / "tiny.txt").write_text(TINY_TEXT, encoding="utf-8")
    (root / "query.txt").write_text(TINY_TEXT[:400], encoding="utf-8")
    env, no_passwd = conditions(request.param, root)
    made = NoCache(request.param, root, env, no_passwd, None)
    return replace(made, train=made.charlm("train", "tiny.txt", "--out", "run", *FAST))


def works(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`proc`, once it is known to have worked without a traceback and said the note at most once."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count(NOTE) <= 1, proc.stderr
    return proc


def test_train_works_without_a_cache_and_says_so_once(nocache):
    err = works(nocache.train).stderr
    assert err.count(NOTE) == 1, err
    note = next(line for line in err.splitlines() if line.startswith(NOTE))
    assert "working without it" in note and "CHARLM_CACHE" in note
    if nocache.where == "no-home":
        assert "no home directory" in note
    assert (nocache.root / "run" / "best" / "model.safetensors").is_file()
    if nocache.where == "read-only-folder":
        assert not any(Path(nocache.env["CHARLM_CACHE"]).iterdir())


@pytest.mark.parametrize("command", [
    pytest.param(("sample", "run", "--length", "40", "--seed", "1"), id="sample"),
    pytest.param(("sample", "run", "--length", "40", "--seed", "1", "--weights", "int8"), id="sample-int8"),
    pytest.param(("eval", "run"), id="eval"),
    pytest.param(("info", "run"), id="info"),
    pytest.param(("novelty", "run", "query.txt", "--json"), id="novelty"),
    pytest.param(("probe", "run", "--text-file", "query.txt", "--json"), id="probe"),
    pytest.param(("neurons", "run", "--text-file", "query.txt", "--pattern", "line-position", "--json"), id="neurons"),
])
@pytest.mark.parametrize("nocache", ["under-a-file", "no-home"], indirect=True)   # the two; train in all
def test_each_command_works_without_a_cache(nocache, command):
    works(nocache.train)
    err = works(nocache.charlm(*command)).stderr
    if command[0] == "novelty":
        assert "it is cached for next time" not in err, err


# -- the C step --------------------------------------------------------------------------

NATIVE = "from charlm.generate.native.build import library, problem\nprint(library() is None, problem())\n"


@pytest.mark.parametrize("nocache", ["under-a-file"], indirect=True)
def test_without_a_cache_the_c_step_falls_back_to_pytorch_with_the_same_text(nocache):
    from charlm.generate.native.build import compiler
    if compiler() is None:
        pytest.skip("no C compiler here: it falls back for that already")
    works(nocache.train)
    found = subprocess.run([sys.executable, "-c", NATIVE], capture_output=True, text=True, env=nocache.env,
                           timeout=120, check=False)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("True ") and "cache" in found.stdout, found.stdout
    sample = ("sample", "run", "--length", "200", "--seed", "3", "--weights", "int8", "--temperature", "0.8")
    without = works(nocache.charlm(*sample)).stdout
    on_torch = replace(nocache, env={**nocache.env, "CHARLM_CACHE": str(nocache.root / "cache"), "CHARLM_NATIVE": "0"})
    assert len(without) >= 200 and without == works(on_torch.charlm(*sample)).stdout


# -- each cache on its own, in process ----------------------------------------------------

@pytest.fixture
def unwritable(tmp_path, monkeypatch):
    """The cache under a regular file, and the note not yet said in this process."""
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("CHARLM_CACHE", str(tmp_path / "a-file" / "cache"))
    monkeypatch.setattr(paths, "_noted", False)


def _remember_verified(tmp_path):
    from charlm.corpus.verify import remember_verified
    (tmp_path / "text.txt").write_text("text")
    remember_verified(tmp_path / "text.txt", "0" * 64)


def _remember_a_speed(tmp_path):
    from charlm.machine.timings import recall, remember
    remember("timed", "shape", 123.0, machine="here")
    assert recall("timed", "shape", machine="here") is None


def _record_a_reference(tmp_path):
    from charlm.analysis.references import record, references
    record("f" * 64, "a benchmark", 1.5, "measured")
    assert references("f" * 64) == []


def _measure_yardsticks(tmp_path):
    from charlm.corpus.encoded import encode_text
    from charlm.corpus.yardsticks import yardsticks_for
    assert yardsticks_for(encode_text("tiny", TINY_TEXT), 0.1).ngrams


def _encode_a_corpus(tmp_path):
    (tmp_path / "tiny.txt").write_text(TINY_TEXT, encoding="utf-8")
    corpus = encode_corpus(source_of_path(str(tmp_path / "tiny.txt")))
    assert corpus.vocab.decode(np.asarray(corpus.ids).tolist()) == TINY_TEXT


@pytest.mark.parametrize("write", [_remember_verified, _remember_a_speed, _record_a_reference, _measure_yardsticks,
                                   _encode_a_corpus], ids=lambda f: f.__name__.strip("_"))
def test_each_cache_write_goes_on_without_the_cache_and_says_so_once(unwritable, tmp_path, capsys, write):
    write(tmp_path)
    write(tmp_path)
    assert capsys.readouterr().err.count(NOTE) == 1


def test_an_index_that_cannot_be_kept_is_built_in_memory(tmp_path, capsys, monkeypatch):
    from charlm.analysis.suffixes import build_suffixes, index_path, suffixes
    monkeypatch.setattr(paths, "_noted", False)
    text = np.frombuffer(TINY_TEXT.encode(), np.uint8)
    ids = np.memmap(tmp_path / "text.ids", np.uint8, "w+", shape=text.shape)
    ids[:] = text
    ids.flush()
    ids = np.memmap(tmp_path / "text.ids", np.uint8, "r", shape=text.shape)
    index_path(ids, len(ids)).mkdir()       # a folder where the index goes: it cannot be written there
    assert np.array_equal(suffixes(ids), build_suffixes(text))
    assert capsys.readouterr().err.count(NOTE) == 1


def test_a_read_only_cache_still_serves_what_it_holds(tmp_path, tiny_corpus, capsys, monkeypatch):
    first = encode_corpus(source_of_path(str(tiny_corpus)))
    cache = Path(os.environ["CHARLM_CACHE"])
    held = Path(first.ids.filename)
    os.utime(held, ns=(1, 1))        # not as last seen whole: its CRC is checked, and the stamp cannot be kept
    folders = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o500)
    monkeypatch.setattr(paths, "_noted", False)
    try:
        try:
            (cache / "probe").mkdir()
            pytest.skip("a read-only folder does not stop this user's writes (root)")
        except PermissionError:
            pass
        again = encode_corpus(source_of_path(str(tiny_corpus)))
    finally:
        for folder in folders:
            folder.chmod(0o700)
    assert isinstance(again.ids, np.memmap) and Path(again.ids.filename) == held
    assert np.array_equal(again.ids, first.ids)
    assert capsys.readouterr().err.count(NOTE) == 1


async def test_the_app_shows_the_note_once_as_a_notification(unwritable, tiny_corpus, capsys):
    """In the app no one sees stderr: the note is a notification, and training still runs."""
    from charlm.tui.app import CharLMApp
    from tui.conftest import SIZE, start_training, tiny_options, wait_for
    async with CharLMApp(tiny_options(tiny_corpus, budget=30)).run_test(size=SIZE) as pilot:
        session = await start_training(pilot)
        await wait_for(pilot, lambda: not session.active, what="the run to finish")
        notes = [n.message for n in pilot.app._notifications if "cannot write the cache" in n.message]
    assert len(notes) == 1 and "working without it" in notes[0]
    assert paths.say_note is paths.note_to_stderr            # given back when the app ends
    assert NOTE not in capsys.readouterr().err
