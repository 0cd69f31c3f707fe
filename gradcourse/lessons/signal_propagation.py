"""Signal propagation (notebook 14)."""

from __future__ import annotations

__all__ = []
