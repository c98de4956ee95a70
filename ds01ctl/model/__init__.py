"""The core's shared vocabulary: what was observed, what is wanted, and the keys between them.

Everything here is plain frozen data with no I/O: `live/` fills `Observed`, `resolve/` turns
manifests into specs, `plan/` compares the two. Nothing here imports from the layers above
(manifests, resolve, plan, live, apply, drivers); see docs/architecture.md.
"""
