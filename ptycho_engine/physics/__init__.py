"""Differentiable physics of far-field ptychography (TensorFlow).

``ptycho_engine.physics.translate`` is the one shift primitive (physics.md section 1); it is
defined in ``shift`` together with the resampling it is a case of. Submodules: ``shift``,
``patches`` (overlap constraint), ``probe`` (normalisation, numpy only), ``farfield``
(propagation), ``losses`` (Poisson NLL, MAE).

Importing this package imports no TensorFlow, so the numpy-only ``probe`` stays cheap to
import; ``translate`` is resolved on first use (module ``__getattr__``), which imports
TensorFlow then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptycho_engine.physics.shift import translate as translate

__all__ = ["translate"]


def __getattr__(name: str) -> Any:
    if name == "translate":
        from ptycho_engine.physics.shift import translate

        return translate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
