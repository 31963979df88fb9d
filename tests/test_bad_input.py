"""Bad input, through the real CLI: every case is one line on stderr starting "charlm: error:",
naming the problem and the fix, exit status 2, no traceback, and nothing already saved is lost."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from charlm.cli.main import main
from conftest import TINY_TEXT, run_cli
from helpers import assert_usage_error, tree_digest


@dataclass
class Case:
    args: list[str]
    needles: tuple[str, ...]
    watch: list[Path] = field(default_factory=list)     # directories whose files must survive


def _text(tmp, name, data: bytes | str):
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def _run_copy(tmp, trained_run) -> Path:
    return Path(shutil.copytree(trained_run.run_dir, tmp / "run"))


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


TRAIN = ("--preset", "tiny", "--steps", "2", "--device", "cpu")


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
    # -- flag values ------------------------------------------------------------------
    "negative-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "-1"], ("--temperature",)),
    "nan-temperature": lambda t, r: Case(["sample", str(r.run_dir), "--temperature", "nan"], ("--temperature",)),
    "top-p-zero": lambda t, r: Case(["sample", str(r.run_dir), "--top-p", "0"], ("--top-p", "(0, 1]")),
    "top-p-above-one": lambda t, r: Case(["sample", str(r.run_dir), "--top-p", "1.5"], ("--top-p", "(0, 1]")),
    "huge-seed": lambda t, r: Case(["sample", str(r.run_dir), "--seed", str(2**70)], ("--seed", "too large")),
    "empty-stop": lambda t, r: Case(["sample", str(r.run_dir), "--stop", ""], ("--stop is empty",)),
    "missing-prime-file": lambda t, r: Case(["sample", str(r.run_dir), "--prime-file", str(t / "nope.txt")],
                                            ("no such prime file",)),
    "zero-layers": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--layers", "0"], ("--layers",)),
    "dropout-one": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--dropout", "1"], ("--dropout",)),
    "negative-steps": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--steps", "-1"], ("--steps",)),
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
         "--steps", "99"], ("different text",), [t]),
    "resume-corrupt-state": lambda t, r: Case(
        ["train", "--resume", str(_truncate(_run_copy(t, r) / "last" / "resume.safetensors").parent.parent),
         "--steps", "99"], ("resume state", "corrupt"), [t]),
    "missing-checkpoint-sample": lambda t, r: Case(["sample", str(t / "runs" / "nope")], ("no such checkpoint",)),
    "missing-checkpoint-eval": lambda t, r: Case(["eval", str(t / "nope")], ("no such checkpoint",)),
    "missing-checkpoint-info": lambda t, r: Case(["info", str(t / "nope")], ("no such checkpoint",)),
    "not-a-checkpoint-dir": lambda t, r: Case(["info", str(Path(_text(t, "x.txt", "x")).parent)],
                                              ("not a charlm checkpoint",), [t]),
    "corrupt-config": lambda t, r: Case(
        ["info", str(_write(_checkpoint_copy(t, r) / "config.json", '{"format": "charlm-checkpoint", ').parent)],
        ("corrupt config.json",), [t]),
    "truncated-weights": lambda t, r: Case(
        ["sample", str(_truncate(_checkpoint_copy(t, r) / "model.safetensors").parent)],
        ("truncated model.safetensors",), [t]),
    "foreign-checkpoint": lambda t, r: Case(
        ["eval", str(_write(_checkpoint_copy(t, r) / "config.json",
                            json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})).parent)],
        ("not a charlm checkpoint", "config.json is from something else"), [t]),
    "missing-tokenizer": lambda t, r: Case(
        ["sample", str(_unlink(_checkpoint_copy(t, r) / "tokenizer.json").parent)], ("no tokenizer.json",), [t]),
    "eval-corpus-moved": lambda t, r: Case(
        ["eval", str(_write(_run_copy(t, r) / "source.json", json.dumps({"spec": str(t / "gone.txt")})).parent)],
        ("cannot be read", "--corpus"), [t]),
    "eval-text-too-short": lambda t, r: Case(["eval", str(r.run_dir), _text(t, "one.txt", "T")], ("too short",)),
    "out-is-a-nonempty-dir": lambda t, r: Case(
        ["train", _text(t, "a.txt", TINY_TEXT), "--out", str(_dir_with_a_file(t)), *TRAIN],
        ("already exists", "--out"), [t]),
    "out-is-a-file": lambda t, r: Case(["train", _text(t, "a.txt", TINY_TEXT), "--out", _text(t, "out", "mine"), *TRAIN],
                                       ("already exists",), [t]),    # -- probe, neurons, novelty --------------------------------------------------------
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
        ["novelty", str(_unlink(_run_copy(t, r) / "source.json").parent), _text(t, "s.txt", TINY_TEXT[:200])],
        ("does not say where its training text is", "--corpus"), [t]),
    "novelty-other-corpus": lambda t, r: Case(
        ["novelty", str(r.run_dir), _text(t, "s.txt", TINY_TEXT[:200]), "--corpus", _text(t, "o.txt", "other text")],
        ("not the text it was trained on", "--corpus")),
    "novelty-text-shorter-than-n": lambda t, r: Case(
        ["novelty", str(r.run_dir), _text(t, "s.txt", "The cat"), "--n", "20"], ("fewer than one window",)),
}


# Beyond the list: run in-process through the same `main`, to spare a torch import each.
IN_PROCESS = [
    "bom-only-file", "unknown-encoding", "huge-seed", "empty-stop", "missing-prime-file", "absurd-lr",
    "resume-finished-run", "resume-new-shape", "resume-other-text", "resume-corrupt-state",
    "missing-checkpoint-eval", "missing-checkpoint-info", "not-a-checkpoint-dir", "eval-corpus-moved",
    "eval-text-too-short", "out-is-a-file", "probe-empty-text", "probe-top-k-zero", "neurons-bad-regex",
    "neurons-pattern-never-changes", "neurons-show-not-a-unit", "novelty-other-corpus", "novelty-text-shorter-than-n",
]


@pytest.fixture
def case_dir(tmp_path) -> Path:
    d = tmp_path / "case"
    d.mkdir()
    return d


def check(name, case_dir, trained_run, run):
    case = CASES[name](case_dir, trained_run)
    watched = [*case.watch, trained_run.run_dir]
    before = [tree_digest(d) for d in watched]
    proc = run(*case.args)
    assert_usage_error(proc, *case.needles)
    assert proc.stdout == ""
    for d, digest in zip(watched, before):
        after = tree_digest(d)
        assert {k: after.get(k) for k in digest} == digest, "a saved file was changed or removed"


@pytest.mark.parametrize("name", [n for n in CASES if n not in IN_PROCESS])
def test_bad_input_is_one_clear_line(name, case_dir, trained_run):
    """The cases the issue lists, each as a user meets it: a `charlm` subprocess."""
    check(name, case_dir, trained_run, run_cli)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_more_bad_input_is_one_clear_line(name, case_dir, trained_run, capsys):
    """Further cases through the same entry point, in-process (a subprocess costs a torch import)."""
    def run_main(*args):
        rc = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out, err)

    check(name, case_dir, trained_run, run_main)


def test_a_refused_corpus_leaves_no_run_directory(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text(TINY_TEXT[:300], encoding="utf-8")
    rc = main(["train", str(short), "--preset", "tiny"])
    assert_usage_error(subprocess.CompletedProcess([], rc, *capsys.readouterr()), "fewer than one batch")
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
