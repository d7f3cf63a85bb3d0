"""Run the drift service: python -m rxcast.drift --help"""

from rxcast.drift.app import DriftApp
from rxcast.drift.config import DriftConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(DriftApp, DriftConfig, "drift")
