"""Importers: another tool's configuration in, ds01ctl manifests out.

Each importer reads the other tool's files as they are, writes the equivalent manifest, and says
on stderr, one line each, what it could not carry over; what it cannot express it refuses.
"""
