"""`make gpu-bundle`'s folder runs the GPU check on a machine that has PyTorch and Lightning but
not our venv: built for real (pip fetches the wheels), then run by a Python that sees only what
such a machine typically has (no MLflow, Optuna, pydantic, scikit-learn, mlxtend, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# top-level names of what a borrowed GPU machine has: PyTorch, Lightning and their dependencies,
# numpy, pandas, scipy, matplotlib, pip
TYPICAL = (
    "torch", "torchgen", "functorch", "pytorch_lightning", "lightning_fabric", "lightning_utilities",
    "torchmetrics", "nvidia", "triton", "numpy", "pandas", "scipy", "matplotlib", "mpl_toolkits",
    "pylab", "cycler", "kiwisolver", "fonttools", "contourpy", "pyparsing", "dateutil",
    "python_dateutil", "six", "pil", "pillow", "packaging", "yaml", "_yaml", "pyyaml", "tqdm", "fsspec",
    "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "pytz", "tzdata", "pip",
)  # fmt: skip
MISSING = ("mlflow", "optuna", "pydantic", "sklearn", "mlxtend", "seaborn")


def _typical(entry: str) -> bool:
    """A site-packages entry (module, package, its .libs or .dist-info) of a TYPICAL project."""
    base = entry.split("-")[0].split(".")[0].lower()
    return base in TYPICAL or base.startswith("nvidia")


def typical_python(tmp: Path) -> Path:
    """A python3 that sees only the TYPICAL packages of our venv (links in a folder on its path,
    site-packages itself off)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    shadow = tmp / "site"
    shadow.mkdir()
    for entry in site.iterdir():
        if _typical(entry.name):
            (shadow / entry.name).symlink_to(entry)
    wrapper = tmp / "python3"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{shadow}" exec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.slow  # pip fetches the wheels (cached after the first time), then a short training (~40 s)
def test_the_bundle_runs_the_checks_cpu_path_without_mlflow_optuna_or_pydantic(tmp_path):
    bundle = tmp_path / "gpu-bundle"
    built = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_bundle.py"), str(bundle)], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    python = typical_python(tmp_path)
    for name in MISSING:  # the environment is what it claims to be
        assert subprocess.run([str(python), "-c", f"import {name}"], capture_output=True).returncode != 0, name
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(GPU_CHECK_PYTHON=str(python), CUDA_VISIBLE_DEVICES="")
    run = subprocess.run(
        ["bash", str(bundle / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pydantic installed from" in run.stdout
    assert "2 of 2 seeds trained" in run.stdout
    assert "no CUDA GPU; nothing more to check" in run.stdout
