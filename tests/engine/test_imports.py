"""Importing the engine is cheap: no TensorFlow for the package, no Keras objects for any module."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "ptycho_engine.config",
    "ptycho_engine.data",
    "ptycho_engine.errors",
    "ptycho_engine.grouping",
    "ptycho_engine.simulate",
    "ptycho_engine.metrics",
    "ptycho_engine.stitching",
    "ptycho_engine.io",
    "ptycho_engine.io.pinn_npz",
    "ptycho_engine.io.registry",
    "ptycho_engine.io.cxi",
    "ptycho_engine.io.product",
    "ptycho_engine.io.profile",
    "ptycho_engine.io.probe",
    "ptycho_engine.io.prepare",
    "ptycho_engine.io.images",
    "ptycho_engine.runs",
    "ptycho_engine.study",
    "ptycho_engine.study_cli",
    "ptycho_engine.physics",
    "ptycho_engine.physics.shift",
    "ptycho_engine.physics.patches",
    "ptycho_engine.physics.probe",
    "ptycho_engine.physics.farfield",
    "ptycho_engine.physics.losses",
    "ptycho_engine.models",
    "ptycho_engine.training",
    "ptycho_engine.inference",
    "ptycho_engine.cli",
]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_package_import_loads_no_tensorflow() -> None:
    out = _run(
        "import sys, ptycho_engine, ptycho_engine.config, ptycho_engine.data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    assert out.strip() == "[]"


def test_physics_package_defers_tensorflow_until_translate_is_used() -> None:
    out = _run(
        "import sys, ptycho_engine.physics, ptycho_engine.physics.probe\n"
        "def tf_loaded(): return any(m.split('.')[0] == 'tensorflow' for m in sys.modules)\n"
        "print(tf_loaded())\n"
        "from ptycho_engine.physics import translate\n"
        "print(translate.__module__, tf_loaded())\n"
    )
    assert out.split("\n")[:2] == ["False", "ptycho_engine.physics.shift True"]


def test_engine_modules_build_no_keras_objects() -> None:
    code = (
        "import gc, importlib\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "import keras, tensorflow as tf\n"
        "kinds = (keras.Model, keras.layers.Layer, keras.Variable, tf.Variable)\n"
        "found = [type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds)]\n"
        "print(len(found), found[:5])\n"
        # the check must be able to fail: a layer made now is seen
        "layer = keras.layers.Dense(2)\n"
        "seen = [o for o in gc.get_objects() if isinstance(o, kinds)]\n"
        "print(len(seen))\n"
    )
    lines = _run(code).strip().splitlines()
    assert lines[0] == "0 []"
    assert int(lines[1]) >= 1


def test_engine_never_imports_qt() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'ptycho_gui', 'shiboken6')))"
    )
    assert _run(code).strip() == "[]"
