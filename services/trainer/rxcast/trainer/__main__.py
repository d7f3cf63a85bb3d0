"""Run the trainer service: python -m rxcast.trainer --help"""

import os

# OpenMP threads that spin while waiting steal the cores of a small, shared
# machine from everything else (and from each other under load); set before
# LightGBM loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from rxcast.runtime.server import main
from rxcast.trainer.app import TrainerApp
from rxcast.trainer.config import TrainerConfig

if __name__ == "__main__":
    main(TrainerApp, TrainerConfig, "trainer")
