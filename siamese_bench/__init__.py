"""siamese-bench."""
