"""Lifecycle: idle stop, max runtime and GPU holds as a pure policy over observed activity."""
