"""Write the folder `benchmarks/gpu_check.sh` needs on a borrowed GPU machine (`make gpu-bundle`).

Such a machine typically has PyTorch, Lightning, numpy, pandas, scipy and matplotlib, but not
our other dependencies, and no network. Untracked training needs only pydantic (and its three
small helpers) beyond those, so the bundle is the project's source, the check's scripts,
those wheels (pure Python, plus pydantic-core built for CPython 3.10-3.13 on x86_64 Linux) and,
when the offline copy is found, full MNIST's four IDX files. gpu_check.sh installs the wheels
with `pip --no-index` into a throwaway folder when the machine lacks them.

    python benchmarks/gpu_bundle.py [OUT]        (default build/gpu-bundle; needs PyPI to fetch the wheels)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WHEELS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
SCRIPTS = ("gpu_check.sh", "throughput.py", "stack_speed.py")
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
LIMIT_MIB = 30


def download_wheels(dest: Path) -> None:
    """The installed versions' wheels, for every CPython the borrowed machines may have."""
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    for python in PYTHONS:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", python, "--platform", "manylinux2014_x86_64", "--implementation", "cp"]
        done = subprocess.run([*cmd, "--dest", str(dest), *pins], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SystemExit(f"gpu-bundle: pip could not fetch the wheels for Python {python}: {last}")


def build(out: Path) -> int:
    """The bundle in `out` (replaced); its size in bytes."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(REPO / "siamese_bench", out / "siamese_bench", ignore=shutil.ignore_patterns("__pycache__"))
    (out / "benchmarks").mkdir()
    for name in SCRIPTS:
        shutil.copy2(REPO / "benchmarks" / name, out / "benchmarks" / name)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, out / name)
    download_wheels(out / "wheels")
    mnist = Path(os.environ.get("SIAMESE_BENCH_MNIST_DIR", REPO.parent / "shared" / "datasets" / "mnist"))
    found = [mnist / f for f in MNIST_FILES if (mnist / f).is_file()]
    if len(found) == len(MNIST_FILES):
        (out / "data" / "mnist").mkdir(parents=True)
        for f in found:
            shutil.copy2(f, out / "data" / "mnist" / f.name)
    else:
        print(f"gpu-bundle: no full MNIST at {mnist} (SIAMESE_BENCH_MNIST_DIR): the check downloads it or falls back")
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default=str(REPO / "build" / "gpu-bundle"))
    out = Path(p.parse_args().out).resolve()
    size = build(out)
    if size > LIMIT_MIB * 2**20:
        raise SystemExit(f"gpu-bundle: {out} is {size / 2**20:.1f} MiB, over the {LIMIT_MIB} MiB limit")
    print(f"gpu-bundle: {out} ({size / 2**20:.1f} MiB); on the GPU machine: bash {out.name}/benchmarks/gpu_check.sh")


if __name__ == "__main__":
    main()
