"""decide: the seeds a claims file needs, added in rounds until each claim is decided."""
