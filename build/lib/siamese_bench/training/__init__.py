"""Training: the objective (pairs or mined triplets), the LightningModule, samplers, optimizers
and schedules, and one tracked run (`training.run.run_training`)."""
