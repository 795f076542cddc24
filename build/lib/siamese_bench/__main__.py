"""`python -m siamese_bench ...` is `siamese-bench ...`."""

import sys

from siamese_bench.cli import main

sys.exit(main())
