"""`charlm corpus ...` and catalog names as CORPUS, run as a user would, against a fake mirror."""

from __future__ import annotations

import json
import os

import pytest
from corpus_fakes import FAKE_TEXT, entry_fields, write_catalog

from charlm.cli.main import main

from conftest import run_cli

DATA = FAKE_TEXT.encode()
FAST = ("--precision", "fp32", "--device", "cpu", "--batch-size", "8", "--seq-len", "32")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A catalog with `fake` (served by a mirror directory) and `broken` (mirror copy has other bytes)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "fake.txt").write_bytes(DATA)
    (mirror / "broken.txt").write_bytes(DATA[::-1])
    write_catalog(tmp_path / "catalog.toml", {"fake": entry_fields(DATA, "fake.txt"),
                                             "broken": entry_fields(DATA, "broken.txt")})
    monkeypatch.setenv("CHARLM_CATALOG", str(tmp_path / "catalog.toml"))
    monkeypatch.setenv("CHARLM_MIRROR", str(mirror))
    monkeypatch.setenv("CHARLM_OFFLINE", "1")          # never reach for the internet
    return tmp_path


def test_get_then_list(env):
    corpora = env / "corpora"
    r = run_cli("corpus", "get", "fake")
    assert r.returncode == 0, r.stderr
    assert "sha256 verified" in r.stdout and (corpora / "fake.txt").read_bytes() == DATA
    (corpora / "notes.txt").write_text("my own notes\n")
    rows = json.loads(run_cli("corpus", "list", "--json").stdout)
    assert [(r["name"], r["kind"], r["status"]) for r in rows] == [
        ("notes.txt", "user", "ready"), ("fake", "catalog", "ready"), ("broken", "catalog", "not downloaded"),
        ("python-stdlib", "builtin", "ready")]


def test_get_again_and_the_list_table(env, capsys):
    """In-process, to save a Python start: the same code paths as above."""
    assert main(["corpus", "get", "fake"]) == 0 and main(["corpus", "get", "fake"]) == 0
    assert "already in" in capsys.readouterr().out
    assert main(["corpus", "list"]) == 0
    out = capsys.readouterr().out
    assert "fake" in out and "ready" in out and "not downloaded" in out and "charlm corpus get NAME" in out


def test_get_unknown_name_suggests_and_leaves_nothing(env):
    r = run_cli("corpus", "get", "fak")
    assert r.returncode == 2
    assert r.stderr.strip() == "charlm: error: 'fak' is not in the catalog; did you mean 'fake'?"
    assert not (env / "corpora").exists()


def test_get_checksum_mismatch_is_one_line_and_discards(env):
    r = run_cli("corpus", "get", "broken")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "wrong checksum" in r.stderr
    assert os.listdir(env / "corpora") == []


def test_info_reports_encoding_problems_instead_of_crashing(env):
    bad = env / "bad.txt"
    bad.write_bytes(b"\xef\xbb\xbfcaf\xe9\r\nok\rend\n")
    r = run_cli("corpus", "info", str(bad), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["encoding_problems"] == 1 and info["problems"][0]["offset"] == 6
    assert info["line_endings"] == {"lf": 1, "crlf": 1, "cr": 1} and info["boms"] == {str(bad): "utf-8"}



def test_info_table(env, capsys):
    bad = env / "bad.txt"
    bad.write_bytes(b"caf\xe9\r\nok\n")
    assert main(["corpus", "info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "offset 3" in out and "--encoding" in out and "CRLF 1" in out and "(mixed)" in out


def test_catalog_name_works_as_train_corpus(env):
    r = run_cli("train", "fake", "--preset", "tiny", "--steps", "5", "--quiet", *FAST)
    assert r.returncode == 0, r.stderr
    runs = list((env / "checkpoints").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("fake-")
    assert json.loads((runs[0] / "source.json").read_text())["spec"] == "fake"
    assert (env / "corpora" / "fake.txt").read_bytes() == DATA


def test_train_without_corpus_falls_back_offline(env, monkeypatch):
    monkeypatch.setenv("CHARLM_MIRROR", str(env / "nowhere"))
    r = run_cli("train", "--preset", "tiny", "--steps", "2", "--quiet", *FAST)
    assert r.returncode == 0, r.stderr
    assert "charlm: note: shakespeare is not available" in r.stderr
    assert "python-stdlib" in r.stdout
