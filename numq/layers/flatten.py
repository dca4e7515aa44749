"""Placeholder: filled in by its owner (issue 3)."""
__all__ = []
