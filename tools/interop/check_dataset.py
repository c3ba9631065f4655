#!/usr/bin/env python3
"""Interop check: a dataset Tessera wrote, read with the Python reader (numpy + safetensors), against
`tessera decode` of the same source files, sample by sample.

    python3 tools/interop/check_dataset.py DATASET TESSERA_BINARY SOURCE_ROOT [--tokenizer T.json]

For every sample key K of every split: the files SOURCE_ROOT/K.* are decoded again with `tessera decode`
(default transforms, the same tokenizer) and each tensor must equal the shard's row exactly; absent modalities
must be zeros with mask 0. Prints one line per problem and exits 1 if any.
"""
import argparse, glob, os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../python"))
from tessera_reader import TesseraDataset

MODALITY = {".jpg": "image", ".jpeg": "image", ".png": "image", ".wav": "audio", ".flac": "audio", ".ogg": "audio",
            ".aif": "audio", ".aiff": "audio", ".txt": "text", ".ids": "text", ".tokens": "text"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("tessera")
    ap.add_argument("root")
    ap.add_argument("--tokenizer")
    a = ap.parse_args()
    problems, checked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for split in TesseraDataset(a.dataset).manifest["splits"]:
            ds = TesseraDataset(a.dataset, split)
            for sample in ds.samples():
                key = sample["key"]
                checked += 1
                present = set()
                for path in sorted(glob.glob(glob.escape(os.path.join(a.root, key)) + ".*")):
                    modality = MODALITY.get(os.path.splitext(path)[1].lower())
                    if modality is None or modality not in ds.manifest["modalities"]:
                        continue
                    out = os.path.join(tmp, "x.safetensors")
                    args = [a.tessera, "decode", path, "--out", out]
                    if modality == "text" and a.tokenizer:
                        args += ["--tokenizer", a.tokenizer]
                    r = subprocess.run(args, capture_output=True, text=True)
                    if r.returncode != 0:
                        problems.append(f"{key}: tessera decode {path} failed: {r.stderr.strip()}")
                        continue
                    present.add(modality)
                    for name, array in load_file(out).items():
                        if name not in sample:
                            problems.append(f"{key}: {name} missing from the shard")
                        elif not np.array_equal(sample[name], array.reshape(sample[name].shape)):
                            problems.append(f"{key}: {name} differs from tessera decode of {path}")
                for modality in ds.manifest["modalities"]:
                    mask = int(sample[f"mask_{modality}"])
                    if mask != (modality in present):
                        problems.append(f"{key}: mask_{modality} is {mask}, files say {modality in present}")
    for p in problems:
        print(p)
    print(f"checked {checked} samples: {'OK' if not problems else f'{len(problems)} PROBLEMS'}")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
