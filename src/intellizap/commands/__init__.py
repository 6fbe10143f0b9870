"""Operator command groups of the ``intellizap`` CLI, one module per group.

``intellizap.cli`` is the composition root: it defines the process commands (serve, api, worker,
migrate) and registers the groups defined here. Shared plumbing lives in :mod:`.common`.
"""
