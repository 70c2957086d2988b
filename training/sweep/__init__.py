"""Sweeps: many trainings as one job (``python -m training sweep``).

``trials`` turns config files and grids into named trials, ``engines`` runs them (one after
another here, or as Ray tasks on a cluster), ``sweep`` ties them together: --resume, progress,
and the comparison table of the sweep's runs. No TensorFlow in the driver: every trial is a
``python -m training train`` subprocess.
"""
