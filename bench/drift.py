"""Benchmark: drift scoring with a precomputed reference profile against a loop
of scipy.stats.ks_2samp over the same features on the same data.

    .venv/bin/python bench/drift.py [--features 20] [--rows 100000] [--repeats 7]

20 numeric features (mixed shapes, a few shifted), 100k reference rows and
100k current rows. "full scoring" is rxcast.drift.scoring.score: KS with
p-value, PSI, JS, Wasserstein, mean/std ratios, null and infinity rates and
constant detection per feature, plus the Benjamini–Hochberg correction. The
profile is built once (its time is shown apart) and reused, as the service
does. Medians of `repeats` runs, measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats as scipy_stats

from rxcast.drift import stats
from rxcast.drift.scoring import score
from rxcast.model.profile import DEFAULT_SKETCH_SIZE, build_reference_profile


def _data(features: int, rows: int, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    reference, current = {}, {}
    for i in range(features):
        shape = i % 4
        draw = [
            lambda n: rng.normal(0.0, 1.0, n),
            lambda n: rng.lognormal(1.0, 0.5, n),
            lambda n: rng.poisson(4.0, n).astype(float),
            lambda n: rng.gamma(2.0, 3.0, n),
        ][shape]
        reference[f"f{i:02d}"] = draw(rows)
        shift = 0.3 if i % 5 == 0 else 0.0  # every fifth feature moved
        current[f"f{i:02d}"] = draw(rows) + shift * np.std(reference[f"f{i:02d}"])
    return reference, current


def _median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    reference, current = _data(args.features, args.rows)

    start = time.perf_counter()
    profile = build_reference_profile(reference, [])
    build_seconds = time.perf_counter() - start
    exact = build_reference_profile(reference, [], sketch_size=args.rows)

    def scipy_loop():
        return {name: scipy_stats.ks_2samp(reference[name], current[name]) for name in reference}

    scipy_seconds = _median_seconds(scipy_loop, args.repeats)
    ours_seconds = _median_seconds(lambda: score(profile, current), args.repeats)
    exact_seconds = _median_seconds(lambda: score(exact, current), args.repeats)

    expected = scipy_loop()
    sketch_scores = {r.feature: r for r in score(profile, current).features}
    exact_scores = {r.feature: r for r in score(exact, current).features}
    gap_sketch = max(abs(sketch_scores[n].signal("ks").value - expected[n].statistic) for n in reference)
    gap_exact = max(abs(exact_scores[n].signal("ks").value - expected[n].statistic) for n in reference)
    p_gap = max(abs(exact_scores[n].signal("ks").p_value - expected[n].pvalue) for n in reference)
    flagged = sorted(n for n, r in sketch_scores.items() if r.verdict == "drift")

    print(
        f"{args.features} numeric features, {args.rows:,} reference rows, {args.rows:,} current rows; "
        f"median of {args.repeats} runs\n"
    )
    print("| what | seconds | vs scipy loop |")
    print("|---|---|---|")
    print(f"| scipy.stats.ks_2samp loop (KS only) | {scipy_seconds:.3f} | 1.0x |")
    print(
        f"| rxcast full scoring, profile sketch {DEFAULT_SKETCH_SIZE} (default) | {ours_seconds:.3f} "
        f"| {scipy_seconds / ours_seconds:.1f}x faster |"
    )
    print(
        f"| rxcast full scoring, exact profile ({args.rows:,} values) | {exact_seconds:.3f} "
        f"| {scipy_seconds / exact_seconds:.1f}x faster |"
    )
    print(f"| building the profile (once per model version) | {build_seconds:.3f} | |")
    print()
    print(
        f"max |KS statistic - scipy|: sketch {gap_sketch:.2e} (bound 1/{DEFAULT_SKETCH_SIZE} = "
        f"{1 / DEFAULT_SKETCH_SIZE:.2e}), exact profile {gap_exact:.1e}"
    )
    print(
        f"max |KS p-value - scipy| (exact profile; limiting distribution above n={stats.KS_LIMIT_FROM_N:,}): "
        f"{p_gap:.1e}"
    )
    print(f"features judged drifted: {', '.join(flagged)} (shifted: every fifth, f00 f05 f10 f15)")


if __name__ == "__main__":
    main()
