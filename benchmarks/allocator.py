"""Forward-pass throughput of an encoder on one torch thread, in a fresh process, so that
the allocator setting the process started with is the one measured.

    python benchmarks/allocator.py [--encoder cnn-small] [--size 105] [--pairs 128] [--batches 12]
    SIAMESE_BENCH_KEEP_FREED_MEMORY=0 python benchmarks/allocator.py ...   # glibc's defaults

Run the two settings in turn, several times each (or under a timer of whole processes such as
/usr/bin/time), and compare medians; it prints images/s and the process's user and system CPU
seconds of the timed part.
"""

from __future__ import annotations

import argparse
import resource
import time

from siamese_bench.infra.allocator import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="cnn-small", help="registered encoder name (default cnn-small)")
    parser.add_argument("--size", type=int, default=105, help="image side in pixels (default 105)")
    parser.add_argument("--pairs", type=int, default=128, help="pairs per batch: 2x images (default 128)")
    parser.add_argument("--batches", type=int, default=12, help="timed batches (default 12)")
    args = parser.parse_args()
    applied = keep_freed_memory()

    import torch

    from siamese_bench.models.encoders import ENCODERS

    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoder = ENCODERS.get(args.encoder)((1, args.size, args.size)).eval()
    x = torch.rand(2 * args.pairs, 1, args.size, args.size)
    with torch.no_grad():
        encoder(x)  # warm-up
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(args.batches):
            encoder(x)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"{args.encoder} {args.size}px, {2 * args.pairs} images a batch, keep freed memory: {applied}: "
        f"{2 * args.pairs * args.batches / seconds:.0f} images/s, user {after.ru_utime - before.ru_utime:.2f} s, "
        f"system {after.ru_stime - before.ru_stime:.2f} s"
    )


if __name__ == "__main__":
    main()
