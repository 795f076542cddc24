#!/usr/bin/env bash
# The GPU data path in one command: on a machine with a CUDA GPU, C1 on full MNIST (seed 0, 20 epochs)
# with --precision bf16-mixed --matmul-precision high, then with the default 32-true for comparison,
# each printing training images/s, wall time and test accuracy; then benchmarks/throughput.py on the
# device (siamese-bench vs a bare loop, and data on the device vs on the host); then seed stacking
# (benchmarks/stack_speed.py: stacks of 8, 32, 128 against one seed at a time). Without a CUDA GPU it
# says so in one line and exits 0.
#
#   benchmarks/gpu_check.sh                       (from anywhere; runs in the repository)
#   VENV=/path/to/venv GPU_CHECK_EPOCHS=5 benchmarks/gpu_check.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="${VENV:-.venv}/bin/python"  # the Makefile's $(VENV)/bin/python
# the Makefile's offline copy of full MNIST, unless the caller set one
export SIAMESE_BENCH_MNIST_DIR="${SIAMESE_BENCH_MNIST_DIR:-$(dirname "$repo")/shared/datasets/mnist}"
if [[ ! -x "$py" ]]; then
    echo "gpu_check: no virtual environment at $py; run 'make venv' first" >&2
    exit 1
fi
if [[ "$("$py" -c 'import torch; print(torch.cuda.is_available())')" != "True" ]]; then
    echo "gpu_check: no CUDA GPU on this machine; nothing to check"
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
