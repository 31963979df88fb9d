"""A program in a pseudo-terminal, seen as a person's terminal sees it: keys written in, screen
updates read out with the time they arrived (escape sequences stripped for matching)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import threading
import time

TAIL_BYTES = 1 << 14          # of old output kept when looking in new output
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]")


class PtyApp:
    def __init__(self, argv: list[str], cwd, env: dict, size: tuple[int, int] = (100, 30)):
        master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self._closing = threading.Event()
        self.chunks: list[tuple[float, bytes]] = []      # (arrival time, bytes)
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # select with a timeout, not a blocking read: a thread blocked reading the master would
        # keep the terminal open after hang_up closed it.
        while not self._closing.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return                                   # the child closed the terminal
            if not data:
                return
            now = time.perf_counter()
            with self._lock:
                self.chunks.append((now, data))

    def _text(self, start: int = 0) -> tuple[str, int]:
        with self._lock:
            chunks = self.chunks[start:]
            n = len(self.chunks)
        return ANSI.sub("", b"".join(c for _, c in chunks).decode("utf-8", "replace")), n

    def send(self, keys: str) -> float:
        t = time.perf_counter()
        os.write(self.master, keys.encode())
        return t

    def wait_for(self, pattern: str, timeout: float = 60.0, regex: bool = False, start: int = 0) -> None:
        """Until `pattern` shows in the output after chunk `start`. Only new output is read at
        each look (with a tail of the old, for a match cut between chunks): reading all of it
        again every 50 ms took a core from the program under test within minutes."""
        deadline = time.monotonic() + timeout
        index, tail = start, b""
        while time.monotonic() < deadline:
            with self._lock:
                fresh = self.chunks[index:]
                index += len(fresh)
            if fresh:
                raw = tail + b"".join(c for _, c in fresh)
                text = ANSI.sub("", raw.decode("utf-8", "replace"))
                if re.search(pattern, text) if regex else pattern in text:
                    return
                tail = raw[-TAIL_BYTES:]
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited ({self.proc.returncode}) before showing {pattern!r}")
            time.sleep(0.05)
        raise TimeoutError(f"{pattern!r} did not appear within {timeout:g}s")

    def latency(self, keys: str, shows: str, timeout: float = 10.0) -> float:
        """Milliseconds from writing `keys` to the arrival of the output that shows `shows`."""
        with self._lock:
            start = len(self.chunks)
        sent = self.send(keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                chunks = self.chunks[start:]
            raw = b""
            for arrived, data in chunks:
                raw += data
                if shows in ANSI.sub("", raw.decode("utf-8", "replace")):
                    return (arrived - sent) * 1000
            time.sleep(0.001)
        raise TimeoutError(f"{shows!r} did not appear within {timeout:g}s of the key")

    def matches(self, pattern: str) -> list[tuple[float, re.Match]]:
        """Every match of `pattern` in the output, with the time its chunk arrived."""
        with self._lock:
            chunks = list(self.chunks)
        rx = re.compile(pattern)
        return [(t, m) for t, data in chunks for m in rx.finditer(ANSI.sub("", data.decode("utf-8", "replace")))]

    def cpu_ticks(self) -> tuple[int, int]:
        """(the UI thread's, the whole process's) CPU time so far, in clock ticks (Linux)."""
        def ticks(path: str) -> int:
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])          # utime + stime
        pid = self.proc.pid
        return ticks(f"/proc/{pid}/task/{pid}/stat"), ticks(f"/proc/{pid}/stat")

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def hang_up(self) -> None:
        """Close the terminal under the program, as closing its window does."""
        self._closing.set()
        self._reader.join()
        os.close(self.master)
        self.master = None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.master is not None:
            self._closing.set()
            self._reader.join()
            os.close(self.master)
