"""Resolve: manifests + observations → the concrete desired state. Pure functions, no I/O."""
