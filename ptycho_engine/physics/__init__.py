"""Differentiable physics of far-field ptychography (TensorFlow).

Submodules: ``translate`` (the one shift primitive), ``patches`` (overlap constraint),
``probe`` (normalisation), ``farfield`` (propagation), ``losses`` (Poisson NLL, MAE).
Importing this package imports TensorFlow.
"""
