"""The tike file in the app and on the command line: the same run gives the same amplitude SSIM.

An acceptance measurement, not a test (it trains 200 epochs twice). It

1. opens ``../shared/datasets/third_party/tike/ptycho_setup_converted.npz`` with the app's
   panels: the mapping profile ``tests/io/profiles/tike.json`` is chosen in the data panel
   (which asks for the file to be read again with it), and N 32, gridsize 1, 200 epochs, the
   automatic probe scale and the probe stitch window are set in the settings panel's widgets;
   the app's engine worker (in its own thread) reads the file and trains; the amplitude SSIM
   the app reports is printed;
2. runs the same from the command line::

       ptycho-engine train ptycho_setup_converted.npz --profile tests/io/profiles/tike.json \\
           --N 32 --gridsize 1 --epochs 200 --auto-probe-scale --stitch-window probe

   and prints its amplitude SSIM (from its ``run.json``);
3. prints the difference, and exits with status 1 when it is above 0.01.

The app's load of a file with a mapping profile is ``EngineWorker.request_load(path, profile)``.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/tike_in_app.py [--epochs 200]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
TIKE = ROOT.parent / "shared/datasets/third_party/tike/ptycho_setup_converted.npz"
PROFILE = ROOT / "tests/io/profiles/tike.json"
N = 32
GRIDSIZE = 1
TOLERANCE = 0.01


def _wait(signal: Any, timeout_s: float) -> tuple[Any, ...]:
    """Run the event loop until ``signal`` fires; its arguments."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list[tuple[Any, ...]] = []

    def done(*args: Any) -> None:
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(done)
    if not got:
        raise TimeoutError(f"no {signal} within {timeout_s:.0f} s")
    return got[0]


def app_ssim(epochs: int, session_dir: Path) -> float:
    """Amplitude SSIM of the tike run set up in the app's panels and trained by its worker."""
    from ptycho_gui.app import (
        collect_garbage_in_gui_thread,
        configure_pyqtgraph,
        preload_tensorflow,
    )

    preload_tensorflow()  # as the app does: TensorFlow's first import in the main thread
    from PySide6.QtWidgets import QApplication

    from ptycho_gui.jobs import start_worker, stop_workers
    from ptycho_gui.view_models.run_settings import RunSettings, valid_n_choices
    from ptycho_gui.view_models.settings_model import SettingsModel
    from ptycho_gui.widgets.data_panel import DataPanelWidget
    from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
    from ptycho_gui.worker import EngineWorker

    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    collector = collect_garbage_in_gui_thread()  # as the app does: never in the worker
    worker = EngineWorker(session_dir)
    if "profile" not in inspect.signature(worker.request_load).parameters:
        raise SystemExit(
            "EngineWorker.request_load(path, profile) is needed: the app's worker cannot yet "
            "read a file with a mapping profile"
        )
    thread = start_worker(worker, "engine-worker")
    model = SettingsModel(RunSettings())
    settings_panel = SettingsPanelWidget(model)
    data_panel = DataPanelWidget()
    try:
        # the main window's wiring of a load
        data_panel.reload_requested.connect(worker.request_load)
        data_panel.note_opening(str(TIKE))
        data_panel.set_profile(str(PROFILE))  # the file is read again with the profile
        data, summary = _wait(worker.data_loaded, 600)
        choices = valid_n_choices(data.N)
        if model.settings.N not in choices:
            model.reset(model.settings.replace(N=choices[-1]))
        data_panel.set_data(data, summary)
        settings_panel.show_data(data)
        # the settings, in the widgets
        settings_panel.n_combo.setCurrentIndex(settings_panel.n_combo.findData(N))
        settings_panel.gridsize_spin.setValue(GRIDSIZE)
        settings_panel.epochs_spin.setValue(epochs)
        settings_panel.set_advanced_shown(True)
        settings_panel.auto_probe_scale_check.setChecked(True)
        settings_panel.stitch_combo.setCurrentText("probe")
        settings = model.flush()
        print(f"app: {settings.label()}")
        start = time.perf_counter()
        worker.request_run(settings)
        (outcome,) = _wait(worker.run_finished, 7200)
        if outcome.state != "finished":
            raise SystemExit(f"the app's run {outcome.state}: {outcome.message}")
        print(
            f"app: {epochs} epochs in {time.perf_counter() - start:.0f} s, run folder "
            f"{outcome.run_dir}"
        )
        return float(outcome.metrics["amplitude_ssim"])
    finally:
        stop_workers([(worker, thread)], 5000)
        settings_panel.deleteLater()
        data_panel.deleteLater()
        app.processEvents()
        del collector


def cli_ssim(epochs: int, out: Path) -> float:
    """Amplitude SSIM of the same run through ``ptycho-engine train``."""
    argv = [sys.executable, "-m", "ptycho_engine.cli", "train", str(TIKE)]
    argv += ["--profile", str(PROFILE), "--N", str(N), "--gridsize", str(GRIDSIZE)]
    argv += ["--epochs", str(epochs), "--auto-probe-scale", "--stitch-window", "probe"]
    argv += ["--out", str(out)]
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"command line: {epochs} epochs in {time.perf_counter() - start:.0f} s")
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return float(info["metrics"]["reconstruction"]["amplitude"]["ssim"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    if not TIKE.is_file():
        print(f"the tike file is not present: {TIKE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tike-in-app-") as folder:
        app = app_ssim(args.epochs, Path(folder) / "session")
        cli = cli_ssim(args.epochs, Path(folder) / "cli")
    difference = abs(app - cli)
    verdict = "agree" if difference <= TOLERANCE else "DISAGREE"
    print(
        f"amplitude SSIM: app {app:.4f}, command line {cli:.4f}, difference {difference:.4f} "
        f"({verdict} to {TOLERANCE})"
    )
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
