"""Guards against known defects of the Qt binding that would bring the app down."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    bare = Signal()
    payload = Signal(str, int)
    boxed = Signal(object)


def _bool_references() -> int:
    return sys.getrefcount(True) + sys.getrefcount(False)


def test_signal_emission_leaves_bool_reference_counts_alone(qapp) -> None:
    # PySide6 6.12.0 released a reference to True or False on every emission: after as many
    # emissions as there are references (a few hundred to a few thousand) the interpreter
    # aborts with "bool_dealloc". The app emits several signals per epoch, so a long session
    # would crash; pyproject.toml excludes that release, and this test catches a relapse.
    emitter = _Emitter()
    received: list[object] = []
    emitter.payload.connect(lambda text, number: received.append(number))
    before = _bool_references()
    for k in range(50):
        emitter.bare.emit()
        emitter.payload.emit("x", k)
        emitter.boxed.emit(None)
    after = _bool_references()
    assert len(received) == 50
    assert after - before == 0, (
        f"150 emissions changed the references to True/False by {after - before}"
    )
