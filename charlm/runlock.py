"""One training at a time per run directory.

The lock is an exclusive `flock` on the run directory itself: no lock file, so a new run's
directory stays empty until the trainer writes into it, and the kernel drops the lock when
the process ends, however it ends (kill -9 included), so a crash never leaves a run stuck.
Where the kernel lists locks (/proc/locks), the error names the process that holds it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from charlm.errors import UsageError

try:
    import fcntl
except ImportError:     # Windows: no flock; training goes on unguarded, as it did before
    fcntl = None


@contextmanager
def run_lock(run_dir: Path, create: bool = True) -> Iterator[Path]:
    """Hold `run_dir` for one training; UsageError if another process trains into it.

    With `create`, a missing directory is made (and removed again on exit if nothing was written
    into it, so a run refused later leaves no husk). Without it, a missing directory is not
    locked: the caller's own check reports it."""
    run_dir = Path(run_dir)
    made = False
    if not run_dir.is_dir():
        if not create:
            yield run_dir
            return
        if os.path.lexists(run_dir):
            raise UsageError(f"{run_dir} already exists and is not a directory", "choose another run directory (--out)")
        try:
            run_dir.mkdir(parents=True)
        except OSError as e:
            raise UsageError(f"cannot create the run directory {run_dir}: {e.strerror}",
                             "choose another place (--out) or check its permissions") from None
        made = True
    fd = _flock(run_dir)
    try:
        yield run_dir
    finally:
        if fd is not None:
            os.close(fd)        # releases the lock
        if made:
            try:
                run_dir.rmdir()     # only if still empty: never removes what was written
            except OSError:
                pass


def check_idle(run_dir: Path, fix: str) -> None:
    """UsageError (with `fix`) if another process trains into `run_dir` right now."""
    if not Path(run_dir).is_dir():
        return
    fd = _flock(run_dir, shared=True, fix=fix)
    if fd is not None:
        os.close(fd)        # it was only a look


def _flock(run_dir: Path, shared: bool = False, fix: str = "wait for it or choose another --out") -> int | None:
    """An open descriptor of `run_dir` holding its flock, or None where flock cannot be had
    (no fcntl, a directory we may not open, a filesystem without it): unguarded, as before."""
    if fcntl is None:
        return None
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as e:
        try:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise _busy(run_dir, fd, fix) from None
            return None
        finally:
            os.close(fd)
    return fd


def _busy(run_dir: Path, fd: int, fix: str) -> UsageError:
    pid = _pid_from_proc_locks(os.fstat(fd))
    return UsageError(f"another charlm is training into {run_dir}" + (f" (pid {pid})" if pid else ""), fix)


def _pid_from_proc_locks(st: os.stat_result) -> int | None:
    """The pid holding a flock on the file `st` describes, from Linux's /proc/locks
    (lines like `1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146746 0 EOF`)."""
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == want:
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return None
