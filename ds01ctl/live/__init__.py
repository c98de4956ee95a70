"""Observation of the live world: Docker and GPUs. Only this package reads them."""
