"""Run the trainer service: python -m rxcast.trainer --help"""

from rxcast.trainer.app import TrainerApp, TrainerConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(TrainerApp, TrainerConfig, "trainer")
