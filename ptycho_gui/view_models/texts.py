"""What the views, the status bar and the Help menu say (no Qt): captions that name a view's
run, durations, the first-launch hint, the keyboard shortcuts and the About text."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptycho_gui.view_models.run_settings import RunSettings, algorithm_name

#: The window's keyboard shortcuts: ``(action name, what it does, keys)``; the first key is
#: the one menus show. The Help menu lists them and the window's actions take them from here.
SHORTCUTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("start", "Start a run with the current settings", ("Ctrl+R", "F5")),
    ("stop", "Stop the running run (and drop a queued one)", ("Esc", "Ctrl+.")),
    ("compare", "Compare the runs selected in the table (2 to 6)", ("Ctrl+K",)),
    ("next_run", "Show the next finished run", ("Ctrl+Down",)),
    ("previous_run", "Show the previous finished run", ("Ctrl+Up",)),
    ("live_run", "Back to the live run (after Show)", ("Ctrl+L",)),
    ("undo", "Undo the last settings change", ("Ctrl+Z",)),
    ("redo", "Redo a settings change", ("Ctrl+Shift+Z",)),
    ("open_data", "Open a diffraction file", ("Ctrl+O",)),
    ("quit", "Quit", ("Ctrl+Q",)),
)


def shortcut_keys(name: str) -> tuple[str, ...]:
    """The keys of the action ``name`` in :data:`SHORTCUTS`.

    Raises
    ------
    KeyError
        No such action.
    """
    for action, _text, keys in SHORTCUTS:
        if action == name:
            return keys
    raise KeyError(f"no shortcut for {name!r}: one of {[s[0] for s in SHORTCUTS]}")


def shortcuts_text() -> str:
    """One line per shortcut: ``"Ctrl+R, F5: Start a run with the current settings"``."""
    return "\n".join(f"{', '.join(keys)}: {text}" for _name, text, keys in SHORTCUTS)


def run_caption(run_id: int, settings: RunSettings, epoch: int | None = None) -> str:
    """A view's caption naming its run: ``"#3 PINN N=64 g=2 · epoch 12"`` or
    ``"#4 rPIE N=64 · it. 40"`` (no epoch part when ``epoch`` is None)."""
    text = f"#{run_id} {algorithm_name(settings.algorithm)} N={settings.N}"
    if not settings.iterative:
        text += f" g={settings.gridsize}"
    if epoch is not None:
        text += f" · {epoch_text(settings, epoch)}"
    return text


def epoch_text(settings: RunSettings, epoch: int) -> str:
    """``"epoch 12"`` for the network, ``"it. 40"`` for a solver."""
    return f"it. {epoch}" if settings.iterative else f"epoch {epoch}"


def duration_text(seconds: float | None) -> str:
    """``"12.3 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``; ``"-"`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def start_hint(path: str) -> str:
    """What to do once data are loaded and no run was made yet."""
    keys = shortcut_keys("start")[0]
    name = Path(path).name if path else "the data"
    return f"Press Start ({keys}) to reconstruct {name}"


def about_text(
    versions: Mapping[str, str],
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """The About dialog's text: the versions of the app and its libraries, then the loaded
    data's provenance (path, format, sha256 and the steps taken when it was read).

    Parameters
    ----------
    versions : mapping
        Name to version (:func:`ptycho_engine.runs.versions` plus PySide6, Qt, pyqtgraph).
    provenance : mapping, optional
        ``DiffractionData.provenance`` of the loaded data; None when none is loaded.
    """
    lines = ["Ptycho Explorer", "", "Versions:"]
    lines.extend(f"  {name} {version}" for name, version in versions.items())
    lines += ["", "Data:"]
    if provenance is None:
        lines.append("  none loaded")
        return "\n".join(lines)
    lines.append(f"  path: {provenance.get('path') or 'unknown'}")
    lines.append(f"  format: {provenance.get('format') or 'unknown'}")
    lines.append(f"  sha256: {provenance.get('sha256') or 'unknown'}")
    steps = [str(s) for s in provenance.get("steps", []) or []]
    if steps:
        lines.append("  preparation steps:")
        lines.extend(f"    - {step}" for step in steps)
    else:
        lines.append("  preparation steps: none (the patterns as read)")
    return "\n".join(lines)
