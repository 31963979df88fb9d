"""Is a file in corpora/ exactly the catalog's bytes? Verified once, then remembered.

Hashing a large corpus on every start would be slow, so files already verified are
remembered by (size, mtime) in the cache directory. The cache is an optimisation only:
any trouble reading or writing it just means hashing again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from charlm.corpus.catalog import CatalogEntry
from charlm.paths import cache_root, corpora_dir, read_json_dict, write_cache_json


def local_path(entry: CatalogEntry, directory: Path | None = None) -> Path:
    return (directory or corpora_dir()) / entry.filename


def local_status(entry: CatalogEntry, directory: Path | None = None) -> str:
    """"ok" (present and verified), "missing", or "modified" (present, but not the catalog's bytes)."""
    path = local_path(entry, directory)
    try:
        st = path.stat()
    except OSError:
        return "missing"
    if st.st_size != entry.size:
        return "modified"
    cache = _load_verified()
    if cache.get(str(path.resolve())) == [st.st_size, st.st_mtime_ns, entry.sha256]:
        return "ok"
    if _sha256_file(path) != entry.sha256:
        return "modified"
    remember_verified(path, entry.sha256)
    return "ok"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_path() -> Path:
    return cache_root() / "verified.json"


def _load_verified() -> dict:
    return read_json_dict(_verified_path())


def remember_verified(path: Path, sha256: str) -> None:
    try:
        st, key = path.stat(), str(path.resolve())
    except OSError:
        return          # gone since it was hashed: nothing to remember
    data = _load_verified()
    data[key] = [st.st_size, st.st_mtime_ns, sha256]
    write_cache_json(_verified_path(), data)
