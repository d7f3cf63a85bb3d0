"""Single-row LightGBM predictions without the per-call overhead of Booster.predict.

`Booster.predict` rebuilds a predictor, copies its parameters and makes
several C calls per call, each releasing and re-taking the GIL; on a busy
gRPC server every re-take can wait behind another thread, which costs far
more than the ~10 µs a row of 100 trees takes. For the small batches of
online requests this calls LightGBM's C API for single-row prediction
("FastConfig", prepared once per model version) through `ctypes.PyDLL`,
which keeps the GIL for the duration of the call. Larger batches go through
`Booster.predict`, which releases the GIL while it works.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import lightgbm as lgb
import lightgbm.basic as lgb_basic
import numpy as np

_PREDICT_NORMAL = 0
_DTYPE_FLOAT64 = 1
_LIB = ctypes.PyDLL(lgb_basic._LIB._name)  # the same library, called without releasing the GIL
_LIB.LGBM_GetLastError.restype = ctypes.c_char_p
_PREDICT_ROW = _LIB.LGBM_BoosterPredictForMatSingleRowFast
# Declared once so each call converts plain ints (addresses) without building ctypes objects.
_PREDICT_ROW.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_PREDICT_ROW.restype = ctypes.c_int


def _check(code: int) -> None:
    if code != 0:
        raise RuntimeError(_LIB.LGBM_GetLastError().decode())


class SingleRowPredictor:
    """Predicts one row at a time with a FastConfig bound to one booster."""

    def __init__(self, booster: lgb.Booster, num_features: int):
        self._booster = booster  # keeps the booster alive as long as its FastConfig
        self._num_features = num_features
        handle = ctypes.c_void_p()
        _check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(num_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self._handle = handle
        self._finalizer = weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)
        # Each thread's output buffer and its address, kept between calls: a new
        # array and a `.ctypes` lookup cost more per call than the row itself.
        self._local = threading.local()

    def __reduce__(self):
        # Shipped to Dask workers as its booster; the FastConfig is rebuilt there.
        return (SingleRowPredictor, (self._booster, self._num_features))

    def predict(self, matrix: np.ndarray, lower: float = -np.inf) -> np.ndarray:
        """Model outputs for each row of a (rows, features) float64 matrix, as a
        new array, each at least `lower` (demand forecasts pass 0)."""
        rows = (
            matrix
            if matrix.dtype == np.float64 and matrix.flags.c_contiguous
            else np.ascontiguousarray(matrix, np.float64)
        )
        count = rows.shape[0]
        out, out_base = self._buffer(count + 1)  # the last slot receives the output length
        handle = self._handle.value
        base, step = rows.ctypes.data, 8 * rows.shape[1]
        length_address = out_base + 8 * count
        for i in range(count):
            if _PREDICT_ROW(handle, base + i * step, length_address, out_base + 8 * i) != 0:
                _check(-1)
        return np.maximum(out[:count], lower)

    def _buffer(self, size: int) -> tuple[np.ndarray, int]:
        """This thread's output buffer of at least `size` slots, and its address."""
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer[0].size < size:
            array = np.empty(max(size, 17))
            buffer = self._local.buffer = (array, array.ctypes.data)
        return buffer
