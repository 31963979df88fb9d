"""A run directory, and the one place that knows its layout:

    RUN/
      source.json       how to find the corpus again: {"spec" as given, "encoding", "paths": its files
                        as absolute paths, "sha256" of its text}, and for a run started from another,
                        where it started: {"init": {"run", "corpus", "step", ...}}
      metrics.jsonl     one JSON object a line (charlm.runs.metrics): losses, validations, rollbacks
      best/             the checkpoint with the lowest validation loss so far
      last/             the newest checkpoint, with the state to resume from (`ResumeState`)
      .last.old/        the previous last/, only while a save is between its two renames
      .last.tmp-PID/    a save being written; renamed to last/ once whole
      .lock             held by the one process writing the run (under torchrun: rank 0)

One process writes a run: it `claim`s it, which also finishes what a crash cut off. Every
other process only reads, and finds a checkpoint in the `checkpoint` lookup order, so it never
sees a half-written one. No torch here: listing and reading runs does not need it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from charlm.errors import UsageError

try:
    import fcntl
except ImportError:         # not on Windows: one writer is then the person's to keep to
    fcntl = None
from charlm.paths import read_json_dict, write_json_atomic
from charlm.runs.metrics import truncate_after

BEST, LAST = "best", "last"
SOURCE, METRICS, LOCK = "source.json", "metrics.jsonl", ".lock"
RESUME_JSON, RESUME_TENSORS = "resume.json", "resume.safetensors"
CONFIG = "config.json"       # the file whose presence makes a directory a checkpoint
WEIGHTS, VOCAB = "model.safetensors", "tokenizer.json"     # beside it in every checkpoint
# A lock whose holder has died may stay held for a moment by a child it was starting (the C
# step's compiler): between fork and exec the child shares the lock. It lets go within
# milliseconds; this long is waited for it before the run is called busy.
ORPHANED_LOCK_WAIT_S = 2.0


def previous_copy(path: Path) -> Path:
    """Where a checkpoint's previous copy waits while a save swaps the new one in."""
    return path.parent / f".{path.name}.old"


def temp_copy(path: Path) -> Path:
    """Where this process writes a new copy of `path` before swapping it in."""
    return path.parent / f".{path.name}.tmp-{os.getpid()}"


def swap_in(tmp: Path, path: Path) -> None:
    """Replace directory `path` with the complete directory `tmp`: two renames, and the old copy
    stays (as `previous_copy`) until the new one is in place, so a crash at any moment leaves
    one whole copy that `RunDir.checkpoint` finds."""
    old = previous_copy(path)
    if old.exists() and not path.exists():
        os.replace(old, path)       # an earlier save was cut off between its renames: restore first
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync(path.parent)             # the renames themselves survive a power cut
    shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class TextRecord:
    """Where a run's training text was (source.json): as the person named it, its files as
    absolute paths (runs from before they were recorded have none), and its content's hash."""
    spec: str
    encoding: str
    paths: tuple[Path, ...] = ()
    sha256: str | None = None


@dataclass
class ResumeState:
    """Where training stopped, in last/resume.json; the tensors it goes with (optimizer moments,
    RNG states, the carried hidden state) are in last/resume.safetensors. Together with the
    weights they continue a run bit for bit (see `charlm train --deterministic`)."""
    step: int                           # optimizer steps taken
    elapsed: float                      # seconds of training (pauses excluded)
    chunk: int                          # the next chunk of the pass over the text: the data order
    optimizer: dict                     # param groups and scalar state (charlm.train.optim.optimizer_state)
    best_val_loss: float | None = None  # nats/char; None before the first validation
    train_loss: float | None = None     # smoothed, nats/char
    log_window: list = field(default_factory=lambda: [0.0, 0])  # train-loss sum and count since the last metrics row
    lr_scale: float = 1.0               # halved at each rollback from a NaN/Inf loss
    rollbacks: int = 0                  # how many so far

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> "ResumeState":
        """The state in a parsed resume.json; keys older runs lack take their defaults. Raises
        ValueError for anything else (a damaged file)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            state = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as e:
            raise ValueError(str(e)) from None
        window = state.log_window
        sound = (_whole(state.step) and _whole(state.chunk) and _whole(state.rollbacks)
                 and _number(state.elapsed) and _number(state.lr_scale) and state.lr_scale > 0
                 and isinstance(state.optimizer, dict) and "param_groups" in state.optimizer
                 and all(x is None or _number(x) for x in (state.best_val_loss, state.train_loss))
                 and isinstance(window, list) and len(window) == 2 and _number(window[0]) and _whole(window[1]))
        if not sound:
            raise ValueError("a field is missing or has the wrong type")
        return state


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine, in this PID namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True             # someone else's process; or not a pid at all: say busy, as before
    return True


def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class RunDir:
    """One run directory: where its parts are, which checkpoint to load, its corpus record,
    its resume state, and the claim of the one process that writes it."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    # -- which checkpoint --------------------------------------------------------------
    def checkpoint(self, prefer: str = BEST) -> Path | None:
        """The checkpoint to load: `prefer` (best/ for sampling and evaluating, last/ for the
        newest state), then its previous copy (a save was cut off between its renames), then
        the other one and its previous copy. None when the directory holds none."""
        other = LAST if prefer == BEST else BEST
        for name in (prefer, other):
            for candidate in (self.path / name, previous_copy(self.path / name)):
                if (candidate / CONFIG).is_file():
                    return candidate
        return None

    def is_run(self) -> bool:
        """Whether this is a run charlm wrote (a checkpoint inside): the only kind it deletes."""
        return self.path.is_dir() and any(d.is_dir() for name in (BEST, LAST)
                                          for d in (self.path / name, previous_copy(self.path / name)))

    def resumable(self) -> Path | None:
        """The checkpoint holding resume state: last/, or its previous copy mid-save."""
        for candidate in (self.last, previous_copy(self.last)):
            if (candidate / RESUME_JSON).is_file():
                return candidate
        return None

    # -- what it records -----------------------------------------------------------------
    def write_source(self, spec: str, encoding: str = "utf-8", init: dict | None = None, *,
                     paths: tuple[Path, ...] = (), sha256: str | None = None) -> None:
        record = {"spec": spec, "encoding": encoding}
        if paths:
            record["paths"] = [str(Path(p).resolve()) for p in paths]
        if sha256:
            record["sha256"] = sha256
        write_json_atomic(self.path / SOURCE, record | ({"init": init} if init else {}))

    def read_source(self) -> tuple[str, str] | None:
        """(spec, encoding) of the corpus it was trained on; None when it does not say."""
        record = self.text_record()
        return (record.spec, record.encoding) if record else None

    def text_record(self) -> TextRecord | None:
        """What source.json says of the training text; None when it does not say."""
        src = read_json_dict(self.path / SOURCE)
        spec, encoding = src.get("spec"), src.get("encoding", "utf-8")
        if not (isinstance(spec, str) and spec and isinstance(encoding, str)):
            return None
        paths = src.get("paths")
        paths = tuple(Path(p) for p in paths) if isinstance(paths, list) and all(isinstance(p, str) for p in paths) else ()
        sha256 = src.get("sha256") if isinstance(src.get("sha256"), str) else None
        return TextRecord(spec, encoding, paths, sha256)

    def read_lineage(self) -> dict | None:
        """Where the run started, for a run started from another (charlm.train.finetune.Parent.lineage)."""
        init = read_json_dict(self.path / SOURCE).get("init")
        return init if isinstance(init, dict) else None

    def resume_checkpoint(self) -> Path:
        """`resumable()`, or a UsageError saying there is nothing to resume."""
        where = self.resumable()
        if where is None:
            raise UsageError(f"{self.path} is not a charlm run directory that can be resumed: it holds no resume "
                             "state (last/)", "give a run directory that charlm created under checkpoints/")
        return where

    def read_resume(self) -> ResumeState:
        """The resume state of last/ (without its tensors), or a UsageError saying why not."""
        return read_resume_json(self.resume_checkpoint())

    def trim_metrics(self, step: int) -> None:
        """Forget metrics rows after `step`: the steps a crash or a rollback undid, which the
        run is about to do again (and a line a crash cut off)."""
        truncate_after(self.metrics_path, step)

    # -- the writer ------------------------------------------------------------------------
    @contextlib.contextmanager
    def claim(self):
        """Hold the run for writing, or a UsageError if another process does. On entry, whatever
        a crash left half-done is settled: a save cut off between its renames is rolled back to
        the whole old copy, and temporary copies are removed."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the run directory {self.path} ({e.strerror})",
                             "choose another place with --out, or fix its permissions") from None
        with self._locked():
            try:
                self.recover()
            except OSError as e:
                raise UsageError(f"cannot tidy the run directory {self.path} ({e.strerror})",
                                 "free some space or fix its permissions") from None
            yield self

    def recover(self) -> None:
        """Finish what a crash cut off (call only while holding the claim)."""
        for name in (BEST, LAST):
            path, old = self.path / name, previous_copy(self.path / name)
            if old.is_dir():
                if (path / CONFIG).is_file():
                    shutil.rmtree(old, ignore_errors=True)   # the new copy was in place already
                else:
                    shutil.rmtree(path, ignore_errors=True)
                    os.replace(old, path)                    # cut off between the renames: the old one is whole
        for tmp in self.path.glob(".*.tmp-*"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)

    def check_idle(self, fix: str = "wait for it to finish or stop it first") -> None:
        """A UsageError (with `fix`) if another process writes this run right now."""
        if (self.path / LOCK).exists():
            with self._locked(fix):
                pass

    @contextlib.contextmanager
    def _locked(self, fix: str = "wait for it to finish or stop it first"):
        lock = self.path / LOCK
        orphan_deadline = time.monotonic() + ORPHANED_LOCK_WAIT_S
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise UsageError(f"cannot write to the run directory {self.path} ({e.strerror})",
                                 "free some space or fix its permissions") from None
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = lock.read_text(errors="replace").strip() if lock.exists() else ""
                if holder.isdigit() and not _alive(int(holder)) and time.monotonic() < orphan_deadline:
                    time.sleep(0.01)
                    continue
                raise UsageError(f"another charlm is training into {self.path}"
                                 + (f" (pid {holder})" if holder.isdigit() else ""), fix) from None
            # The holder before us unlinks the file as it lets go: if it did, lock the new one.
            try:
                if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            with contextlib.suppress(OSError):
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    lock.unlink()
            os.close(fd)

    # -- as a whole ------------------------------------------------------------------------
    def rename(self, new_name: str) -> "RunDir":
        """The same run under another name in the same parent; refuses names that would move it."""
        new_name = new_name.strip()
        if not new_name or new_name in (".", "..") or "/" in new_name or os.sep in new_name or new_name.startswith("."):
            raise UsageError(f"{new_name!r} is not a usable run name", "use letters, digits, '-', '_' or '.', no slashes")
        target = self.path.parent / new_name
        if target.exists():
            raise UsageError(f"a run called {new_name} already exists", "choose another name")
        with self._locked():      # not while a trainer writes to it: it would go on at the old path
            os.rename(self.path, target)
            (target / LOCK).unlink(missing_ok=True)
        return RunDir(target)

    def delete(self) -> None:
        """Delete the run, after checking it is one (never an arbitrary directory) and that
        nothing is training it."""
        if not self.is_run():
            raise UsageError(f"{self.path} is not a charlm run directory", "nothing was deleted")
        with self._locked():
            shutil.rmtree(self.path)


def read_resume_json(checkpoint: Path) -> ResumeState:
    """resume.json of a checkpoint directory as a `ResumeState`: the one reader of that file."""
    try:
        return ResumeState.from_json(json.loads((checkpoint / RESUME_JSON).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UsageError(f"{checkpoint} holds no resume state",
                         "resume from a run directory written by `charlm train`") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"the resume state in {checkpoint} is corrupt ({str(e)[:80]})",
                         "start a new run instead") from None
