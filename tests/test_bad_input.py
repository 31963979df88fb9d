"""Bad input, through the real CLI: every case is one line on stderr starting "charlm: error:",
naming the problem and the fix, exit status 2, no traceback, and nothing already saved is
changed (the files of a trained run, of the run the case damages, and of the corpus cache keep
their bytes and their mtimes)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from charlm.cli.main import build_parser, main
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.files import source_of_path
from charlm.paths import cache_root
from charlm.runs.directory import RunDir

from conftest import TINY_TEXT, run_cli
from helpers import assert_usage_error, held_by_another_process


@dataclass
class Case:
    args: list[str]
    needles: tuple[str, ...]
    watch: list[Path] = field(default_factory=list)     # directories whose files must survive
    prefix: list[str] = field(default_factory=list)     # run the subprocess under this (setpriv)
    holders: list[subprocess.Popen] = field(default_factory=list)   # stopped once the case ran


def _text(tmp, name, data: bytes | str):
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def _run_copy(tmp, trained_run) -> Path:
    return Path(shutil.copytree(trained_run.run_dir, tmp / "run"))


def _uncached(run: Path) -> Path:
    """`run`, its encoded text gone from the cache too: nothing left to find it by its hash."""
    shutil.rmtree(cache_root() / "encoded", ignore_errors=True)
    return run


def _checkpoint_copy(tmp, trained_run) -> Path:
    return Path(shutil.copytree(trained_run.run_dir / "best", tmp / "ckpt"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


def _edit_json(path: Path, change) -> Path:
    """Rewrite a JSON file through `change(data)` (which edits in place); returns its directory."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path.parent


def _dir_of_pictures(tmp) -> Path:
    d = tmp / "pics"
    d.mkdir()
    _text(d, "a.png", b"\x89PNG\r\n")
    _text(d, ".notes.txt", "hidden")
    return d


def _dir_with_a_file(tmp) -> Path:
    d = tmp / "mine"
    d.mkdir()
    _text(d, "keep.txt", "my own notes")
    return d


def _symlink(tmp, name, target) -> str:
    os.symlink(target, tmp / name)
    return str(tmp / name)


def _fifo(tmp) -> str:
    os.mkfifo(tmp / "pipe")
    return str(tmp / "pipe")


def _one_line(tmp, name, mb: int, tail: bytes) -> str:
    """A file of `mb` MB with no line break, ending in `tail`."""
    path = tmp / name
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(b"the cat sat on the mat " * 43478)     # ~1 MB, no newline
        f.write(tail)
    return str(path)


def _unreadable(tmp) -> str:
    path = Path(_text(tmp, "secret.txt", TINY_TEXT))
    path.chmod(0)
    return str(path)


def _without_privileges() -> list[str]:
    """root reads a mode-000 file anyway: run it without root's capabilities, as a user would be."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a mode-000 file is readable here")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]


def _vocab_grown(tmp, trained_run) -> Path:
    """A checkpoint whose tokenizer.json has one character more than its weights were trained on."""
    ckpt = _checkpoint_copy(tmp, trained_run)
    return _edit_json(ckpt / "tokenizer.json", lambda t: t["model"]["vocab"].update({"é": len(t["model"]["vocab"])}))


def _vocab_of_words(tmp, trained_run) -> Path:
    def merge(t):
        vocab = t["model"]["vocab"]
        vocab["ca"] = vocab.pop("c")
    return _edit_json(_checkpoint_copy(tmp, trained_run) / "tokenizer.json", merge)


def _vocab_with_a_gap(tmp, trained_run) -> Path:
    def renumber(t):
        vocab = t["model"]["vocab"]
        last = max(vocab, key=vocab.get)
        vocab[last] += 5
    return _edit_json(_checkpoint_copy(tmp, trained_run) / "tokenizer.json", renumber)


def _lock_case(args, run_dir: Path, needles=()) -> Case:
    holder = held_by_another_process(run_dir)
    return Case(args, ("another charlm is training into", f"(pid {holder.pid})", *needles), [run_dir],
                holders=[holder])


TRAIN = ("--preset", "tiny", "--steps", "2", "--device", "cpu")
UTF16 = b"\xff\xfe" + TINY_TEXT.encode("utf-16-le")


# Each builder gets (tmp_path, trained_run) and returns the Case to run.
CASES = {
    # -- corpora ----------------------------------------------------------------------
    "missing-path": lambda t, r: Case(["train", str(t / "no-such.txt"), *TRAIN], ("no such file", "check the path")),
    "empty-file": lambda t, r: Case(["train", _text(t, "empty.txt", b""), *TRAIN], ("empty",)),
    "bom-only-file": lambda t, r: Case(["train", _text(t, "bom.txt", b"\xef\xbb\xbf"), *TRAIN], ("empty",)),
    "directory-without-text": lambda t, r: Case(["train", str(_dir_of_pictures(t)), *TRAIN], ("has no text files",)),
    "binary-file": lambda t, r: Case(["train", _text(t, "model.dat", b"\x7fELF\x00\x01\x02" * 50), *TRAIN],
                                     ("binary",)),
    "invalid-utf8": lambda t, r: Case(["train", _text(t, "latin.txt", b"line one\nline two\ncaf\xe9\n"), *TRAIN],
                                      ("not valid utf-8", "byte 0xe9 at offset 21 (line 3)", "--encoding")),
    "unknown-encoding": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--encoding", "klingon", *TRAIN],
                                          ("unknown encoding", "utf-8")),
    "shorter-than-one-batch": lambda t, r: Case(["train", _text(t, "short.txt", TINY_TEXT[:300]), *TRAIN],
                                                ("fewer than one batch", "--batch-size")),
    "utf16-with-bom": lambda t, r: Case(["train", _text(t, "wide.txt", UTF16), *TRAIN],
                                        ("is utf-16 text", "byte-order mark", "--encoding utf-16")),
    "utf32-with-bom": lambda t, r: Case(["train", _text(t, "wider.txt", TINY_TEXT.encode("utf-32")), *TRAIN],
                                        ("is utf-32 text", "--encoding utf-32")),
    "one-character": lambda t, r: Case(["train", _text(t, "one.txt", "a"), *TRAIN], ("empty", "longer text")),
    "symlink-loop": lambda t, r: Case(["train", _symlink(t, "loop.txt", "loop.txt"), *TRAIN],
                                      ("symbolic link that loops",)),
    "dangling-symlink": lambda t, r: Case(["train", _symlink(t, "gone.txt", "moved-away.txt"), *TRAIN],
                                          ("symbolic link to moved-away.txt, which does not exist",)),
    "unreadable-file": lambda t, r: Case(["train", _unreadable(t), *TRAIN], ("cannot read", "permission denied"),
                                         prefix=_without_privileges()),
    "named-pipe": lambda t, r: Case(["train", _fifo(t), *TRAIN], ("not a regular file",)),
    "glob-matching-nothing": lambda t, r: Case(["train", str(t / "*.nothing"), *TRAIN], ("no files match",)),
    "50mb-single-line": lambda t, r: Case(["train", _one_line(t, "long.txt", 50, b"caf\xe9 au lait"), *TRAIN],
                                          ("not valid utf-8", "(line 1)", "--encoding")),
    "misspelt-corpus-name": lambda t, r: Case(["train", "shakespear", *TRAIN], ("did you mean 'shakespeare'",)),
    # A paragraph pasted where a path goes: too long for any file system (was a traceback from Path.exists).
    "path-name-too-long": lambda t, r: Case(["train", "x" * 300, *TRAIN], ("path is too long", "300 characters")),
    "path-too-long-inside": lambda t, r: Case(["train", str(t / ("y" * 300) / "a.txt"), *TRAIN],
                                              ("path is too long",)),
    "path-with-a-line-break": lambda t, r: Case(["train", str(t / "my\nnotes.txt"), *TRAIN],
                                                ("no such file", "my⏎notes.txt")),
    # ~7 typed as a path (the monkey, in Generate's Save): ~name is that user's home (was a traceback).
    "path-in-the-home-of-no-user": lambda t, r: Case(["train", "~nosuchuser7/notes.txt", *TRAIN],
                                                     ("no such user", "~nosuchuser7 is the home", "~/ for your own home")),
    "checkpoint-path-too-long": lambda t, r: Case(["info", "z" * 5000], ("path is too long", "5,000 characters")),
    "sample-path-too-long": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", "p" * 300],
                                              ("path is too long",)),
    "eval-text-path-too-long": lambda t, r: Case(["eval", str(r.run_dir), "e" * 300], ("path is too long",)),
    "corpus-info-of-a-loop": lambda t, r: Case(["corpus", "info", _symlink(t, "l.txt", "l.txt")],
                                               ("symbolic link that loops",)),
    # -- flag values ------------------------------------------------------------------
    "negative-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "-1"], ("--temperature",)),
    "nan-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "nan"], ("--temperature",)),
    "inf-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "inf"], ("--temperature",)),
    "word-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "hot"],
                                          ("--temperature", "not a number")),
    "top-k-negative": lambda t, r: Case(["sample", str(r.run_dir), "--top-k", "-3"], ("--top-k", "0 or more")),
    "top-p-zero": lambda t, r: Case(["sample", str(r.run_dir), "--top-p", "0"], ("--top-p", "(0, 1]")),
    "top-p-above-one": lambda t, r: Case(["sample", str(r.run_dir), "--top-p", "1.5"], ("--top-p", "(0, 1]")),
    "length-zero": lambda t, r: Case(["sample", str(r.run_dir), "--length", "0"], ("--length", "at least 1")),
    "length-negative": lambda t, r: Case(["sample", str(r.run_dir), "--length", "-5"], ("--length", "at least 1")),
    "too-many-samples": lambda t, r: Case(["sample", str(r.run_dir), "--num-samples", "100000"],
                                          ("--num-samples", "at most 256")),
    "huge-seed": lambda t, r: Case(["sample", str(r.run_dir), "--seed", str(2**70)], ("--seed", "too large")),
    "empty-stop": lambda t, r: Case(["sample", str(r.run_dir), "--stop", ""], ("--stop is empty",)),
    "prompt-of-unknown-characters": lambda t, r: Case(["sample", str(r.run_dir), "--prime", "ZQ☃€"],
                                                      ("knows none of the prompt's characters", "'ZQ☃€'")),
    "prime-and-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime", "a", "--prime-file",
                                               _text(t, "p.txt", "b")], ("not allowed with",)),
    "missing-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", str(t / "nope.txt")],
                                            ("--prime-file", "no such file")),
    "prime-file-is-a-directory": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", str(t)],
                                                   ("is a directory",)),
    "empty-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", _text(t, "e.txt", b"")],
                                          ("--prime-file", "is empty")),
    "binary-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", _text(t, "b", b"\0\1" * 9)],
                                           ("--prime-file", "binary", "utf-8 text file")),
    "50mb-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", _one_line(t, "big.txt", 50, b"")],
                                         ("--prime-file", "too long for a prompt", "at most 1 MB")),
    "misspelt-flag": lambda t, r: Case(["sample", str(r.run_dir), "--tempreature", "1"],
                                       ("charlm sample: unrecognized arguments: --tempreature 1",
                                        "did you mean --temperature?", "charlm sample --help")),
    "unknown-command": lambda t, r: Case(["smaple", str(r.run_dir)], ("error: argument COMMAND: invalid choice: 'smaple'",)),
    "flag-without-its-value": lambda t, r: Case(["sample", str(r.run_dir), "--length"],
                                                ("--length", "expected one argument")),
    "zero-streams": lambda t, r: Case(["eval", str(r.run_dir), "--streams", "0"], ("--streams",)),
    "zero-layers": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--layers", "0"], ("--layers",)),
    "dropout-one": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--dropout", "1"], ("--dropout",)),
    "negative-steps": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--steps", "-1"], ("--steps",)),
    "infinite-minutes": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--minutes", "inf"], ("--minutes",)),
    "nan-lr": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--lr", "nan"], ("--lr",)),
    "absurd-lr": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--lr", "1e38", *TRAIN],
                                   ("--lr must be at most",)),
    "unknown-cell": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--cell", "transformer"],
                                      ("--cell", "lstm")),
    # -- runs and checkpoints ---------------------------------------------------------
    "resume-not-a-run": lambda t, r: Case(
        ["train", "--resume", str(Path(_text(t, "notes.txt", "keep me")).parent)],
        ("not a charlm run directory",), [t]),
    "resume-finished-run": lambda t, r: Case(["train", "--resume", str(_run_copy(t, r))],
                                             ("already finished its budget", "--steps"), [t]),
    "resume-new-shape": lambda t, r: Case(["train", "--resume", str(_run_copy(t, r)), "--layers", "3", "--steps", "99"],
                                          ("keeps its model shape",), [t]),
    "resume-other-text": lambda t, r: Case(
        ["train", _text(t, "other.txt", TINY_TEXT.replace("dog", "fox")), "--resume", str(_run_copy(t, r)),
         "--steps", "99"], ("is not the text", "was trained on"), [t]),
    "resume-corrupt-state": lambda t, r: Case(
        ["train", "--resume", str(_truncate(_run_copy(t, r) / "last" / "resume.safetensors").parent.parent),
         "--steps", "99"], ("resume state", "corrupt"), [t]),
    "init-missing-run": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--init", str(t / "nope"), *TRAIN],
                                          ("--init", "no such checkpoint"), [t]),
    "init-corrupt-run": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--init",
         str(_truncate(_run_copy(t, r) / "best" / "model.safetensors").parent.parent), *TRAIN],
        ("--init", "truncated model.safetensors"), [t]),
    "init-another-cell": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--init", str(r.run_dir), "--cell", "gru", "--hidden", "64", *TRAIN],
        ("is lstm 1x64 (embed 16)", "asks for gru 1x64 (embed 16)", "drop --cell gru"), [t]),
    "init-with-resume": lambda t, r: Case(
        ["train", "--resume", str(_run_copy(t, r)), "--init", str(r.run_dir), "--steps", "99"],
        ("--init", "--resume", "drop one"), [t]),
    "init-with-a-preset": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--init", str(r.run_dir), "--preset", "small", "--steps", "2"],
        ("--preset small",), [t]),
    "missing-checkpoint-sample": lambda t, r: Case(["sample", str(t / "runs" / "nope")], ("no such checkpoint",)),
    "missing-checkpoint-eval": lambda t, r: Case(["eval", str(t / "nope")], ("no such checkpoint",)),
    "missing-checkpoint-info": lambda t, r: Case(["info", str(t / "nope")], ("no such checkpoint",)),
    "checkpoint-is-a-symlink-loop": lambda t, r: Case(["info", _symlink(t, "ck", "ck")], ("symbolic link that loops",)),
    "not-a-checkpoint-dir": lambda t, r: Case(["info", str(Path(_text(t, "x.txt", "x")).parent)],
                                              ("not a charlm checkpoint",), [t]),
    "corrupt-config": lambda t, r: Case(
        ["info", str(_write(_checkpoint_copy(t, r) / "config.json", '{"format": "charlm-checkpoint", ').parent)],
        ("corrupt config.json",), [t]),
    "binary-config": lambda t, r: Case(
        ["info", str(Path(_text(_checkpoint_copy(t, r), "config.json", b"\xff\xfe\0\0garbage")).parent)],
        ("corrupt config.json",), [t]),
    "config-from-a-future-version": lambda t, r: Case(
        ["sample", str(_edit_json(_checkpoint_copy(t, r) / "config.json", lambda m: m.update(format_version=99)))],
        ("written by a newer charlm (format 99)", "upgrade charlm"), [t]),
    "config-version-not-a-number": lambda t, r: Case(
        ["sample", str(_edit_json(_checkpoint_copy(t, r) / "config.json", lambda m: m.update(format_version="two")))],
        ("corrupt config.json",), [t]),
    "config-model-not-an-object": lambda t, r: Case(
        ["info", str(_edit_json(_checkpoint_copy(t, r) / "config.json", lambda m: m.update(model=[2, 512])))],
        ("corrupt config.json",), [t]),
    "config-names-an-enormous-model": lambda t, r: Case(
        ["sample", str(_edit_json(_checkpoint_copy(t, r) / "config.json", lambda m: m["model"].update(hidden=10**12)))],
        ("weights do not match", "parameters named"), [t]),
    "truncated-weights": lambda t, r: Case(
        ["sample", str(_truncate(_checkpoint_copy(t, r) / "model.safetensors").parent)],
        ("truncated model.safetensors",), [t]),
    "empty-weights": lambda t, r: Case(
        ["eval", str(Path(_text(_checkpoint_copy(t, r), "model.safetensors", b"")).parent)],
        ("truncated model.safetensors",), [t]),
    "foreign-checkpoint": lambda t, r: Case(
        ["eval", str(_write(_checkpoint_copy(t, r) / "config.json",
                            json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})).parent)],
        ("not a charlm checkpoint", "config.json is from something else"), [t]),
    "missing-tokenizer": lambda t, r: Case(
        ["sample", str(_unlink(_checkpoint_copy(t, r) / "tokenizer.json").parent)], ("no tokenizer.json",), [t]),
    "vocab-weights-size-mismatch": lambda t, r: Case(["sample", str(_vocab_grown(t, r))], ("do not match",), [t]),
    "tokenizer-of-words": lambda t, r: Case(
        ["sample", str(_vocab_of_words(t, r))], ("not a charlm character vocabulary", "'ca' is not a single character"),
        [t]),
    "tokenizer-ids-with-a-gap": lambda t, r: Case(["info", str(_vocab_with_a_gap(t, r))],
                                                  ("not a charlm character vocabulary", "ids are not 0 to"), [t]),
    "eval-corpus-moved": lambda t, r: Case(     # and no copy of it in the cache
        ["eval", str(_write(_uncached(_run_copy(t, r)) / "source.json", json.dumps({"spec": str(t / "gone.txt")})).parent)],
        ("cannot be read", "--corpus"), [t]),
    "eval-text-too-short": lambda t, r: Case(["eval", str(r.run_dir), _text(t, "one.txt", "T")], ("too short",)),
    "out-is-a-nonempty-dir": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--out", str(_dir_with_a_file(t)), *TRAIN],
        ("already exists", "--out"), [t]),
    "out-is-a-file": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--out", _text(t, "out", "mine"), *TRAIN],
                                       ("already exists",), [t]),
    "out-inside-a-file": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--out", str(Path(_text(t, "f", "mine")) / "run"), *TRAIN],
        ("cannot create the run directory", "not a directory"), [t]),
    "two-trainings-into-one-out": lambda t, r: _lock_case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--out", str(_run_copy(t, r)), *TRAIN], t / "run", ("--out",)),
    "resume-while-another-trains-it": lambda t, r: _lock_case(
        ["train", "--resume", str(_run_copy(t, r)), "--steps", "99"], t / "run"),
    # -- probe, neurons, novelty --------------------------------------------------------
    "probe-missing-text-file": lambda t, r: Case(["probe", str(r.run_dir), "--text-file", str(t / "nope.txt")],
                                                 ("no such text file",)),
    "probe-empty-text": lambda t, r: Case(["probe", str(r.run_dir), "--text-file", _text(t, "e.txt", "")], ("is empty",)),
    "probe-top-k-zero": lambda t, r: Case(["probe", str(r.run_dir), "--text", "the cat", "--top-k", "0"],
                                          ("--top-k", "at least 1")),
    "neurons-unknown-pattern": lambda t, r: Case(
        ["neurons", str(r.run_dir), "--text-file", _text(t, "a.txt", TINY_TEXT), "--pattern", "quotes"],
        ("unknown pattern 'quotes'", "did you mean quote")),
    "neurons-bad-regex": lambda t, r: Case(
        ["neurons", str(r.run_dir), "--text-file", _text(t, "a.txt", TINY_TEXT), "--pattern", "(cat"],
        ("not a valid regular expression",)),
    "neurons-pattern-never-changes": lambda t, r: Case(
        ["neurons", str(r.run_dir), "--text-file", _text(t, "a.txt", TINY_TEXT), "--pattern", "quote"],
        ("same value (0) at every character",)),
    "neurons-bad-show": lambda t, r: Case(
        ["neurons", str(r.run_dir), "--text-file", _text(t, "a.txt", TINY_TEXT), "--show", "3:h:0"],
        ("--show 3:h:0", "layers 0 to 0")),
    "neurons-show-not-a-unit": lambda t, r: Case(
        ["neurons", str(r.run_dir), "--text-file", _text(t, "a.txt", TINY_TEXT), "--show", "c17"],
        ("not LAYER:KIND:INDEX",)),
    "novelty-run-without-corpus": lambda t, r: Case(
        ["novelty", str(_unlink(_uncached(_run_copy(t, r)) / "source.json").parent), _text(t, "s.txt", TINY_TEXT[:200])],
        ("does not say where its training text is", "--corpus"), [t]),
    "novelty-other-corpus": lambda t, r: Case(
        ["novelty", str(r.run_dir), _text(t, "s.txt", TINY_TEXT[:200]), "--corpus", _text(t, "o.txt", "other text")],
        ("is not the text", "was trained on", "--corpus")),
    "novelty-text-shorter-than-n": lambda t, r: Case(
        ["novelty", str(r.run_dir), _text(t, "s.txt", "The cat"), "--n", "20"], ("fewer than one window",)),
}

# The first list, each as a user meets it: a `charlm` subprocess. The rest run in-process
# through the same `main` (a subprocess costs a torch import: ~2 s a case).
SUBPROCESS = [
    "missing-path", "empty-file", "directory-without-text", "binary-file", "invalid-utf8", "shorter-than-one-batch",
    "unreadable-file", "negative-temperature", "nan-temperature", "top-p-zero", "top-p-above-one", "zero-layers",
    "dropout-one", "negative-steps", "nan-lr", "unknown-cell", "missing-checkpoint-sample", "corrupt-config",
    "truncated-weights", "foreign-checkpoint", "missing-tokenizer", "out-is-a-nonempty-dir",
    "two-trainings-into-one-out", "init-missing-run", "init-another-cell",
]

# Cases whose fix belongs in a module being reworked elsewhere (the run-directory code): they
# must fail until it is made there, then pass (strict).
NOT_YET: dict[str, str] = {}    # cases the code does not pass yet: name -> why (strict xfail)


def _params(names):
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[n])) if n in NOT_YET else n
            for n in names]


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root`: the hash of its bytes and its mtime, to prove nothing saved changed."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob("*")) if p.is_file() and os.access(p, os.R_OK)}


@pytest.fixture
def case_dir(tmp_path) -> Path:
    d = tmp_path / "case"
    d.mkdir()
    return d


@pytest.fixture
def corpus_cache(tmp_path) -> Path:
    """This test's corpus cache, holding the tiny corpus already encoded (as after a first run)."""
    path = tmp_path / "cached.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    encode_corpus(source_of_path(str(path)))
    return cache_root()


def in_process(*args: str, prefix=()) -> subprocess.CompletedProcess:
    """`charlm ARGS` through `main` in this process, its output captured."""
    assert not prefix, "a case run under another command needs a subprocess"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def as_subprocess(*args: str, prefix=()) -> subprocess.CompletedProcess:
    if not prefix:
        return run_cli(*args)
    return subprocess.run([*prefix, sys.executable, "-m", "charlm", *args], capture_output=True, text=True,
                          timeout=180)


def check(name, case_dir, trained_run, corpus_cache, run):
    case = CASES[name](case_dir, trained_run)
    try:
        watched = [*case.watch, trained_run.run_dir, corpus_cache]
        before = [snapshot(d) for d in watched]
        proc = run(*case.args, prefix=case.prefix)
        assert_usage_error(proc, *case.needles)
        assert proc.stdout == ""
        for d, files in zip(watched, before):
            after = snapshot(d)
            assert {k: after.get(k) for k in files} == files, f"a saved file under {d} was changed or removed"
    finally:
        for holder in case.holders:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize("name", _params(SUBPROCESS))
def test_bad_input_is_one_clear_line(name, case_dir, trained_run, corpus_cache):
    """The cases the issue lists, each as a user meets it: a `charlm` subprocess."""
    check(name, case_dir, trained_run, corpus_cache, as_subprocess)


@pytest.mark.parametrize("name", _params([n for n in CASES if n not in SUBPROCESS]))
def test_more_bad_input_is_one_clear_line(name, case_dir, trained_run, corpus_cache):
    """Every other case through the same entry point, in-process."""
    check(name, case_dir, trained_run, corpus_cache, in_process)


def test_every_command_meets_bad_input_here(tmp_path, trained_run):
    """The table keeps up with the CLI: each command `charlm --help` lists has cases above."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    tried = set()
    for name, make in CASES.items():
        (tmp_path / name).mkdir()
        case = make(tmp_path / name, trained_run)
        for holder in case.holders:
            holder.kill()
            holder.wait()
        tried.add(case.args[0])
    assert set(commands) <= tried, f"commands no case tries: {sorted(set(commands) - tried)}"
    assert set(SUBPROCESS) <= set(CASES) and set(NOT_YET) <= set(CASES)


def test_a_refused_corpus_leaves_no_run_directory(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text(TINY_TEXT[:300], encoding="utf-8")
    rc = main(["train", str(short), "--preset", "tiny"])
    assert_usage_error(subprocess.CompletedProcess([], rc, *capsys.readouterr()), "fewer than one batch")
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_a_second_training_into_a_running_one_is_refused_and_a_killed_one_leaves_no_lock(tmp_path, tiny_corpus):
    """A real `charlm train` holds its --out: a second is refused naming its pid; once the first
    is killed -9 mid-run, the OS has dropped the lock and the run can be resumed."""
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "charlm", "train", str(tiny_corpus), "--out", str(run_dir),
                              "--preset", "tiny", "--minutes", "5", "--eval-every", "5", "--device", "cpu",
                              "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (run_dir / "last" / "resume.json").exists():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first training never saved a checkpoint"
            time.sleep(0.1)
        second = in_process("train", str(tiny_corpus), "--out", str(run_dir), *TRAIN)
        assert_usage_error(second, "another charlm is training into", f"(pid {first.pid})")
        again = in_process("train", "--resume", str(run_dir), "--steps", "99999")
        assert_usage_error(again, "another charlm is training into", f"(pid {first.pid})")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with RunDir(run_dir).claim():      # free at once: a crash never leaves a run locked
        assert (run_dir / "last" / "resume.json").exists()


def test_the_lock_is_released_and_leaves_no_trace(tmp_path):
    run_dir = tmp_path / "new" / "run"
    with RunDir(run_dir).claim():
        assert run_dir.is_dir()
        holder_cannot = in_process("train", "--resume", str(run_dir))
        assert_usage_error(holder_cannot, "another charlm is training into")
    assert not (run_dir / ".lock").exists(), "the lock leaves no file behind"
    with RunDir(run_dir).claim():
        (run_dir / "metrics.jsonl").write_text("{}\n")
    with RunDir(run_dir).claim():
        assert (run_dir / "metrics.jsonl").exists(), "what a run wrote is kept"


# -- any combination of flags runs or fails cleanly ------------------------------------------

# Mostly values a person would type, a quarter of the time something odd: out of range, not a
# number, or a number Python reads and a person would not (" 3 ", "-0").
ODD_NUMBERS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1.5", "-0", "1e309", "0x10", "", "½", " 3 "])


def _number_text(numbers):
    return st.one_of(*[numbers.map(str)] * 3, ODD_NUMBERS)


SAMPLE_FLAGS = {
    "--temperature": _number_text(st.floats(0, 3)),
    "--top-k": _number_text(st.integers(0, 40)),                # beyond the vocabulary's 22 too
    "--top-p": _number_text(st.floats(0.01, 1)),
    "--length": _number_text(st.integers(1, 30)),
    "--seed": _number_text(st.integers(0, 2**64)),              # 2**63 and up: too large
    "--num-samples": _number_text(st.integers(1, 4)),
    "--prime": st.one_of(st.text(sorted(set(TINY_TEXT)), max_size=12), st.text(max_size=6)),
    "--stop": st.text(sorted(set(TINY_TEXT)), max_size=2),
    "--weights": st.sampled_from(["fp32", "bf16", "int8", "reference", "fp64"]),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags=st.dictionaries(st.sampled_from(sorted(SAMPLE_FLAGS)), st.none(), max_size=6).flatmap(
    lambda chosen: st.fixed_dictionaries({k: SAMPLE_FLAGS[k] for k in chosen})),
    no_prime=st.booleans())
def test_any_sample_flags_run_or_fail_cleanly(trained_run, flags, no_prime):
    args = ["sample", str(trained_run.run_dir), *(f"{k}={v}" for k, v in flags.items())]
    args += ["--no-prime"] * no_prime
    proc = in_process(*args)
    event(f"exit {proc.returncode}")
    if proc.returncode == 2:
        assert_usage_error(proc)
        assert proc.stdout == ""
        return
    assert proc.returncode == 0, proc
    assert "Traceback" not in proc.stderr
    assert all(line.startswith("charlm: warning: ") for line in proc.stderr.splitlines())
    length, samples = int(flags.get("--length", 500)), int(flags.get("--num-samples", 1))
    echoed = "" if no_prime else flags.get("--prime", "")
    if samples > 1:
        assert proc.stdout.count("--- sample ") == samples
    elif "--stop" not in flags:
        assert proc.stdout == echoed + proc.stdout[len(echoed):-1] + "\n"
        assert len(proc.stdout) == len(echoed) + length + 1, "exactly --length characters after the prompt"
