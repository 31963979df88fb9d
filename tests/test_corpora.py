"""Catalog corpora: mirror first, verified downloads, nothing half-written, and a default that always works."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from corpus_fakes import FAKE_TEXT, entry_fields, serve, write_catalog

from charlm.corpus import catalog, fetch, verify
from charlm.corpus import names as corpora
from charlm.corpus import files as corpus_files
from charlm.corpus.files import read_text
from charlm.corpus.names import default_corpus, list_corpora, record_spec, resolve_corpus
from charlm.errors import UsageError
from charlm.paths import corpora_dir

from conftest import SHARED_CORPORA

DATA = FAKE_TEXT.encode()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.0, 0.0))
    monkeypatch.setattr(fetch, "TIMEOUT", 5.0)


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A mirror directory holding fake.txt, and a catalog whose only entry `fake` describes it."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "fake.txt").write_bytes(DATA)
    monkeypatch.setenv("CHARLM_CATALOG", str(write_catalog(tmp_path / "catalog.toml", {"fake": entry_fields(DATA, "fake.txt")})))
    monkeypatch.setenv("CHARLM_MIRROR", str(root))
    return root


def everything_in(directory: Path) -> list[str]:
    """Every name in a directory, hidden temp files included."""
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_packaged_catalog_lists_shakespeare_with_its_checksum(monkeypatch):
    monkeypatch.delenv("CHARLM_CATALOG", raising=False)
    entry = catalog.find_entry("Shakespeare")
    assert entry is not None and entry.filename == "tinyshakespeare.txt" and entry.size == 1_115_394
    assert entry.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert catalog.find_entry("tinyshakespeare") == entry
    copy = SHARED_CORPORA / entry.filename
    if copy.exists():
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == entry.sha256


def test_mirror_directory_hit(mirror):
    seen = []
    source = resolve_corpus("fake", progress=lambda done, total: seen.append((done, total)))
    assert source.name == "fake" and source.paths == (corpora_dir() / "fake.txt",)
    assert read_text(source) == FAKE_TEXT
    assert seen[-1] == (len(DATA), len(DATA))
    assert everything_in(corpora_dir()) == ["fake.txt"]


def test_resolving_here_never_fetches(mirror):
    """What `charlm info` uses: a catalog text not on this machine is None, and nothing is copied."""
    assert corpora.resolve_here("fake") is None
    assert everything_in(corpora_dir()) == []
    resolve_corpus("fake")                                        # fetched the usual way...
    assert corpora.resolve_here("fake").paths == (corpora_dir() / "fake.txt",)    # ...then it is here


def test_mirror_file_url_hit(mirror, monkeypatch):
    monkeypatch.setenv("CHARLM_MIRROR", mirror.as_uri())
    assert fetch.fetch(catalog.find_entry("fake")).source == mirror.as_uri() + "/fake.txt"
    assert (corpora_dir() / "fake.txt").read_bytes() == DATA


def test_http_mirror_retries_after_a_dropped_connection(mirror, monkeypatch):
    with serve({"fake.txt": DATA}, ["cut", "ok"]) as (base, requests):
        monkeypatch.setenv("CHARLM_MIRROR", base + "/")
        result = fetch.fetch(catalog.find_entry("fake"))
    assert requests == ["cut", "ok"]
    assert result.path.read_bytes() == DATA and everything_in(corpora_dir()) == ["fake.txt"]


def test_present_file_is_verified_not_fetched_again(mirror, monkeypatch):
    resolve_corpus("fake")
    monkeypatch.setenv("CHARLM_MIRROR", str(mirror.parent / "gone"))
    monkeypatch.setenv("CHARLM_OFFLINE", "1")
    assert fetch.fetch(catalog.find_entry("fake")).source is None
    assert read_text(resolve_corpus("fake")) == FAKE_TEXT


def test_checksum_mismatch_discards_the_file(mirror):
    (mirror / "fake.txt").write_bytes(DATA.replace(b"question", b"QUESTION"))    # same size, other bytes
    with pytest.raises(UsageError, match=r"wrong checksum .*discarded") as e:
        resolve_corpus("fake")
    assert "CHARLM_MIRROR" in e.value.fix
    assert everything_in(corpora_dir()) == []


def test_wrong_size_on_the_mirror_is_not_used(mirror):
    (mirror / "fake.txt").write_bytes(DATA + b"extra")
    with pytest.raises(UsageError, match=r"not the catalog's"):
        resolve_corpus("fake")
    assert everything_in(corpora_dir()) == []


def test_interrupted_download_leaves_no_file(mirror, monkeypatch):
    with serve({"fake.txt": DATA}, ["cut"]) as (base, requests):
        monkeypatch.setenv("CHARLM_MIRROR", base)
        with pytest.raises(UsageError, match=r"cut off at [\d,]+ of [\d,]+ bytes \(3 tries\)") as e:
            resolve_corpus("fake")
    assert len(requests) == 3 and "try again" in e.value.fix
    assert everything_in(corpora_dir()) == []


def test_server_errors_are_retried_then_reported(mirror, monkeypatch):
    with serve({"fake.txt": DATA}, ["500"]) as (base, requests):
        monkeypatch.setenv("CHARLM_MIRROR", base)
        with pytest.raises(UsageError, match=r"HTTP 500"):
            resolve_corpus("fake")
    assert len(requests) == 3 and everything_in(corpora_dir()) == []


def test_cancelling_from_progress_leaves_no_file(mirror, monkeypatch):
    monkeypatch.setattr(fetch, "CHUNK", 256)

    def cancel(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resolve_corpus("fake", progress=cancel)
    assert everything_in(corpora_dir()) == []


def test_offline_says_so_plainly(mirror, monkeypatch):
    monkeypatch.delenv("CHARLM_MIRROR")

    def no_dns(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_dns)
    with pytest.raises(UsageError) as e:
        resolve_corpus("fake")
    assert e.value.problem.startswith("cannot download fake: no network (cannot reach 127.0.0.1")
    assert e.value.fix == "set CHARLM_MIRROR to a directory holding fake.txt, or pass a file path"
    assert everything_in(corpora_dir()) == []


def test_missing_mirror_file_then_refused_url_names_both(mirror):
    (mirror / "fake.txt").unlink()
    with pytest.raises(UsageError, match=r"the mirror .* has no fake\.txt; 127\.0\.0\.1 refused the connection"):
        resolve_corpus("fake")


def test_default_corpus_is_shakespeare_from_the_mirror(monkeypatch):
    if not (SHARED_CORPORA / "tinyshakespeare.txt").exists():
        pytest.skip("no ../shared/corpora mirror on this machine")
    monkeypatch.setenv("CHARLM_MIRROR", str(SHARED_CORPORA))
    monkeypatch.setenv("CHARLM_OFFLINE", "1")
    source, notice = default_corpus()
    assert source.name == "shakespeare" and notice is None
    assert source.paths == (corpora_dir() / "tinyshakespeare.txt",)


def test_offline_default_falls_back_to_the_standard_library(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLM_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setenv("CHARLM_OFFLINE", "1")
    source, notice = default_corpus()
    assert source.name == "python-stdlib"
    assert notice.startswith("shakespeare is not available (cannot download shakespeare:")
    assert "Python standard library" in notice and "CHARLM_MIRROR" in notice
    rel = [p.relative_to(corpora._stdlib_root()).as_posix() for p in source.paths]
    assert rel == sorted(rel) and all(p.endswith(".py") for p in rel)
    assert not any(part in corpora.STDLIB_SKIP for p in rel for part in p.split("/")[:-1])
    assert 500_000 < source.n_bytes <= corpora.STDLIB_CAP_BYTES
    assert default_corpus()[0] == source                  # deterministic
    assert everything_in(corpora_dir()) == []


def test_unknown_name_suggests_close_names(mirror):
    with pytest.raises(UsageError, match=r"no file, directory or known corpus called 'fak'") as e:
        resolve_corpus("fak")
    assert "did you mean 'fake'" in e.value.fix
    with pytest.raises(UsageError) as e:
        resolve_corpus("zzzzzz")
    assert "charlm corpus list" in e.value.fix
    with pytest.raises(UsageError, match="no such file"):
        resolve_corpus("some/dir/missing.txt")           # a path keeps its own, precise error


def test_unwritable_corpora_dir_is_a_clear_error(mirror, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CHARLM_CORPORA", str(blocker / "corpora"))
    with pytest.raises(UsageError, match=r"cannot write to .*a-file/corpora") as e:
        resolve_corpus("fake")
    assert "CHARLM_CORPORA" in e.value.fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_read_only_corpora_dir_is_a_clear_error(mirror, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    monkeypatch.setenv("CHARLM_CORPORA", str(locked))
    with pytest.raises(UsageError, match="cannot write to"):
        resolve_corpus("fake")


def test_a_locally_edited_copy_is_not_overwritten_without_force(mirror):
    corpora_dir().mkdir()
    (corpora_dir() / "fake.txt").write_text("my own edits")
    with pytest.raises(UsageError, match="checksum differs") as e:
        resolve_corpus("fake")
    assert "--force" in e.value.fix
    assert (corpora_dir() / "fake.txt").read_text() == "my own edits"
    fetch.fetch(catalog.find_entry("fake"), force=True)
    assert (corpora_dir() / "fake.txt").read_bytes() == DATA
    # An edit that keeps the size is caught too: the remembered verification is keyed by mtime.
    os.utime(corpora_dir() / "fake.txt", ns=(1, 1))
    assert verify.local_status(catalog.find_entry("fake")) == "ok"
    (corpora_dir() / "fake.txt").write_bytes(DATA.upper())
    assert verify.local_status(catalog.find_entry("fake")) == "modified"


def test_list_puts_the_users_texts_first(mirror):
    root = corpora_dir()
    (root / "poems").mkdir(parents=True)
    (root / "poems" / "a.txt").write_text("roses\n")
    (root / "Zola.txt").write_text("germinal\n")
    (root / "README.md").write_text("what goes here\n")
    (root / ".fake.txt.x.part").write_text("half")
    rows = list_corpora()
    assert [(r.name, r.kind, r.downloaded) for r in rows] == [
        ("poems", "user", True), ("Zola.txt", "user", True), ("fake", "catalog", False), ("python-stdlib", "builtin", True)]
    assert rows[2].status == "not downloaded" and rows[2].path is None and rows[2].size_bytes == len(DATA)
    resolve_corpus("fake")
    fake = [r for r in list_corpora() if r.name == "fake"][0]     # downloaded: a catalog row, not a user text
    assert fake.downloaded and fake.status == "ready" and fake.path == root / "fake.txt"
    assert [r.name for r in list_corpora() if r.kind == "user"] == ["poems", "Zola.txt"]


def test_folders_of_texts_are_listed_where_the_corpora_folder_is_under_a_hidden_one(mirror, tmp_path, monkeypatch):
    """The per-user corpora folder is ~/.local/share/charlm/corpora: a folder of texts there was
    listed as holding none (every path under ".local" counted as hidden), and too big a folder
    is left out of the list rather than walked for minutes."""
    root = tmp_path / ".local" / "corpora"
    monkeypatch.setenv("CHARLM_CORPORA", str(root))
    (root / "letters" / ".git").mkdir(parents=True)
    (root / "letters" / "1901.txt").write_text("Dear Anna,\n")
    (root / "letters" / ".git" / "HEAD").write_text("ref: main\n")           # hidden: not a text
    (root / "everything").mkdir()
    for i in range(8):
        (root / "everything" / f"{i}.txt").write_text("x\n")
    monkeypatch.setattr(corpus_files, "MAX_DIR_ENTRIES", 5)
    users = [r for r in list_corpora() if r.kind == "user"]
    assert [(r.name, r.description) for r in users] == [("letters", "your texts: 1 file")]
    assert resolve_corpus("letters").paths == (root / "letters" / "1901.txt",)


def test_texts_in_corpora_dir_resolve_by_bare_name(mirror):
    corpora_dir().mkdir()
    (corpora_dir() / "mine.txt").write_text("hello\n")
    assert resolve_corpus("mine.txt").paths == (corpora_dir() / "mine.txt",)
    assert resolve_corpus("mine").paths == (corpora_dir() / "mine.txt",)
    assert record_spec("mine") == str((corpora_dir() / "mine.txt").resolve())
    assert record_spec("fake") == "fake" and record_spec("python-stdlib") == "python-stdlib"
    assert resolve_corpus("python-stdlib").name == "python-stdlib"


def test_users_catalog_in_corpora_dir_adds_entries(mirror):
    extra = b"more words\n" * 10
    (mirror / "extra.txt").write_bytes(extra)
    corpora_dir().mkdir()
    write_catalog(corpora_dir() / "catalog.toml", {"extra": entry_fields(extra, "extra.txt")})
    assert [r.name for r in list_corpora()] == ["fake", "extra", "python-stdlib"]
    assert resolve_corpus("extra").paths[0].read_bytes() == extra


def test_a_set_is_its_parts_read_in_order_as_one_text(mirror, tmp_path, monkeypatch):
    other = b"Other words entirely.\n" * 20
    (mirror / "other.txt").write_bytes(other)
    path = write_catalog(tmp_path / "catalog.toml", {"fake": entry_fields(DATA, "fake.txt"),
                                                      "other": entry_fields(other, "other.txt")})
    path.write_text(path.read_text() + '\n[set.both]\ndescription = "two texts"\nparts = ["other", "fake"]\n')
    monkeypatch.setenv("CHARLM_CATALOG", str(path))
    row = next(r for r in list_corpora() if r.name == "both")
    assert (row.kind, row.status, row.size_bytes) == ("set", "not downloaded", len(DATA) + len(other))
    seen = []
    source = resolve_corpus("both", progress=lambda done, total: seen.append((done, total)))
    assert source.name == "both" and source.paths == (corpora_dir() / "other.txt", corpora_dir() / "fake.txt")
    assert read_text(source) == other.decode() + "\n" + FAKE_TEXT
    assert seen[-1] == (len(DATA) + len(other), len(DATA) + len(other)), "progress counts the whole set"
    assert next(r for r in list_corpora() if r.name == "both").status == "ready"
    assert record_spec("both") == "both"


def test_the_packaged_sets_name_packaged_corpora(monkeypatch):
    monkeypatch.delenv("CHARLM_CATALOG", raising=False)
    english = catalog.find_set("english")
    assert [p.name for p in english.parts] == ["shakespeare", "war-and-peace", "sherlock"]
    assert english.size == sum(p.size for p in english.parts) > 7_000_000


@pytest.mark.parametrize("text, error", [
    ('[set.x]\nparts = ["nope"]\n', "names 'nope', which the catalog does not list"),
    ('[set.x]\nparts = []\n', "needs `parts`"),
    ("[corpus.x\n", "not valid TOML"),
    ('[corpus.x]\nurl = "u"\nfilename = "x.txt"\nsize = 3\nsha256 = "abc"\n', "64 hex digits"),
    ('[corpus.x]\nurl = "u"\nfilename = "../x.txt"\nsize = 3\nsha256 = "' + "0" * 64 + '"\n', "unsafe filename"),
    ('[corpus.x]\nfilename = "x.txt"\n', "needs `url`"),
])
def test_broken_catalogs_are_reported(tmp_path, monkeypatch, text, error):
    (tmp_path / "bad.toml").write_text(text)
    monkeypatch.setenv("CHARLM_CATALOG", str(tmp_path / "bad.toml"))
    with pytest.raises(UsageError, match=error):
        catalog.load_catalog()
