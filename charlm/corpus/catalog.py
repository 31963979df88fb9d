"""The catalog of known corpora: names, where to fetch them, and the checksums that prove it.

The packaged `charlm/corpus/catalog.toml` is the catalog (CHARLM_CATALOG replaces it: tests point it at
a fake one). Entries in the user's `corpora/catalog.toml` are added on top, so people can list
their own sources without editing the package. Besides single files (`[corpus.NAME]`) it lists
sets (`[set.NAME]`): several of its corpora read as one text, e.g. a base model's English.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from charlm.errors import UsageError
from charlm.paths import corpora_dir

PACKAGED = Path(__file__).with_name("catalog.toml")
USER_CATALOG = "catalog.toml"        # in corpora_dir(): the user's own additions
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CatalogEntry:
    """One corpus we know how to fetch and verify."""
    name: str                       # what people type: `charlm train shakespeare`
    description: str
    url: str
    filename: str                   # name in corpora/ and on a mirror
    size: int                       # bytes, checked while downloading
    sha256: str
    licence: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSet:
    """Several catalog corpora trained on as one text, in the order of `parts`."""
    name: str
    description: str
    parts: tuple[CatalogEntry, ...]
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


def catalog_files() -> list[Path]:
    """The catalog files in force, later ones overriding earlier entries of the same name."""
    base = Path(os.environ["CHARLM_CATALOG"]).expanduser() if os.environ.get("CHARLM_CATALOG") else PACKAGED
    if not base.is_file():
        raise UsageError(f"catalog file {base} does not exist", "unset CHARLM_CATALOG or point it at a catalog.toml")
    user = corpora_dir() / USER_CATALOG
    return [base, user] if user.is_file() and user.resolve() != base.resolve() else [base]


def load_catalog() -> dict[str, CatalogEntry]:
    """Every known single-file corpus by name, in file order."""
    return _load()[0]


def load_sets() -> dict[str, CorpusSet]:
    """Every known set by name, its parts resolved to their entries."""
    return _load()[1]


def _load() -> tuple[dict[str, CatalogEntry], dict[str, CorpusSet]]:
    entries: dict[str, CatalogEntry] = {}
    raw_sets: dict[str, tuple[Path, dict]] = {}
    for path in catalog_files():
        found, sets = _read(path)
        entries.update((e.name, e) for e in found)
        raw_sets.update((name, (path, fields)) for name, fields in sets.items())
    return entries, {name: _set(path, name, fields, entries) for name, (path, fields) in raw_sets.items()}


def find_entry(name: str) -> CatalogEntry | None:
    """The single-file entry called `name` (or one of its aliases), ignoring case."""
    return _named(name, load_catalog().values())


def find_set(name: str) -> CorpusSet | None:
    """The set called `name` (or one of its aliases), ignoring case."""
    return _named(name, load_sets().values())


def _named(name: str, items):
    key = name.strip().lower()
    for item in items:
        if key == item.name.lower() or key in (a.lower() for a in item.aliases):
            return item
    return None


def suggest(name: str, candidates: list[str | CatalogEntry | CorpusSet], n: int = 3) -> list[str]:
    """Close spellings of `name` among names, catalog entries and sets (aliases count), best first."""
    canonical: dict[str, str] = {}
    for c in candidates:
        named = not isinstance(c, str)
        for spelling in (c.name, *c.aliases) if named else (c,):
            canonical.setdefault(spelling.lower(), c.name if named else c)
    matches = difflib.get_close_matches(name.lower(), list(canonical), n=len(canonical), cutoff=0.6)
    return list(dict.fromkeys(canonical[m] for m in matches))[:n]


def _read(path: Path) -> tuple[list[CatalogEntry], dict[str, object]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read catalog {path}: {e}", "fix or remove that file") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"catalog {path} is not valid TOML ({e})", "fix or remove that file") from None
    if data.get("format", 1) != 1:
        raise UsageError(f"catalog {path} has format {data['format']!r}, this charlm reads format 1", "update charlm")
    table, sets = data.get("corpus", {}), data.get("set", {})
    for key, value in (("corpus", table), ("set", sets)):
        if not isinstance(value, dict):
            raise UsageError(f"catalog {path}: `{key}` must be a table of [{key}.NAME] sections", "see charlm/corpus/catalog.toml")
    return [_entry(path, name, fields) for name, fields in table.items()], sets


def _bad(path: Path, what: str, name: str, why: str) -> UsageError:
    return UsageError(f"catalog {path}: {what} {name!r} {why}", "fix that entry (see charlm/corpus/catalog.toml for the format)")


def _set(path: Path, name: str, f: object, entries: dict[str, CatalogEntry]) -> CorpusSet:
    def bad(why: str) -> UsageError:
        return _bad(path, "set", name, why)

    if not isinstance(f, dict):
        raise bad("is not a table")
    parts = f.get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise bad("needs `parts`: a list of catalog corpus names")
    missing = [p for p in parts if p not in entries]
    if missing:
        raise bad(f"names {', '.join(map(repr, missing))}, which the catalog does not list")
    if name in entries:
        raise bad("has the name of a corpus")
    return CorpusSet(name=name, description=str(f.get("description", "")), parts=tuple(entries[p] for p in parts),
                     aliases=tuple(str(a) for a in f.get("aliases", ())))


def _entry(path: Path, name: str, f: object) -> CatalogEntry:
    def bad(why: str) -> UsageError:
        return _bad(path, "corpus", name, why)

    if not isinstance(f, dict):
        raise bad("is not a table")
    for key, kind in (("url", str), ("filename", str), ("size", int), ("sha256", str)):
        if not isinstance(f.get(key), kind):
            raise bad(f"needs `{key}` ({kind.__name__})")
    filename, sha = f["filename"], f["sha256"].lower()
    # The file name becomes a path in corpora/: nothing that could climb out of it.
    if Path(filename).name != filename or filename.startswith("."):
        raise bad(f"has an unsafe filename {filename!r}")
    if not _SHA256.fullmatch(sha):
        raise bad("has a sha256 that is not 64 hex digits")
    if f["size"] <= 0:
        raise bad("has a size that is not positive")
    return CatalogEntry(name=name, description=str(f.get("description", "")), url=f["url"], filename=filename,
                        size=f["size"], sha256=sha, licence=str(f.get("licence", "")),
                        aliases=tuple(str(a) for a in f.get("aliases", ())))
