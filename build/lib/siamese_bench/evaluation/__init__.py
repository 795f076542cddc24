"""Evaluation: verification metrics (fixed rule, AUC, validation threshold), retrieval
metrics, 20-way one-shot scoring, and the registry of extra evaluations after training."""
