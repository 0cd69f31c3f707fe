"""Deep residual networks without normalization (notebook 16)."""

from __future__ import annotations

__all__ = []
