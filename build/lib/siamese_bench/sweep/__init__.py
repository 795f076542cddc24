"""Optuna studies over design factors: spec -> cells -> trials in worker processes."""
