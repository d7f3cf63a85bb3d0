"""Run the drift service: python -m rxcast.drift --help"""

from rxcast.drift.app import DriftApp, DriftConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(DriftApp, DriftConfig, "drift")
