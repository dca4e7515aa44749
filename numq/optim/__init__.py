"""numq.optim: optimizers with torch.optim call shapes (placeholder, filled in by its owner)."""
__all__ = []
