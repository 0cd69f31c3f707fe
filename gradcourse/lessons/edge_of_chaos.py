"""The edge of chaos (notebook 15)."""

from __future__ import annotations

__all__ = []
