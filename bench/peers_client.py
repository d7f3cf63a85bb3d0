"""The one client process of bench/peers.py: tritonclient's gRPC client, as an
outside caller has it, driving every ModelInfer target in alternating rounds.

Runs in the tritonclient virtualenv (not rxcast's): python peers_client.py PLAN_JSON
The plan names the targets (address, model, server pid, and for a TLS target
the caller's CA, certificate, key and bearer token), the request
matrices by size, and the bounds of each round. Prints one JSON object: per
target and size, latency samples' p50/p99, calls/s (median over rounds),
server CPU seconds per 1,000 calls and RSS, and the first answer's values.
"""

import json
import statistics
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as triton
from peers_measure import percentile, tree_cpu_seconds, tree_rss_bytes


def _inputs(matrix: np.ndarray) -> list:
    tensor = triton.InferInput("features", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix)
    return [tensor]


def _client(target: dict) -> tuple:
    """tritonclient's client for a target and the headers of its calls: plaintext, or
    TLS with the caller's certificate and its bearer token on every call."""
    files = target.get("tls")
    if not files:
        return triton.InferenceServerClient(url=target["address"]), None
    client = triton.InferenceServerClient(
        url=target["address"],
        ssl=True,
        root_certificates=files["ca"],
        private_key=files["key"],
        certificate_chain=files["cert"],
    )
    return client, {"authorization": "Bearer " + files["token"]}


def _latency(client, model: str, inputs, calls: int, seconds: float, headers) -> tuple[list[float], int]:
    """Sequential calls from one thread, bounded in count and time."""
    samples = []
    stop_at = time.perf_counter() + seconds
    while len(samples) < calls and time.perf_counter() < stop_at:
        started = time.perf_counter()
        client.infer(model, inputs, headers=headers)
        samples.append(time.perf_counter() - started)
    return samples, len(samples)


def _throughput(client, model: str, inputs, threads: int, calls: int, seconds: float, headers) -> tuple[float, int]:
    """Calls/s from `threads` threads sharing one channel, bounded in count and time."""
    done = [0] * threads
    stop_at = time.perf_counter() + seconds

    def drive(index: int) -> None:
        while done[index] < calls // threads and time.perf_counter() < stop_at:
            client.infer(model, inputs, headers=headers)
            done[index] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started), sum(done)


def main() -> None:
    with open(sys.argv[1]) as handle:
        plan = json.load(handle)
    matrices = {int(size): np.asarray(rows, dtype=np.float64) for size, rows in plan["matrices"].items()}
    clients = {t["name"]: _client(t) for t in plan["targets"]}
    state = {}
    for target in plan["targets"]:
        client, headers = clients[target["name"]]
        for size, matrix in matrices.items():
            first = client.infer(target["model"], _inputs(matrix), headers=headers)
            name = first.get_response().outputs[0].name
            for _ in range(plan["warmup"]):
                client.infer(target["model"], _inputs(matrix), headers=headers)
            state[target["name"], size] = {
                "first": first.as_numpy(name).ravel().tolist(),
                "samples": [],
                "rates": [],
                "calls": 0,
                "cpu": 0.0,
            }
    for _ in range(plan["rounds"]):
        for size, matrix in matrices.items():
            inputs = _inputs(matrix)
            for target in plan["targets"]:
                (client, headers), model = clients[target["name"]], target["model"]
                entry = state[target["name"], size]
                cpu_before = tree_cpu_seconds(target["pid"])
                samples, sequential = _latency(
                    client, model, inputs, plan["latency_calls"], plan["latency_seconds"], headers
                )
                rate, concurrent = _throughput(
                    client,
                    model,
                    inputs,
                    plan["threads"],
                    plan["throughput_calls"],
                    plan["throughput_seconds"],
                    headers,
                )
                entry["cpu"] += tree_cpu_seconds(target["pid"]) - cpu_before
                entry["calls"] += sequential + concurrent
                entry["samples"].extend(samples)
                entry["rates"].append(rate)
    out = []
    for target in plan["targets"]:
        rss = tree_rss_bytes(target["pid"]) / 2**20
        for size in matrices:
            entry = state[target["name"], size]
            out.append(
                {
                    "target": target["name"],
                    "size": size,
                    "rate": statistics.median(entry["rates"]),
                    "p50_ms": percentile(entry["samples"], 0.5) * 1e3,
                    "p99_ms": percentile(entry["samples"], 0.99) * 1e3,
                    "cpu_per_1000": entry["cpu"] / entry["calls"] * 1000,
                    "rss_mb": rss,
                    "calls": entry["calls"],
                    "first": entry["first"],
                }
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
