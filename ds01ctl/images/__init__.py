"""Image builds: the pure Dockerfile generator and what feeds it."""
