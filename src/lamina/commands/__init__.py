"""Subcommands of the ``lamina`` CLI, one module each, discovered by :mod:`lamina.cli`.

A module here defines ``register(subparsers)`` which adds its parser and sets
``handler=<callable(args) -> int>`` as a default.
"""
