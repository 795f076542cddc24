"""Keep freed memory in the process instead of handing it back to the kernel after each batch.

glibc serves an allocation above its mmap threshold (at most 32 MB by default) with a fresh
mmap and unmaps it on free, so every convolution activation of that size is page-faulted
anew on every batch. On 2 CPU cores this spent as much time in the kernel as in the
arithmetic: cnn-small's forward pass at 105 x 105 ran at 212 images/s with 21 s of system
time against 17 s of user time, and at 486 images/s once the thresholds were raised
(`mallopt`); conv4 at 28 x 28, 1,024 pairs a batch, went from 1,548 to 3,422 images/s.
The cost is memory that stays with the process until it exits (its peak).
Set SIAMESE_BENCH_KEEP_FREED_MEMORY=0 to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
THRESHOLD = 2**31 - 1  # mallopt takes an int: 2 GB, above any activation these models allocate


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process. True if applied; a no-op
    (False) off glibc or when SIAMESE_BENCH_KEEP_FREED_MEMORY=0."""
    if os.environ.get("SIAMESE_BENCH_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:  # the process's own symbols, which include the C library's: no library search at start-up
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
