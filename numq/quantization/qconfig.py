"""Placeholder: filled in by its owner (issue 4)."""
__all__ = []
