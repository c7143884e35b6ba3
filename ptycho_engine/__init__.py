"""ptycho_engine: physics-informed neural-network reconstruction for far-field ptychography.

Importing this package is cheap: it imports no TensorFlow and builds nothing. TensorFlow is
imported inside the modules that need it (``physics``, ``models``, ``training``, ``inference``)
and every Keras object is made by a factory when it is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
