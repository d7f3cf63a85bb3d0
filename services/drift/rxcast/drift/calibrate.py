"""Calibrate the concept-drift detectors to a target false-alarm rate.

Under the null hypothesis (errors behave as on the holdout) Page–Hinkley's
input is exactly uniform on [0, 1], and ADWIN's is for continuous losses (see
rxcast.drift.detectors), so the false-alarm rate of each setting can be measured once by simulation, for
every model and error scale. This command simulates uniform streams, prints
the false alarms per 10,000 samples of each candidate setting and, for
Page–Hinkley, the most sensitive setting within half the target (half, for
the simulation's own noise): the default of DetectorSettings. ADWIN's delta is
river's default (0.002), the plain ADWIN the monitor must be as fast as; its
rows show what a larger delta would cost.

    python -m rxcast.drift.calibrate [--samples 2000000] [--target 0.1]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from rxcast.drift.detectors import ADWIN, PAGE_HINKLEY, DetectorSettings, ErrorStreamMonitor

ADWIN_DELTAS = (0.002, 0.01, 0.05, 0.1, 0.2, 0.5)
PH_THRESHOLDS = (8.0, 10.0, 12.0, 15.0, 20.0, 25.0)
#: A setting that never fires, to measure one detector alone.
_SILENT = {"adwin_delta": 1e-12, "ph_threshold": 1e12}


def false_alarms_per_10k(settings: DetectorSettings, samples: int, seed: int = 0) -> dict[str, float]:
    """Alarms per 10,000 samples of a uniform stream, per detector."""
    monitor = ErrorStreamMonitor(settings, reference_errors=np.linspace(0.0, 1.0, 100_001), seed=seed)
    # Uniform losses on [0, 1] against a uniform reference: u is the loss itself.
    detections = monitor.update(np.random.default_rng(seed).random(samples))
    return {name: sum(d.detector == name for d in detections) * 1e4 / samples for name in (ADWIN, PAGE_HINKLEY)}


def calibrate(samples: int, target: float, base: DetectorSettings | None = None) -> tuple[DetectorSettings, list]:
    # The detectors themselves are calibrated: no effect floor (min_rise 0), so
    # each confirmed detection under the null counts.
    base = dataclasses.replace(base or DetectorSettings(), min_rise=0.0)
    rows = []
    for delta in ADWIN_DELTAS:
        settings = dataclasses.replace(base, adwin_delta=delta, ph_threshold=_SILENT["ph_threshold"])
        rate = false_alarms_per_10k(settings, samples)[ADWIN]
        rows.append((ADWIN, f"delta={delta:g}", rate))
    ph_ok = []
    for threshold in PH_THRESHOLDS:
        settings = dataclasses.replace(base, adwin_delta=_SILENT["adwin_delta"], ph_threshold=threshold)
        rate = false_alarms_per_10k(settings, samples)[PAGE_HINKLEY]
        rows.append((PAGE_HINKLEY, f"delta={base.ph_delta:g} threshold={threshold:g}", rate))
        if rate <= target / 2:
            ph_ok.append(threshold)
    chosen = dataclasses.replace(
        base,
        min_rise=DetectorSettings().min_rise,
        ph_threshold=min(ph_ok, default=max(PH_THRESHOLDS)),
    )
    return chosen, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rxcast.drift.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2_000_000, help="uniform samples per setting")
    parser.add_argument("--target", type=float, default=0.1, help="false alarms per 10,000 samples")
    args = parser.parse_args(argv)
    chosen, rows = calibrate(args.samples, args.target)
    print(f"| detector | setting | false alarms / 10k samples ({args.samples:,} simulated) |")
    print("|---|---|---|")
    for detector, setting, rate in rows:
        print(f"| {detector} | {setting} | {rate:.3f} |")
    print(
        f"\nchosen for a target of {args.target:g} / 10k: adwin_delta={chosen.adwin_delta:g}, "
        f"ph_delta={chosen.ph_delta:g}, ph_threshold={chosen.ph_threshold:g}"
    )


if __name__ == "__main__":
    main()
