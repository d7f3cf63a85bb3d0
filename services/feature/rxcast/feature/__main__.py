"""Run the feature service: python -m rxcast.feature --help"""

from rxcast.feature.app import FeatureApp
from rxcast.feature.config import FeatureConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(FeatureApp, FeatureConfig, "feature")
