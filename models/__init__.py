"""Models: metrics, the LightGBM risk model, training, MLflow tracking and the champion registry."""

import os

# OpenMP threads that spin while waiting starve everything else on a small shared host; wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
