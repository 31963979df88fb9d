"""Where runs and corpora live, and the cache, which is optional: where it cannot be written
charlm works without it (`keep_cached`).

Runs (`checkpoints/`) and downloaded corpora (`corpora/`) have one home per user, so charlm finds
the same runs from any directory: the per-user data directory (platformdirs: ~/.local/share/charlm
on Linux, ~/Library/Application Support/charlm on macOS, %LOCALAPPDATA%\\charlm on Windows). A
working directory that is a charlm project, one with a `checkpoints/` folder (as the clone has),
keeps its own `checkpoints/` and `corpora/`. CHARLM_CHECKPOINTS / CHARLM_CORPORA override both."""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from charlm.errors import UsageError

T = TypeVar("T")

CHECKPOINTS, CORPORA = "checkpoints", "corpora"


@dataclass(frozen=True)
class Place:
    """Where one kind of thing lives, and why there (for `charlm info` and the Models screen)."""
    path: Path
    why: str


def data_home() -> Path | None:
    """The per-user data directory; None where there is none (no home directory)."""
    import platformdirs
    path = platformdirs.user_data_path("charlm", appauthor=False)
    return path if path.is_absolute() else None      # "~/.local/share" unexpanded: no home


def project_root() -> Path | None:
    """The working directory, when it is a charlm project (it has checkpoints/)."""
    here = Path.cwd()
    return here if (here / CHECKPOINTS).is_dir() else None


def _place(kind: str, env: str) -> Place:
    if os.environ.get(env):
        return Place(Path(os.environ[env]), f"set by {env}")
    project = project_root()
    if project is not None:
        return Place(project / kind, "this directory is a charlm project (it has checkpoints/)")
    home = data_home()
    if home is not None:
        return Place(home / kind, "charlm's data directory for this user")
    return Place(Path.cwd() / kind, "the working directory (there is no home directory)")


def checkpoints_place() -> Place:
    return _place(CHECKPOINTS, "CHARLM_CHECKPOINTS")


def corpora_place() -> Place:
    return _place(CORPORA, "CHARLM_CORPORA")


def checkpoints_dir() -> Path:
    return checkpoints_place().path


def corpora_dir() -> Path:
    return corpora_place().path


def user_path(spec: str | Path) -> Path:
    """A path a person typed or pasted, `~` expanded; UsageError where no file could have it
    (a NUL byte, ~name of no user, a name or the whole longer than this system allows), which Path's tests
    would otherwise raise as OSError or ValueError from deep inside (a paragraph pasted into a
    path field was a crash)."""
    text = os.fspath(spec)
    if "\0" in text:
        raise UsageError(f"a path cannot hold a NUL character: {shown_path(text)}", "check what was pasted")
    try:
        path = Path(text).expanduser()
    except RuntimeError:                      # ~name, and no user of that name here
        home = text.split("/", 1)[0]
        raise UsageError(f"{home} is the home of user {home[1:]!r}, and there is no such user here: {shown_path(text)}",
                         "write the whole path, or ~/ for your own home") from None
    name_max, path_max = _path_limits(path)
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > name_max:
        why = f"a name in it has {longest:,} bytes, at most {name_max} here"
    elif len(os.fsencode(str(path))) > path_max:
        why = f"{len(os.fsencode(str(path))):,} bytes, at most {path_max} here"
    else:
        return path
    raise UsageError(f"the path is too long ({len(text):,} characters; {why}): {shown_path(text)}",
                     "check what was typed or pasted")


def _path_limits(path: Path) -> tuple[int, int]:
    """The longest name and path this file system takes (POSIX's 255 and 4096 where it cannot say)."""
    try:
        base = next((str(p) for p in (path, *path.parents) if os.path.isdir(p)), ".")
        return os.pathconf(base, "PC_NAME_MAX"), os.pathconf(base, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):   # no pathconf (Windows), or a name it does not know
        return 255, 4096


def shown_path(path: str | Path, limit: int = 80) -> str:
    """A path as an error message quotes it: on one line, and clipped in the middle when long."""
    text = os.fspath(path).replace("\n", "⏎").replace("\r", "⏎")
    return text if len(text) <= limit else f"{text[:limit // 2 - 1]}…{text[-(limit // 2):]}"


def run_path(spec: str | Path) -> Path:
    """A run or checkpoint as a person names it: a path, or, where no such path exists here, the
    name of a run under checkpoints_dir() (so `charlm eval shakespeare-20261206-101500` works
    from any directory)."""
    path = user_path(spec)
    if not os.path.lexists(path) and len(path.parts) == 1 and not path.is_absolute():
        named = checkpoints_dir() / path
        if os.path.exists(named):
            return named
    return path


def new_run_dir(corpus_name: str, root: Path | None = None) -> Path:
    """checkpoints/<corpus>-<yyyymmdd-hhmmss>/, with a suffix if that second is taken."""
    root = root or checkpoints_dir()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in corpus_name).strip("-.") or "corpus"
    base = root / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def cache_root() -> Path:
    """Where charlm keeps what it can rebuild: encoded corpora, speeds, references, logs."""
    if os.environ.get("CHARLM_CACHE"):
        return Path(os.environ["CHARLM_CACHE"])
    try:
        return Path.home() / ".cache" / "charlm"
    except RuntimeError:        # HOME unset and no passwd entry (some containers)
        return NO_HOME


# The cache root when there is no home: a path no one can make a folder at, root included, so
# reads find nothing and writes fail (and say so once) like any other unwritable cache.
NO_HOME = Path(os.devnull) / "charlm-cache"
_note_lock = threading.Lock()
_noted = False


def keep_cached(write: Callable[[], T], otherwise: T | None = None) -> T | None:
    """`write()`, a write to the cache; where that fails (read-only, missing, no home, full),
    one note on stderr per process and `otherwise`: a cache only saves time, so charlm goes on.
    Keep `write` to the cache's own files: any OSError it raises is taken for the cache's."""
    try:
        return write()
    except OSError as e:
        _note_once(e)
        return otherwise


def cache_failed() -> bool:
    """Whether a write to the cache failed in this process (and the note was said)."""
    return _noted


def _note_once(error: OSError) -> None:
    global _noted
    with _note_lock:
        first, _noted = not _noted, True
    if first:
        root = cache_root()
        no_home = root == NO_HOME
        where, why = ("~/.cache/charlm", "there is no home directory") if no_home else (root, error.strerror or error)
        say_note(f"cannot write the cache at {where} ({why}); working without it (set CHARLM_CACHE to "
                 "a writable folder to keep encoded texts, timings and the compiled sampler between runs)")


def note_to_stderr(note: str) -> None:
    print(f"charlm: note: {note}", file=sys.stderr)


# Where a note for the person goes (the cache's, a run's text found elsewhere): stderr, or (set by
# the app, whose stderr no one sees) a notification. Called from any thread.
say_note: Callable[[str], None] = note_to_stderr


def write_cache_json(path: Path, data) -> None:
    """`write_json_atomic` for a file in the cache: one that may fail (see keep_cached)."""
    keep_cached(lambda: write_json_atomic(path, data))


def read_json_dict(path: Path) -> dict:
    """A JSON object from `path`; {} when it is missing or not one (a cache is never trusted)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data) -> None:
    """Replace `path` with `data` as JSON in one rename: readers see the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def missing_path_problem(path: Path) -> str:
    """What to tell a person about a path that cannot be opened, rather than a bare "no such
    file": a symbolic link that loops or leads nowhere, or a folder they may not enter."""
    shown = shown_path(path)
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"{shown} is a symbolic link that loops back on itself"
        if os.path.islink(path):
            return f"{shown} is a symbolic link to {os.readlink(path)}, which does not exist"
        if e.errno == errno.EACCES:
            return f"cannot reach {shown}: permission denied"
        return f"no such file or directory: {shown}"
    return f"{shown} is not a regular file or directory"
