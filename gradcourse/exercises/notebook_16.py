"""Exercises of notebook 16."""

from __future__ import annotations

__all__ = ["EXERCISES"]

EXERCISES = []
