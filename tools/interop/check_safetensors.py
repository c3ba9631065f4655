#!/usr/bin/env python3
"""Checks, with the reference safetensors library, a file that Tessera wrote.

    python3 tools/interop/check_safetensors.py FILE.safetensors EXPECTED.json

EXPECTED.json maps each tensor name to {"dtype", "shape", "values"} and may hold "__metadata__".
Every value must match exactly (NaN matches NaN). Exits 1 with a line per difference.
"""
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

NUMPY = {"U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16, "U32": np.uint32, "I32": np.int32,
         "U64": np.uint64, "I64": np.int64, "F16": np.float16, "F32": np.float32, "F64": np.float64, "BOOL": np.bool_}


def main(path, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    want_meta = expected.pop("__metadata__", None)
    arrays = load_file(path)
    problems = []
    if set(arrays) != set(expected):
        problems.append(f"tensor names differ: {sorted(arrays)} vs {sorted(expected)}")
    for name, spec in expected.items():
        if name not in arrays:
            continue
        a = arrays[name]
        if a.dtype != NUMPY[spec["dtype"]]:
            problems.append(f"{name}: dtype {a.dtype}, expected {spec['dtype']}")
        if list(a.shape) != spec["shape"]:
            problems.append(f"{name}: shape {list(a.shape)}, expected {spec['shape']}")
        want = np.array(spec["values"], dtype=np.float64 if a.dtype.kind == "f" else None)
        got = a.reshape(-1)
        if a.dtype.kind == "f":
            want = want.astype(a.dtype)
            same = (got == want) | (np.isnan(got) & np.isnan(want))
        else:
            same = got == want.astype(a.dtype)
        if got.shape != want.shape or not np.all(same):
            problems.append(f"{name}: values differ")
    if want_meta is not None:
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
        if meta != want_meta:
            problems.append(f"metadata {meta} != {want_meta}")
    for p in problems:
        print(p)
    print(f"checked {len(expected)} tensors of {path}: {'OK' if not problems else 'FAILED'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
