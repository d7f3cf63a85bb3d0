"""Run the feature service: python -m rxcast.feature --help"""

from rxcast.feature.app import FeatureApp, FeatureConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(FeatureApp, FeatureConfig, "feature")
