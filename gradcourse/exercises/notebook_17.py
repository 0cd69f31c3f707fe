"""Exercises of notebook 17."""

from __future__ import annotations

__all__ = ["EXERCISES"]

EXERCISES = []
