"""polyir: train and evaluate multilingual dense retrievers."""

from __future__ import annotations

__version__ = "0.1.0"
