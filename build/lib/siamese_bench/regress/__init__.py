"""Accuracy regression checks of the documented claims (CLAIMS.md ids), with thresholds that
are prediction bounds calibrated from measured distributions over seeds.

The shipped checks (siamese_bench/specs/regress.yaml, `siamese-bench regress regress`) list checks: a
cell, a metric, and `at_least`, `at_most` or
`within` (two-sided). `calibrate` trains each cell on n calibration seeds, disjoint from the
check's k seeds, and sets the threshold to a one-sided 99 % prediction bound for the mean of
k new seeds, mean - t(0.99, n-1) * sd * sqrt(1/k + 1/n) (at_least; + for at_most; both sides
at t(0.995, n-1) for within): a healthy pipeline fails a given check 1 % of the time, so a run
of m checks fails at least one 1 - 0.99^m of the time (7.7 % for the 8 shipped checks; printed
with every run). It also
records each check's minimum detectable drop: the shift of the true mean that the check
catches with 90 % power (a noncentral t computation), to compare with the check's `detect`
target, and refuses a threshold that a trivial model (`baseline`: chance, pixels) would pass.
"""
