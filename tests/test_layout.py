"""The code's layout holds: the stage packages import only downward (import-linter's
contracts in pyproject.toml, imports inside functions included), no module takes part in an
import cycle, few modules sit loose in charlm/, no class grows past 200 lines, and the rules
that were once written several times are written once."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "charlm"
MAX_TOP_LEVEL_MODULES = 8
MAX_CLASS_LINES = 200


def lint_imports() -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (make test installs it)")
    return subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_layers_hold():
    proc = lint_imports()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout and "0 broken" in proc.stdout


def test_no_import_cycles_lazy_imports_included():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("charlm", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert not _cycles(edges), f"import cycles: {_cycles(edges)}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_a_cycle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_few_modules_sit_loose_in_the_package():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= MAX_TOP_LEVEL_MODULES, loose


def test_no_class_is_over_200_lines():
    big = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                big.append(f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not big, big


@pytest.mark.parametrize("rule, pattern, owner", [
    ("nats -> bits", r"math\.log\(2\)", "charlm/units.py"),
    ("a checkpoint's file names", r"\"(config|tokenizer)\.json\"|\"model\.safetensors\"", "charlm/runs/directory.py"),
    ("gates per cell", r"\"lstm\": 4", "charlm/config.py"),
    ("eval mode, restored after", r"\.train\(was_training\)", "charlm/model/network.py"),
    ("/proc/cpuinfo", r"/proc/cpuinfo", "charlm/machine/cpu.py"),
    ("/proc/stat", r"\"/proc/stat\"", "charlm/machine/threads.py"),
    ("the Cancelled exception", r"class Cancelled\b", "charlm/cancel.py"),
    ("the home directory", r"Path\.home\(\)", "charlm/paths.py"),
    ("working without the cache", r"cannot write the cache", "charlm/paths.py"),
])
def test_each_rule_is_written_once(rule, pattern, owner):
    where = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if re.search(pattern, p.read_text()))
    assert where == [owner], f"{rule}: written in {where}, owned by {owner}"
