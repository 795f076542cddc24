"""Infrastructure beside the layers: MLflow tracking, the project-owned services, retries
through outages, the allocator setting. Uses only core."""
