"""View models of the GUI: Qt-free converters and settings, and Qt item models."""
