"""What TLS with client certificates and per-call role checks cost a unary call.

python bench/trust.py [--calls N] [--rounds R]

Two online predictors serve the same model, one with the deployed transport
(mTLS, a bearer token checked against the RPC's role on every call) and one
started with --plaintext; each reads features from its own stand-in feature
service over the same transport. ModelInfer (1 row) and Predict (1 key, which
includes the predictor's own call to the feature service) are timed on each in
alternating rounds, so that load from elsewhere on the machine falls on both
alike. Prints one table: p50/p99 per transport and the TLS/plaintext ratio.
Credentials are made in a scratch directory; nothing needs `make certs`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predictor import (  # the predictor benchmark's model, stand-ins and timing
    CATEGORICAL,
    NUMERIC,
    Helper,
    compare,
    infer_request,
    population,
    predict_request,
    raw_callable,
    train_model,
)

from rxcast.runtime import certs, tls
from rxcast.runtime.channels import connect
from rxcast.suite.launcher import ServiceProcess

PLAINTEXT_ENV = {"RXCAST_CLIENT_PLAINTEXT": "true"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per latency measurement (over all rounds)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds the measurements are split into")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rxcast-bench-trust-"))
    os.environ["RXCAST_CLIENT_TLS_DIR"] = str(certs.make(work / "certs"))
    model_dir = work / "model-1"
    bundle = train_model(model_dir)
    spec = json.dumps({"numeric": NUMERIC, "categorical": {name: levels[0] for name, levels in CATEGORICAL.items()}})
    features = {
        "tls": Helper(work, "features", spec, name="features-tls"),
        "plaintext": Helper(work, "features", spec, env=PLAINTEXT_ENV, name="features-plaintext"),
    }
    predictors: dict[str, ServiceProcess] = {}
    rows = []
    try:
        for transport, helper in features.items():
            predictors[transport] = ServiceProcess(
                "predictor",
                work,
                ["--mode", "online", "--model-dir", str(model_dir), "--feature-address", helper.address()],
                env={"RXCAST_PREDICTOR_PLAINTEXT": str(transport == "plaintext").lower()},
                name=f"predictor-{transport}",
            ).start()
        for process in predictors.values():
            process.wait_ready(60)

        infer_payload = infer_request(bundle.encode(population(1).columns).matrix)
        predict_payload = predict_request(1)
        channels = {
            "plaintext": connect(predictors["plaintext"].address, trust=tls.PLAINTEXT),
            "tls": connect(predictors["tls"].address),
        }
        targets, labels = [], []
        for rpc, method, payload in (
            ("ModelInfer, 1 row", "/inference.GRPCInferenceService/ModelInfer", infer_payload),
            ("Predict, 1 key", "/rxcast.predictor.v1.PredictorService/Predict", predict_payload),
        ):
            for transport in ("plaintext", "tls"):
                targets.append((raw_callable(channels[transport], method), payload))
                labels.append((rpc, transport))
        # Latency only: one client thread, sequential calls.
        measured = compare(targets, args.rounds, args.calls, threads=1, seconds=0.0)
        for i in range(0, len(targets), 2):
            (rpc, _), (plain_p50, plain_p99, _), (tls_p50, tls_p99, _) = labels[i], measured[i], measured[i + 1]
            rows.append(
                (
                    rpc,
                    f"{plain_p50:.3f}",
                    f"{tls_p50:.3f}",
                    f"{tls_p50 / plain_p50:.2f}x",
                    f"{(tls_p50 - plain_p50) * 1000:+.0f}",
                    f"{plain_p99:.3f}",
                    f"{tls_p99:.3f}",
                )
            )
        for channel in channels.values():
            channel.close()
    finally:
        for process in predictors.values():
            process.stop()
        for helper in features.values():
            helper.stop()

    header = ("call", "plain p50 ms", "mTLS+auth p50 ms", "ratio", "p50 diff us", "plain p99 ms", "mTLS+auth p99 ms")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"TLS + auth cost ({os.cpu_count()} cores, {args.calls} sequential calls per cell in {args.rounds} rounds)")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
