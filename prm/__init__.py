"""prmkit: train, evaluate and search with process reward models."""

__version__ = "0.1.0"
