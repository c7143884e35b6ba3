"""Widgets of the GUI: image views, panels, the run table and the comparison window."""
