"""lamina: one declarative tree of HEP container images, built, tested and published make-like."""

__version__ = "0.1.0"
