#!/usr/bin/env bash
# The GPU data path in one command: on a machine with a CUDA GPU, C1 on full MNIST (seed 0, 20 epochs)
# with --precision bf16-mixed --matmul-precision high, then with the default 32-true for comparison,
# each printing training images/s, wall time and test accuracy; then benchmarks/throughput.py on the
# device (siamese-bench vs a bare loop, and data on the device vs on the host); then seed stacking
# (benchmarks/stack_speed.py: stacks of 8, 32, 128 against one seed at a time). Without a CUDA GPU it
# says so, trains 2 stacked seeds on the CPU for a few steps as a smoke test, and exits 0.
#
#   benchmarks/gpu_check.sh                       (from anywhere; runs in the repository)
#   VENV=/path/to/venv GPU_CHECK_EPOCHS=5 benchmarks/gpu_check.sh
#   make gpu-bundle; copy build/gpu-bundle to the GPU machine; there: bash gpu-bundle/benchmarks/gpu_check.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# Which Python: GPU_CHECK_PYTHON, else the Makefile's venv, else the machine's python3 (a borrowed
# GPU machine has PyTorch and Lightning but not our venv: `make gpu-bundle` builds what it needs)
if [[ -n "${GPU_CHECK_PYTHON:-}" ]]; then
    py="$GPU_CHECK_PYTHON"
elif [[ -x "${VENV:-.venv}/bin/python" ]]; then
    py="${VENV:-.venv}/bin/python"
else
    py="$(command -v python3 || true)"
fi
if [[ -z "$py" ]]; then
    echo "gpu_check: no python3 and no virtual environment at ${VENV:-.venv}; run 'make venv' first" >&2
    exit 1
fi
# full MNIST: the bundle's copy, else the Makefile's offline copy, unless the caller set one
mnist="$(dirname "$repo")/shared/datasets/mnist"
[[ -d "$repo/data/mnist" ]] && mnist="$repo/data/mnist"
export SIAMESE_BENCH_MNIST_DIR="${SIAMESE_BENCH_MNIST_DIR:-$mnist}"
# untracked training needs pydantic beyond PyTorch and Lightning: from the bundle's wheels when missing
if ! "$py" -c "import pydantic, annotated_types, typing_inspection" 2>/dev/null; then
    if [[ ! -d "$repo/wheels" ]]; then
        echo "gpu_check: $py has no pydantic and $repo/wheels does not exist ('make gpu-bundle' builds a folder with them; or 'make venv')" >&2
        exit 1
    fi
    target="$(mktemp -d)"
    trap 'rm -rf "$target"' EXIT
    "$py" -m pip install -q --no-index --no-deps --find-links "$repo/wheels" --target "$target" \
        pydantic pydantic-core annotated-types typing-inspection typing-extensions
    export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
    echo "gpu_check: pydantic installed from $repo/wheels into $target (removed at exit)"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # the project from this folder, installed or not
if [[ "$("$py" -c 'import torch; print(torch.cuda.is_available())')" != "True" ]]; then
    echo "gpu_check: no CUDA GPU on this machine; instead, a CPU smoke test: 2 seeds of C1, stacked, untracked"
    "$py" -m siamese_bench train --dataset mnist --epochs 1 --max-steps 10 --seeds 0-1 --stack-seeds 2 \
        --no-track --no-progress | tail -n 1
    echo "gpu_check: no CUDA GPU; nothing more to check"
    exit 0
fi

"$py" - "${GPU_CHECK_EPOCHS:-20}" <<'PYTHON'
"""C1 on full MNIST, one seed, untracked: training images/s, wall time and test accuracy per precision."""
import sys
import time
import warnings

import pytorch_lightning as pl
import torch

from siamese_bench.cli import quiet_libraries
from siamese_bench.core.config import TrainConfig
from siamese_bench.data import load_dataset
from siamese_bench.training.run import run_training
from siamese_bench.training.samplers import PASS_THROUGH


class FitClock(pl.Callback):
    """Seconds of fitting (training and the per-epoch validation) and training images seen."""

    def __init__(self) -> None:
        self.images, self.seconds, self.start = 0, 0.0, 0.0

    def on_fit_start(self, trainer, module) -> None:
        torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.images += sum(len(v) for k, v in batch.items() if k not in PASS_THROUGH)

    def on_fit_end(self, trainer, module) -> None:
        torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start


quiet_libraries(verbose=False)  # as `siamese-bench train`: Lightning's chatter off, our INFO lines on
warnings.filterwarnings("ignore")
epochs = int(sys.argv[1])
data = load_dataset("mnist")
if data.variant != "mnist-full":
    sys.exit(f"gpu_check: full MNIST is not available (got {data.variant}); set SIAMESE_BENCH_MNIST_DIR")
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}; C1 on {data.variant}, seed 0, "
      f"{epochs} epochs (C1: test accuracy 0.9742)", flush=True)
for precision, matmul in (("bf16-mixed", "high"), ("32-true", "highest")):
    cfg = TrainConfig(dataset="mnist", epochs=epochs, seed=0, precision=precision, matmul_precision=matmul)
    clock = FitClock()
    start = time.perf_counter()
    result = run_training(cfg, data=data, callbacks=[clock], progress=False)
    wall = time.perf_counter() - start
    m = result.metrics
    print(f"C1 {precision:<10} matmul {matmul:<7}: {clock.images / clock.seconds:>9,.0f} images/s training, "
          f"fit {clock.seconds:.1f} s, wall {wall:.1f} s; test acc@0.5 {m['test/acc']:.4f}, "
          f"acc@val-thr {m['test/acc_tuned']:.4f}, ROC AUC {m['test/auc']:.4f}; data on the {result.data_location}",
          flush=True)
PYTHON

echo
echo "gpu_check: throughput, 32-true"
"$py" benchmarks/throughput.py --device cuda
echo
echo "gpu_check: throughput, bf16-mixed with TF32 matmuls"
"$py" benchmarks/throughput.py --device cuda --precision bf16-mixed --matmul-precision high
echo
echo "gpu_check: seed stacking, stacks of 8, 32 and 128 against one seed at a time (8 seeds), 32-true and bf16-mixed"
"$py" benchmarks/stack_speed.py --device cuda --cells digits,mnist-5k --seeds 8,32,128 --repeats 1
"$py" benchmarks/stack_speed.py --device cuda --cells digits,mnist-5k --seeds 8,32,128 --repeats 1 --precision bf16-mixed
