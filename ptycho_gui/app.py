"""Entry point: ``python -m ptycho_gui.app [FILE] [options]`` (console script ``ptycho-gui``)."""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication

ORGANISATION = "ptycho-explorer"
APPLICATION = "Ptycho Explorer"
SCREENSHOT_DELAY_MS = 250
#: System libraries Qt 6's xcb platform plugin loads (names for ``ctypes.util.find_library``)
#: and the Debian packages that hold them; PySide6's wheels do not bring them.
XCB_LIBRARIES = (
    ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-image", "libxcb-image0"),
    ("xcb-keysyms", "libxcb-keysyms1"),
    ("xcb-randr", "libxcb-randr0"),
    ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-xkb", "libxcb-xkb1"),
    ("xkbcommon-x11", "libxkbcommon-x11-0"),
    ("xcb-cursor", "libxcb-cursor0"),
)
#: Set to 1 to start without looking for the xcb libraries (a system that has them where
#: ``find_library`` does not look).
SKIP_LIBRARY_CHECK = "PTYCHO_GUI_SKIP_LIBRARY_CHECK"


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True when Qt will start with its xcb (X11) platform plugin: on Linux, with
    ``QT_QPA_PLATFORM`` unset (outside a Wayland session) or set to ``xcb``."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if chosen:
        return chosen.split(":", 1)[0].split(";", 1)[0] == "xcb"
    wayland = environ.get("XDG_SESSION_TYPE", "") == "wayland" and environ.get("WAYLAND_DISPLAY")
    return not wayland


def missing_xcb_packages() -> list[str]:
    """The Debian packages of :data:`XCB_LIBRARIES` whose library is not found."""
    return [pkg for name, pkg in XCB_LIBRARIES if ctypes.util.find_library(name) is None]


def system_library_problem(
    environ: Mapping[str, str] | None = None, platform: str = sys.platform
) -> str:
    """One line naming the missing packages and the command that installs them when Qt's
    xcb platform would fail to load (Qt's own error does not name the library); ``""`` when
    nothing is missing, Qt uses another platform, or :data:`SKIP_LIBRARY_CHECK` is set."""
    env = os.environ if environ is None else environ
    if env.get(SKIP_LIBRARY_CHECK) == "1" or not uses_xcb(env, platform):
        return ""
    missing = missing_xcb_packages()
    if not missing:
        return ""
    return (
        f"ptycho-gui: Qt's X11 (xcb) platform needs system libraries that are missing: "
        f"{' '.join(missing)}; install Qt's xcb libraries with: sudo apt-get install "
        f"{' '.join(pkg for _name, pkg in XCB_LIBRARIES)} (or run without a display with "
        f"QT_QPA_PLATFORM=offscreen)"
    )


def preload_tensorflow() -> None:
    """Import TensorFlow in the main thread, before Qt starts.

    Measured here: when TensorFlow's first import happens in the worker thread of the full
    application, building a Keras model there crashes the process (segmentation fault in
    ``Graph.graph_def_versions``); imported first in the main thread, it works. The worker
    still sizes TensorFlow's thread pool in its first job, before any operation runs.
    """
    import tensorflow  # noqa: F401


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options, set once at start (PySide6 is already imported)."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


def collect_garbage_in_gui_thread() -> object:
    """Collect Python garbage on a timer in the GUI thread only, never in a worker thread.

    Measured here: with automatic collection, a worker thread tracing a TensorFlow graph ran
    the collector, which freed a Qt widget left in a reference cycle; its destructor then
    waited for the GIL in that thread and the process hung. pyqtgraph's
    :class:`~pyqtgraph.util.garbage_collector.GarbageCollector` disables automatic
    collection and collects every second from a ``QTimer`` of the thread that makes it (call
    this in the GUI thread, after the ``QApplication`` exists; keep the returned object).
    """
    from pyqtgraph.util.garbage_collector import GarbageCollector

    return GarbageCollector(interval=1.0)


def build_parser() -> argparse.ArgumentParser:
    """The command line of the app."""
    from ptycho_engine.pipeline import reconstructor_names
    from ptycho_gui.view_models.run_settings import RunSettings

    # every default is the run settings' own (one place: the widgets start from them too)
    parser = argparse.ArgumentParser(
        prog="ptycho-gui",
        description="Explore ptychographic reconstructions made by a physics-informed network "
        "or an iterative solver (rPIE, LSQML).",
    )
    parser.add_argument("file", nargs="?", help="diffraction file (default: the sample data)")
    parser.add_argument(
        "--N", type=int, default=RunSettings.N, help=f"patch size (default {RunSettings.N})"
    )
    parser.add_argument(
        "--gridsize",
        type=int,
        default=RunSettings.gridsize,
        help=f"gridsize 1-3 (default {RunSettings.gridsize})",
    )
    parser.add_argument("--probe", default="", help="probe file (default: the data's probe)")
    parser.add_argument(
        "--profile",
        default="",
        help="JSON mapping profile for a generic NPZ/HDF5 file (e.g. tests/io/profiles/tike.json)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=RunSettings.epochs,
        help=f"epochs (default {RunSettings.epochs})",
    )
    parser.add_argument(
        "--algorithm",
        default=RunSettings.algorithm,
        choices=reconstructor_names(),
        help="reconstructor: the network (pinn) or an iterative solver "
        f"(default {RunSettings.algorithm})",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=RunSettings.iterations,
        help=f"iterations of a solver (default {RunSettings.iterations})",
    )
    parser.add_argument(
        "--filters-scale",
        type=int,
        default=RunSettings.n_filters_scale,
        help=f"network width multiplier (default {RunSettings.n_filters_scale})",
    )
    parser.add_argument("--autostart", action="store_true", help="train as soon as data load")
    parser.add_argument(
        "--screenshot", default="", help="save the window as PNG when the run finishes"
    )
    parser.add_argument(
        "--quit-when-done", action="store_true", help="exit after the run (and the screenshot)"
    )
    parser.add_argument("--cache-dir", default="", help="folder of the generated sample data")
    parser.add_argument(
        "--session-dir",
        default="",
        help="folder that receives a run folder per finished run (default: a new folder "
        "under the cache folder's sessions/)",
    )
    parser.add_argument(
        "--study",
        default="",
        help="open this study folder (written by the app or `ptycho-engine study`) in the "
        "Study tab",
    )
    return parser


class LaunchController(QObject):
    """Carries out ``--probe``, ``--autostart``, ``--screenshot`` and ``--quit-when-done``."""

    def __init__(self, window: object, args: argparse.Namespace) -> None:
        super().__init__()
        from ptycho_gui.main_window import MainWindow

        assert isinstance(window, MainWindow)
        self.window = window
        self.args = args
        self.exit_code = 0
        self._data_seen = False
        self._done = False
        # with --study, the screenshot waits for the study folder to be on screen
        self._study_pending = bool(args.study)
        window.study.study_opened.connect(self._on_study_settled)
        window.study.study_open_failed.connect(self._on_study_settled)
        window.data_ready.connect(self._on_window_data_ready)
        window.run_completed.connect(self._on_window_run_completed)
        window.worker.error_occurred.connect(self._on_worker_error_occurred)

    def _on_window_data_ready(self, _summary: object) -> None:
        if self._data_seen:
            return
        self._data_seen = True
        if self.args.probe:
            # the probe is read in the engine worker: go on once it is applied (or refused)
            panel = self.window.settings_panel
            panel.probe_applied.connect(self._on_probe_settled)
            panel.probe_rejected.connect(self._on_probe_rejected)
            panel.set_probe_path(self.args.probe)
            return
        self._go()

    def _on_probe_rejected(self, message: str) -> None:
        print(f"ptycho-gui: --probe {self.args.probe}: {message}", file=sys.stderr)
        self.exit_code = 1
        self._on_probe_settled()

    def _on_probe_settled(self, _path: str = "") -> None:
        panel = self.window.settings_panel
        panel.probe_applied.disconnect(self._on_probe_settled)
        panel.probe_rejected.disconnect(self._on_probe_rejected)
        self.window.settings_model.flush()
        self._go()

    def _go(self) -> None:
        if self.args.autostart:
            self.window.start_run()
        else:
            QTimer.singleShot(SCREENSHOT_DELAY_MS, self._finish)

    def _on_window_run_completed(self, outcome: object) -> None:
        if self.args.autostart and not self._done:
            if getattr(outcome, "state", "") == "failed":
                self.exit_code = 1
            QTimer.singleShot(SCREENSHOT_DELAY_MS, self._finish)

    def _on_worker_error_occurred(self, _message: str) -> None:
        if not self._data_seen and not self._done:
            self.exit_code = 1
            QTimer.singleShot(SCREENSHOT_DELAY_MS, self._finish)

    def _on_study_settled(self, _result: object) -> None:
        if self._study_pending:
            self._study_pending = False
            if self._data_seen and not self.args.autostart:
                QTimer.singleShot(SCREENSHOT_DELAY_MS, self._finish)

    def _finish(self) -> None:
        if self._done or self._study_pending:
            return
        self._done = True
        if self.args.screenshot:
            target = Path(self.args.screenshot)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(target), "PNG"):
                print(f"could not write the screenshot {target}", file=sys.stderr)
                self.exit_code = 1
        if self.args.quit_when_done:
            self.window.close()
            QApplication.exit(self.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit status."""
    args = build_parser().parse_args(argv)
    problem = system_library_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    preload_tensorflow()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "ptycho-gui"])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    configure_pyqtgraph()
    collector = collect_garbage_in_gui_thread()

    from ptycho_gui.main_window import MainWindow
    from ptycho_gui.sample_data import RECIPE_PATH, default_cache_dir
    from ptycho_gui.view_models.run_settings import RunSettings

    try:
        run_settings = RunSettings(
            N=args.N,
            gridsize=args.gridsize,
            epochs=args.epochs,
            n_filters_scale=args.filters_scale,
            algorithm=args.algorithm,
            iterations=args.iterations,
        )
    except ValueError as exc:
        print(f"ptycho-gui: {exc}", file=sys.stderr)
        return 2
    settings = QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, "ptycho-gui"
    )
    session = Path(args.session_dir) if args.session_dir else new_session_dir()
    window = MainWindow(
        settings, run_settings, show_error_dialogs=not args.quit_when_done, session_dir=session
    )
    controller = LaunchController(window, args)
    window.show()
    if args.study:
        window.open_study(args.study)  # a bad folder is reported in the tab
    if args.file:
        window.open_file(args.file, args.profile)
    else:
        cache = args.cache_dir or str(default_cache_dir())
        window.open_sample(str(RECIPE_PATH), cache)
    status = app.exec()
    window.shutdown()
    del collector
    code = controller.exit_code if status == 0 else status
    if window.threads_left:
        # a job did not stop within the close timeout: leave now rather than make the user
        # wait (every file is written atomically, so none is left half-written)
        print(f"ptycho-gui: left {window.threads_left} running at exit", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def new_session_dir() -> Path:
    """A new folder for this session's runs: ``<cache>/sessions/<date>-<time>-<pid>``."""
    import time

    from ptycho_gui.sample_data import default_cache_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return default_cache_dir() / "sessions" / f"{stamp}-{os.getpid()}"


if __name__ == "__main__":
    sys.exit(main())
