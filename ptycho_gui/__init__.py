"""ptycho_gui: the Qt desktop application (PySide6 + pyqtgraph) over ``ptycho_engine``."""
