"""GUI responsiveness, measured side by side with a real training run in the worker.

Prints, in one run (N=64, gridsize 2, the sample data):

1. the 95th percentile of the GUI event-loop delay (10 ms heartbeat QTimer) while training
   (target < 50 ms);
2. the time from changing N to the first snapshot of the new model on screen, from scratch
   and with a cached (already trained) model (target < 2 s cached);
3. the time to push one 1024x1024 complex snapshot to the three object views (target < 10 ms).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui.py``.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
from PySide6.QtWidgets import QApplication


def _wait(app: QApplication, condition, timeout_s: float = 600.0) -> None:
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("benchmark condition not met in time")
        app.processEvents()
        time.sleep(0.001)


def main() -> None:
    """Run the three measurements and print them."""
    from ptycho_gui.app import configure_pyqtgraph, preload_tensorflow

    preload_tensorflow()
    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    from ptycho_gui.main_window import MainWindow
    from ptycho_gui.sample_data import RECIPE_PATH
    from ptycho_gui.view_models.run_settings import RunSettings
    from ptycho_gui.widgets.image_views import ObjectViewsWidget

    folder = tempfile.mkdtemp(prefix="ptycho-gui-bench-")
    settings = QSettings(os.path.join(folder, "s.ini"), QSettings.Format.IniFormat)
    base = RunSettings(N=64, gridsize=2, n_filters_scale=2, epochs=3, preview_every=1)
    window = MainWindow(settings, base)
    window.settings_panel.rerun_check.setChecked(False)
    window.show()
    loaded: list[object] = []
    window.data_ready.connect(loaded.append)
    window.open_sample(str(RECIPE_PATH), folder)
    _wait(app, lambda: bool(loaded))

    # 1. heartbeat delays during a real training run
    delays: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        delays.append(max(0.0, (now - last[0]) / 1e6 - 10.0))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)
    done: list[object] = []
    window.run_completed.connect(done.append)
    heartbeat.start()
    window.start_run()
    _wait(app, lambda: len(done) >= 1)
    heartbeat.stop()
    d = np.asarray(delays)
    print(
        f"event-loop delay while training N=64 g=2: p50 {np.percentile(d, 50):.1f} ms, "
        f"p95 {np.percentile(d, 95):.1f} ms, max {d.max():.1f} ms (target p95 < 50 ms)"
    )

    # 2. N change -> first snapshot of the new model on screen
    def time_to_first_image(new: RunSettings) -> float:
        frames = window.redraws
        start = time.perf_counter()
        window.settings_model.reset(new)
        window.start_run()
        _wait(app, lambda: window.redraws > frames and window.current_run_id is not None)
        elapsed = time.perf_counter() - start
        n_done = len(done)
        window.worker.stop_run()
        _wait(app, lambda: len(done) > n_done)
        return elapsed

    scratch = time_to_first_image(base.replace(N=32, epochs=1))
    _wait(app, lambda: window.worker.running_settings is None)
    cached = time_to_first_image(base.replace(epochs=1))
    print(
        f"N change to first image: from scratch {scratch:.2f} s, cached {cached:.2f} s "
        "(target cached < 2 s)"
    )

    # 3. one 1024x1024 complex snapshot into the three object views
    views = ObjectViewsWidget()
    views.resize(1200, 400)
    views.show()
    rng = np.random.default_rng(0)
    amp = rng.random((1024, 1024), dtype=np.float32)
    phase = (rng.random((1024, 1024), dtype=np.float32) - 0.5) * 6.0
    views.show_object(amp, phase)
    app.processEvents()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        views.show_object(amp, phase)
        views.repaint()
        times.append((time.perf_counter() - t0) * 1e3)
    print(f"1024x1024 snapshot to three views: median {np.median(times):.1f} ms (target < 10 ms)")
    views.close()
    window.shutdown()  # stop the worker and wait for its thread before Python tears down
    window.close()
    views.deleteLater()
    window.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main()
