"""Run the predictor service: python -m rxcast.predictor --help"""

from rxcast.predictor.app import PredictorApp
from rxcast.predictor.config import PredictorConfig
from rxcast.runtime.server import main

if __name__ == "__main__":
    main(PredictorApp, PredictorConfig, "predictor")
