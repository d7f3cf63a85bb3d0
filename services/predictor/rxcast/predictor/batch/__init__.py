"""Batch mode: score every entity as of an instant, store the run atomically,
serve its forecasts by lookup."""
