"""The README's screenshots of a measurement with a full geometry, made by driving the app.

A Siemens-star phantom is simulated with a photon energy, a detector distance and a detector
pixel (128x128 patterns, 400 positions, 1e6 photons) and written as CXI. The app opens it at
N 64 (crop); an rPIE run and an LSQML run reconstruct it. Written to ``docs/``:

- ``main_window_units.png``: the main window after the rPIE run: metre axes, scale bars,
  colour bars with their levels, captions naming the run;
- ``line_profile.png``: the amplitude pane with a line profile across the star and a region
  with its statistics;
- ``compare_units.png``: the comparison of the two runs (shared levels, difference, FRC with
  the crossings in nm).

It prints the object pixel size the panel shows and the one in the rPIE run's export, which
must be equal (physics.md section 6).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/screenshots.py [--out docs]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
ENERGY_EV = 6200.0
DISTANCE_M = 1.5
DETECTOR_PIXEL_M = 55e-6


def _wait(app, condition, timeout_s: float = 600.0) -> None:
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def _settle(app, seconds: float = 0.5) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    """Make the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder of the PNG files")
    parser.add_argument("--iterations", type=int, default=40, help="solver iterations")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from ptycho_engine.io import read_product, write_cxi
    from ptycho_engine.simulate import simulate_dataset

    folder = Path(tempfile.mkdtemp(prefix="ptycho-screens-"))
    data = simulate_dataset(N=128, n_positions=400, photons=1e6, object_kind="siemens", seed=11)
    data = data.replace(
        energy_ev=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=DETECTOR_PIXEL_M
    )
    path = folder / "siemens_star.cxi"
    write_cxi(path, data)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ptycho_gui.app import collect_garbage_in_gui_thread, configure_pyqtgraph

    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    collector = collect_garbage_in_gui_thread()
    from ptycho_gui.main_window import MainWindow
    from ptycho_gui.view_models.run_settings import RunSettings

    settings = QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat)
    base = RunSettings(N=64, algorithm="rpie", iterations=args.iterations)
    window = MainWindow(settings, base, session_dir=folder / "session")
    window.settings_panel.rerun_check.setChecked(False)
    window.resize(1500, 950)
    window.show()
    loaded: list[object] = []
    window.data_ready.connect(loaded.append)
    window.open_file(str(path))
    _wait(app, lambda: bool(loaded))
    shown = window.settings_panel.sampling_label.text()
    print(f"panel: {shown}")

    done: list[object] = []
    window.run_completed.connect(done.append)
    window.start_run()
    _wait(app, lambda: len(done) >= 1)
    rpie = done[-1]
    _settle(app, 1.0)
    window.grab().save(str(out / "main_window_units.png"))

    pane = window.live.object_views.amplitude_view
    record = window.run_model.record(rpie.run_id)
    assert record is not None and record.object is not None
    h, w = record.object.shape
    pane.show_line_profile(True)
    pane.set_line((w * 0.2, h * 0.5), (w * 0.8, h * 0.5))  # (x, y)
    pane.show_region(True)
    pane.set_region((w * 0.3, h * 0.3, w * 0.15, h * 0.15))  # (x, y, width, height)
    _settle(app, 1.0)
    window.grab().save(str(out / "line_profile.png"))
    stats = pane.region_stats()
    print(f"line profile {pane.line()}, region statistics {stats}")
    pane.show_line_profile(False)
    pane.show_region(False)

    exports: list[object] = []
    window.export_finished.connect(exports.append)
    window.export_run(rpie.run_id, str(folder / "rpie.h5"))
    _wait(app, lambda: bool(exports))
    product = read_product(folder / "rpie.h5")
    print(
        f"run pixel {record.pixel_size_m * 1e9:.4f} nm, export pixel "
        f"{product.object_pixel_m[0] * 1e9:.4f} nm"
    )

    window.settings_model.reset(base.replace(algorithm="lsqml"))
    window.start_run()
    _wait(app, lambda: len(done) >= 2)
    lsqml = done[-1]
    window.run_table.select_run_ids([rpie.run_id, lsqml.run_id])
    compare = window.compare_selected()
    assert compare is not None
    compare.resize(1500, 900)
    _settle(app, 3.0)  # the alignment and the FRC run in the task worker
    compare.grab().save(str(out / "compare_units.png"))
    print(f"FRC crossings: {compare.crossing_texts()}")
    compare.close()
    window.shutdown()
    window.close()
    window.deleteLater()
    app.processEvents()
    del collector
    names = ("main_window_units.png", "line_profile.png", "compare_units.png")
    print("written: " + ", ".join(str(out / n) for n in names))


if __name__ == "__main__":
    main()
