"""A big corpus end to end: the first `charlm train` (encodes the text) and a second one (finds
it in the cache), each a fresh process under /usr/bin/time -v, as a user would run them.

The text is tinyshakespeare repeated to --mb megabytes, made in the temp directory if missing
(never in the repository). Both runs share one fresh CHARLM_CACHE. Printed: the size, each
run's wall-clock seconds (python and torch start-up included) and peak RSS, the first run's
MB/s, and the machine. The goals: first run >= 50 MB/s, second < 10 s, peak RSS < 2 GB.
`--before REV` also runs the code of git revision REV the same way, for comparison.

    python -m bench.big_corpus [--mb 500] [--path P] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from charlm.corpus.names import default_corpus

ROOT = Path(__file__).resolve().parent.parent
TRAIN_ARGS = ("--steps", "5", "--layers", "1", "--hidden", "32", "--preset", "small")
GOAL_MB_PER_S, GOAL_SECOND_S, GOAL_RSS_MB = 50, 10, 2000


def make_text(path: Path, mb: float) -> None:
    """Repeat the default corpus (tinyshakespeare) until the file holds `mb` megabytes."""
    source, notice = default_corpus()
    if notice:
        print(f"note: {notice}")
    piece = b"".join(p.read_bytes() for p in source.paths)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for _ in range(-(-int(mb * 1e6) // len(piece))):
            f.write(piece)
    tmp.replace(path)


def timed_train(corpus: Path, cache: Path, out: Path, code: Path) -> tuple[float, float]:
    """One `charlm train` as a subprocess: (wall-clock seconds, peak RSS in MB)."""
    report = out.with_name(out.name + ".time")
    # `python -m` puts the working directory first on sys.path: run in `code`, not just with it on PYTHONPATH.
    env = {**os.environ, "CHARLM_CACHE": str(cache), "PYTHONPATH": str(code)}
    cmd = ["/usr/bin/time", "-v", "-o", str(report), sys.executable, "-m", "charlm", "train", str(corpus),
           *TRAIN_ARGS, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=code)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"charlm train failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text()).group(1))
    return seconds, rss_kb / 1000


def run_pair(corpus: Path, code: Path, label: str, mb: float) -> None:
    with tempfile.TemporaryDirectory(prefix="charlm-big-") as tmp:
        tmp = Path(tmp)
        first, rss1 = timed_train(corpus, tmp / "cache", tmp / "run1", code)
        second, rss2 = timed_train(corpus, tmp / "cache", tmp / "run2", code)
    print(f"{label}: first run {first:.1f} s ({mb / first:.1f} MB/s, start-up included), peak RSS {rss1:,.0f} MB; "
          f"second run {second:.1f} s, peak RSS {rss2:,.0f} MB")
    met = first <= mb / GOAL_MB_PER_S, second < GOAL_SECOND_S, max(rss1, rss2) < GOAL_RSS_MB
    print(f"{label}: goals: first >= {GOAL_MB_PER_S} MB/s {_yes(met[0])}, second < {GOAL_SECOND_S} s "
          f"{_yes(met[1])}, peak RSS < {GOAL_RSS_MB / 1000:.0f} GB {_yes(met[2])}")


def _yes(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _export(rev: str, dest: Path) -> Path:
    """The package as it was at `rev`, to run the same benchmark on it."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "charlm"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=500, help="megabytes of text (default 500)")
    ap.add_argument("--path", type=Path, help="the text (default: TMPDIR/charlm-big-<mb>mb.txt, made if missing)")
    ap.add_argument("--before", metavar="REV", help="also run the code of this git revision")
    args = ap.parse_args()
    path = (args.path or Path(tempfile.gettempdir()) / f"charlm-big-{args.mb:g}mb.txt").resolve()
    if not path.exists():
        make_text(path, args.mb)
    mb = path.stat().st_size / 1e6
    print(f"machine: {describe()}")
    print(f"text: {path} ({mb:,.1f} MB); each run: charlm train TEXT {' '.join(TRAIN_ARGS)}")
    run_pair(path, ROOT, "this code", mb)
    if args.before:
        with tempfile.TemporaryDirectory(prefix="charlm-before-") as old:
            run_pair(path, _export(args.before, Path(old)), f"code at {args.before}", mb)


if __name__ == "__main__":
    main()
