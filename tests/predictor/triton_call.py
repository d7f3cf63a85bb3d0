"""Calls a predictor through tritonclient.grpc, as an outside client would.

Runs in the tritonclient virtualenv (not rxcast's): python triton_call.py ADDRESS CASE_JSON
The case names the model, the inputs (as lists) and their datatypes, and
optionally `stream`: requests (each with `inputs` and an `id`) to send on one
ModelStreamInfer stream. The answer, printed as JSON, holds what the server
said: probes, metadata, configuration, repository index, the inference
statistics before and after the calls, the unary answer and the stream's.
It connects as the `reader` identity of the test session's trust directory
(RXCAST_CLIENT_TLS_DIR): TLS with a client certificate, the bearer token as a header.
"""

import json
import os
import queue
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def _inputs(specs):
    inputs = []
    for spec in specs:
        if spec["datatype"] == "BYTES":
            data = np.array(spec["data"], dtype=object)
        else:
            data = np.array(spec["data"], dtype=triton.triton_to_np_dtype(spec["datatype"]))
        tensor = triton.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
    return inputs


def _result(result) -> dict:
    response = result.get_response(as_json=True)
    forecast, flags = result.as_numpy("forecast"), result.as_numpy("flags")
    return {
        "model_version": response["model_version"],
        "id": response.get("id", ""),
        "forecast": forecast.tolist() if forecast is not None else None,
        "flags": flags.tolist() if flags is not None else None,
    }


def _error(exc: InferenceServerException) -> dict:
    return {"status": exc.status(), "message": exc.message()}


def _stream(client, model: str, requests: list, headers: dict) -> list:
    """Every request on one stream; the answers in the order they came."""
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=headers)
    try:
        for request in requests:
            client.async_stream_infer(model, _inputs(request["inputs"]), request_id=request["id"])
        out = []
        for _ in requests:
            result, error = answers.get(timeout=30)
            out.append({"error": _error(error)} if error is not None else _result(result))
        return out
    finally:
        client.stop_stream()


def main() -> None:
    address, case = sys.argv[1], json.loads(sys.argv[2])
    model = case["model"]
    trust = Path(os.environ["RXCAST_CLIENT_TLS_DIR"])
    client = triton.InferenceServerClient(
        url=address,
        ssl=True,
        root_certificates=str(trust / "ca.crt"),
        private_key=str(trust / "reader.key"),
        certificate_chain=str(trust / "reader.crt"),
    )
    headers = {"authorization": "Bearer " + (trust / "reader.token").read_text().strip()}
    out = {
        "live": client.is_server_live(headers=headers),
        "ready": client.is_server_ready(headers=headers),
        "model_ready": client.is_model_ready(model, headers=headers),
        "server": client.get_server_metadata(headers=headers, as_json=True),
        "metadata": client.get_model_metadata(model, headers=headers, as_json=True),
        "config": client.get_model_config(model, headers=headers, as_json=True),
        "index": client.get_model_repository_index(headers=headers, as_json=True),
        "statistics_before": client.get_inference_statistics(model, headers=headers, as_json=True),
    }
    outputs = [triton.InferRequestedOutput(name) for name in case.get("outputs", [])] or None
    try:
        result = client.infer(model, _inputs(case["inputs"]), outputs=outputs, request_id="call-1", headers=headers)
        out["infer"] = _result(result)
    except InferenceServerException as exc:
        out["error"] = _error(exc)
    if "stream" in case:
        out["stream"] = _stream(client, model, case["stream"], headers)
    out["statistics_after"] = client.get_inference_statistics(model, headers=headers, as_json=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
