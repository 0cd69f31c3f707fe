"""Exercises of notebook 14."""

from __future__ import annotations

__all__ = ["EXERCISES"]

EXERCISES = []
