"""Calls a predictor through tritonclient.grpc, as an outside client would.

Runs in the tritonclient virtualenv (not rxcast's): python triton_call.py ADDRESS CASE_JSON
The case names the model, the inputs (as lists) and their datatypes; the
answer, printed as JSON, holds what the server said.
"""

import json
import sys

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def main() -> None:
    address, case = sys.argv[1], json.loads(sys.argv[2])
    client = triton.InferenceServerClient(url=address)
    out = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(case["model"]),
        "server": client.get_server_metadata(as_json=True),
        "metadata": client.get_model_metadata(case["model"], as_json=True),
    }
    inputs = []
    for spec in case["inputs"]:
        if spec["datatype"] == "BYTES":
            data = np.array(spec["data"], dtype=object)
        else:
            data = np.array(spec["data"], dtype=triton.triton_to_np_dtype(spec["datatype"]))
        tensor = triton.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(name) for name in case.get("outputs", [])] or None
    try:
        result = client.infer(case["model"], inputs, outputs=outputs, request_id="call-1")
        response = result.get_response(as_json=True)
        out["infer"] = {
            "model_version": response["model_version"],
            "id": response["id"],
            "forecast": result.as_numpy("forecast").tolist() if result.as_numpy("forecast") is not None else None,
            "flags": result.as_numpy("flags").tolist() if result.as_numpy("flags") is not None else None,
        }
    except InferenceServerException as exc:
        out["error"] = {"status": exc.status(), "message": exc.message()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
