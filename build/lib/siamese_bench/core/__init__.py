"""Core: what every layer may import. Torch-free: errors, registries, YAML and schema loading,
the training-configuration schema, secret masking."""
