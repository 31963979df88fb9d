"""step.c on aarch64, cross-compiled here and run under qemu-aarch64: the NEON paths' int32
products equal a naive sum exactly, whole steps equal the plain-C build's, each build names its
path, and its disassembly holds that path's instructions (sdot; smlal2, sadalp). Skipped
where the tools are missing (Debian: gcc-aarch64-linux-gnu, qemu-user; .ci/run installs them).
No speed is measured: qemu emulates."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from charlm.generate.native.build import COMMON_FLAGS, SOURCE, platform_flag_sets

CC, OBJDUMP, QEMU = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump", "qemu-aarch64"
HARNESS = Path(__file__).with_name("native") / "arm_harness.c"
MISSING = [tool for tool in (CC, OBJDUMP, QEMU) if shutil.which(tool) is None]

# name step.c gives: (-march, qemu's CPU to run on, instructions the step must have, must not).
# qemu's `max` has every feature, dotprod among them; cortex-a53 is ARMv8.0 without it, so the
# builds that must not need dotprod run there. +nosimd takes NEON away: the plain-C reference.
BUILDS = {
    "neon-dotprod": ("armv8.2-a+dotprod", "max", {"sdot"}, {"smlal2", "sadalp"}),
    "neon": ("armv8-a", "cortex-a53", {"smlal2", "sadalp"}, {"sdot"}),
    "portable C": ("armv8-a+nosimd", "cortex-a53", set(), {"sdot", "smlal2", "sadalp"}),
}
NEON = [name for name in BUILDS if name != "portable C"]

pytestmark = pytest.mark.xdist_group("aarch64")      # one worker builds them once


def _run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    # cwd: where qemu drops a core file, should a build crash
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def _instructions(disassembly: str) -> set[str]:
    return set(re.findall(r"^\s*[0-9a-f]+:\s+([a-z0-9.]+)", disassembly, re.MULTILINE))


def _parse(out: str) -> dict[str, list[str]]:
    """The harness's `key rest` lines, as {key: [rest, ...]} in order."""
    lines: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        lines.setdefault(key, []).append(rest)
    return lines


def _build_and_run(name: str, tmp: Path) -> dict:
    """step.c as build.py would make it for that -march (disassembled), and the harness linked
    statically with it and run under qemu."""
    march, cpu, _, _ = BUILDS[name]
    tag, flags = name.replace(" ", "-"), ("-O3", f"-march={march}", *COMMON_FLAGS)
    lib, exe = tmp / f"{tag}.so", tmp / tag
    built = _run(CC, *flags, str(SOURCE), "-o", str(lib), "-lm", cwd=tmp)
    assert built.returncode == 0, built.stderr
    harness_flags = [f for f in flags if f not in ("-shared", "-fPIC")]
    built = _run(CC, *harness_flags, "-static", f"-I{SOURCE.parent}", str(HARNESS), "-o", str(exe), "-lm", cwd=tmp)
    assert built.returncode == 0, built.stderr
    ran = _run(QEMU, "-cpu", cpu, str(exe), cwd=tmp)
    return {"exe": exe, "rc": ran.returncode, "out": _parse(ran.stdout), "stderr": ran.stderr,
            "instructions": _instructions(_run(OBJDUMP, "-d", "--no-show-raw-insn", str(lib), cwd=tmp).stdout)}


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, dict]:
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed (Debian: gcc-aarch64-linux-gnu, qemu-user)")
    tmp = tmp_path_factory.mktemp("aarch64")
    with ThreadPoolExecutor(len(BUILDS)) as pool:       # the compilers run side by side
        return dict(zip(BUILDS, pool.map(_build_and_run, BUILDS, [tmp] * len(BUILDS))))


@pytest.mark.parametrize("name", BUILDS)
def test_each_build_names_its_path(builds, name):
    out = builds[name]["out"]
    assert out["isa"] == [name], "a build fell back to another path"
    assert out["act_bytes"] == ["2" if name == "portable C" else "1"]


@pytest.mark.parametrize("name", BUILDS)
def test_the_int32_products_equal_a_naive_sum_exactly(builds, name):
    """dot1, dot4, dot4_block and the dispatched product, for rows not whole blocks of 4,
    vectors not whole blocks, kpad 64 to 576, and the largest sums int16 lanes meet."""
    build = builds[name]
    assert build["rc"] == 0, build["stderr"] + "\n".join(build["out"].get("products", []))
    assert len(build["out"]["products"]) == 10 and build["out"]["wrong"] == ["0"]


@pytest.mark.parametrize("name", NEON)
def test_whole_steps_equal_the_plain_c_builds(builds, name):
    """LSTM, GRU and RNN nets read a prompt and step on: logits and every layer's h."""
    got, want = builds[name]["out"], builds["portable C"]["out"]
    assert len(got["logits"]) == len(want["logits"]) == 3 and len(got["h"]) == len(want["h"]) == 5
    for a, b in zip(got["logits"] + got["h"], want["logits"] + want["h"]):
        (net, *xs), (net_b, *ys) = a.split(), b.split()
        assert net == net_b and len(xs) == len(ys)
        # The integers are exact on every path; the fp32 cells and head may be vectorized
        # differently per target, which may move a last bit, never more.
        assert max(abs(float(x) - float(y)) for x, y in zip(xs, ys)) <= 1e-6, net


@pytest.mark.parametrize("name", BUILDS)
def test_the_step_is_built_with_its_paths_instructions(builds, name):
    has, has_not = BUILDS[name][2], BUILDS[name][3]
    found = builds[name]["instructions"]
    assert has <= found and not has_not & found, (sorted(has - found), sorted(has_not & found))


def test_the_dotprod_build_stops_on_a_cpu_without_dotprod(builds):
    """It runs sdot itself: on ARMv8.0 (cortex-a53) the first product is an illegal instruction."""
    exe = builds["neon-dotprod"]["exe"]
    ran = _run(QEMU, "-cpu", "cortex-a53", str(exe), cwd=exe.parent)
    assert ran.returncode != 0 and "Illegal instruction" in ran.stderr, ran.stderr


def test_arm_and_apple_flags_end_in_a_plain_build_and_x86_linux_keeps_its_own():
    assert platform_flag_sets("Linux", "x86_64") == (
        ("-fopenmp", "-O3", "-march=native"), ("-O3", "-march=native"), ("-fopenmp", "-O3", "-mcpu=native"),
        ("-O3", "-mcpu=native"), ("-fopenmp", "-O3"), ("-O3",))
    assert platform_flag_sets("Linux", "aarch64") == (
        ("-fopenmp", "-O3", "-mcpu=native"), ("-O3", "-mcpu=native"), ("-fopenmp", "-O3"), ("-O3",))
    # Apple: no -fopenmp (one thread), -mcpu=apple-m1 where clang has no -mcpu=native
    assert platform_flag_sets("Darwin", "arm64") == (("-O3", "-mcpu=native"), ("-O3", "-mcpu=apple-m1"), ("-O3",))


def test_arm_cpus_name_their_features(monkeypatch):
    """aarch64's /proc/cpuinfo says "Features", not "flags": they key the build cache."""
    from charlm.machine import cpu
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: {"processor": "0", "Features": "fp asimd asimddp"})
    assert {"asimd", "asimddp"} <= cpu.cpu_flags()
