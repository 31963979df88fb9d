"""Fetching a catalog corpus into corpora/: mirror first, verified while it streams, written atomically.

Sources are tried in order: the mirror (CHARLM_MIRROR: a directory or a base URL, looked up
by the entry's file name), then the catalog URL (unless CHARLM_OFFLINE is set). Bytes stream
into a hidden temp file next to the destination while size and sha256 are checked; only a
verified file is renamed into place, so a failed, cut or cancelled download leaves nothing.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from charlm.corpus.catalog import CatalogEntry
from charlm.corpus.verify import local_path, local_status, remember_verified
from charlm.errors import UsageError
from charlm.paths import corpora_dir

Progress = Callable[[int, int], None]   # (bytes done, bytes expected); raise from it to cancel

CHUNK = 1 << 16
TIMEOUT = 20.0                 # seconds of silence before a try counts as failed
RETRY_DELAYS = (1.0, 3.0)      # backoff between tries of one source, for transient failures only
STALE_PART_SECONDS = 86400     # older temp files are leftovers of a killed process


@dataclass(frozen=True)
class FetchResult:
    path: Path
    source: str | None          # where the bytes came from; None when the file was already there


class _Failed(Exception):
    """One source did not deliver; `transient` failures are worth another try."""

    def __init__(self, reason: str, kind: str, transient: bool = False):
        super().__init__(reason)
        self.reason, self.kind, self.transient = reason, kind, transient


def fetch(entry: CatalogEntry, progress: Progress | None = None, *, force: bool = False,
          directory: Path | None = None) -> FetchResult:
    """Make corpora/<filename> hold exactly the catalog's bytes, downloading them if needed."""
    directory = directory or corpora_dir()
    dest = local_path(entry, directory)
    status = local_status(entry, directory)
    if status == "ok" and not force:
        return FetchResult(dest, None)
    if status == "modified" and not force:
        raise UsageError(f"{dest} exists but is not the catalog's {entry.name} (its size or checksum differs)",
                         f"rename it to keep it as your own text, or run `charlm corpus get {entry.name} --force` to replace it")
    tmp = _temp_file(directory, entry.filename)
    try:
        failures: list[_Failed] = []
        for label, open_source, retry in _sources(entry):
            try:
                _try_source(label, open_source, retry, entry, tmp, progress)
            except _Failed as f:
                failures.append(f)
                continue
            _install(tmp, dest)
            remember_verified(dest, entry.sha256)
            return FetchResult(dest, label)
        if _offline():
            failures.append(_Failed("downloads are switched off (CHARLM_OFFLINE is set)", "offline"))
        raise _give_up(entry, failures)
    finally:
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)


def _sources(entry: CatalogEntry) -> list[tuple[str, Callable[[], BinaryIO], bool]]:
    """(label, opener, retry?) for the mirror, then the catalog URL unless CHARLM_OFFLINE is set."""
    out = []
    mirror = os.environ.get("CHARLM_MIRROR", "").strip()
    if mirror and urllib.parse.urlsplit(mirror).scheme in ("http", "https", "file"):
        url = mirror.rstrip("/") + "/" + urllib.parse.quote(entry.filename)
        out.append((url, lambda: _open_url(url, entry), True))
    elif mirror:
        path = Path(mirror).expanduser() / entry.filename
        out.append((f"mirror {path}", lambda: _open_mirror_file(path, entry), False))
    if not _offline():
        out.append((entry.url, lambda: _open_url(entry.url, entry), True))
    return out


def _offline() -> bool:
    return os.environ.get("CHARLM_OFFLINE", "").strip() not in ("", "0")


def _try_source(label: str, open_source, retry: bool, entry: CatalogEntry, tmp, progress) -> None:
    """Fill `tmp` from one source, trying again after transient failures; raises _Failed."""
    tries = 1 + len(RETRY_DELAYS) if retry else 1
    for n in range(1, tries + 1):
        try:
            with open_source() as stream:
                done, digest = _copy(stream, tmp, entry, progress, label)
            if done != entry.size:      # every source is sized up front: a short stream was cut off
                raise _Failed(f"the download from {label} was cut off at {done:,} of {entry.size:,} bytes",
                              "interrupted", transient=True)
        except _Failed as f:
            if f.transient and n < tries:
                time.sleep(RETRY_DELAYS[n - 1])
                continue
            if n > 1:
                f.reason += f" ({n} tries)"
            raise
        if digest != entry.sha256:
            raise _Failed(f"the copy from {label} has the wrong checksum (sha256 {digest[:12]}…, "
                          f"expected {entry.sha256[:12]}…), so it was discarded", "mismatch")
        return


def _copy(stream: BinaryIO, tmp, entry: CatalogEntry, progress: Progress | None, label: str) -> tuple[int, str]:
    """Stream into `tmp` (emptied first), hashing as it goes: (bytes, sha256)."""
    tmp.seek(0)
    tmp.truncate()
    digest, done = hashlib.sha256(), 0
    if progress:
        progress(0, entry.size)
    while True:
        try:
            chunk = stream.read(CHUNK)
        except (OSError, http.client.HTTPException) as e:
            raise _Failed(f"the download from {label} was cut off at {done:,} of {entry.size:,} bytes ({_why(e)})",
                          "interrupted", transient=True) from None
        if not chunk:
            return done, digest.hexdigest()
        done += len(chunk)
        if done > entry.size:
            raise _Failed(f"{label} sent more than the catalog's {entry.size:,} bytes, so it was discarded", "mismatch")
        digest.update(chunk)
        try:
            tmp.write(chunk)
        except OSError as e:
            raise UsageError(f"cannot write {tmp.name}: {_why(e)}", "free some disk space or set CHARLM_CORPORA elsewhere") from None
        if progress:
            progress(done, entry.size)


def _open_mirror_file(path: Path, entry: CatalogEntry) -> BinaryIO:
    if not path.parent.is_dir():
        raise _Failed(f"the mirror directory {path.parent} does not exist", "missing")
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as e:
        raise _Failed(f"the mirror {path.parent} has no {path.name}" if e.errno == errno.ENOENT
                      else f"cannot read {path} ({_why(e)})", "missing") from None
    if size != entry.size:
        f.close()
        raise _Failed(f"the copy from mirror {path} is {size:,} bytes, not the catalog's {entry.size:,}; "
                      "it was not used", "mismatch")
    return f


def _open_url(url: str, entry: CatalogEntry):
    host = urllib.parse.urlsplit(url).hostname or url
    request = urllib.request.Request(url, headers={"User-Agent": f"charlm/{__import__('charlm').__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        transient = e.code >= 500 or e.code in (408, 429)
        raise _Failed(f"{url} answered HTTP {e.code} {e.reason}", "http", transient) from None
    except urllib.error.URLError as e:
        raise _classify(e.reason, url, host) from None
    except (OSError, http.client.HTTPException) as e:
        raise _classify(e, url, host) from None
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) != entry.size:
        response.close()
        raise _Failed(f"{url} has {int(length):,} bytes, not the catalog's {entry.size:,}; it was not used", "mismatch")
    return response


def _classify(reason, url: str, host: str) -> _Failed:
    if isinstance(reason, socket.gaierror) or getattr(reason, "errno", None) in (errno.ENETUNREACH, errno.ENETDOWN,
                                                                                 errno.EHOSTUNREACH):
        return _Failed(f"no network (cannot reach {host}: {_why(reason)})", "offline")
    if isinstance(reason, ConnectionRefusedError):
        return _Failed(f"{host} refused the connection", "refused")
    if isinstance(reason, FileNotFoundError):
        return _Failed(f"{url} does not exist", "missing")
    if isinstance(reason, TimeoutError):
        return _Failed(f"{host} did not answer within {TIMEOUT:g} s", "timeout", transient=True)
    if isinstance(reason, ssl.SSLError):
        return _Failed(f"secure connection to {host} failed ({_why(reason)})", "tls")
    transient = isinstance(reason, (ConnectionError, http.client.HTTPException))
    return _Failed(f"cannot fetch {url} ({_why(reason)})", "other", transient)


def _give_up(entry: CatalogEntry, failures: list[_Failed]) -> UsageError:
    problem = f"cannot download {entry.name}: " + "; ".join(f.reason for f in failures)
    fix = f"set CHARLM_MIRROR to a directory holding {entry.filename}, or pass a file path"
    if any(f.kind in ("interrupted", "timeout") for f in failures):
        fix = f"check your connection and try again (nothing was kept), {fix}"
    return UsageError(problem, fix)


def _temp_file(directory: Path, filename: str):
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _sweep_stale_parts(directory, filename)
        return tempfile.NamedTemporaryFile(dir=directory, prefix=f".{filename}.", suffix=".part", delete=False)
    except OSError as e:
        raise UsageError(f"cannot write to {directory}: {_why(e)}",
                         "set CHARLM_CORPORA to a writable directory, or fix its permissions") from None


def _install(tmp, dest: Path) -> None:
    try:
        tmp.flush()
        os.fsync(tmp.fileno())      # the rename must never expose a file whose bytes are not on disk
        tmp.close()
        os.chmod(tmp.name, 0o644)   # temp files are created private (0600); a corpus is not secret
        os.replace(tmp.name, dest)
    except OSError as e:
        raise UsageError(f"cannot write {dest}: {_why(e)}", "set CHARLM_CORPORA to a writable directory") from None


def _sweep_stale_parts(directory: Path, filename: str) -> None:
    cutoff = time.time() - STALE_PART_SECONDS
    for part in directory.glob(f".{filename}.*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
        except OSError:
            pass


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__

