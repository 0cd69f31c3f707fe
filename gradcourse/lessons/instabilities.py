"""Instabilities at scale, reproduced small (notebook 17)."""

from __future__ import annotations

__all__ = []
