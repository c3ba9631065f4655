#!/usr/bin/env python3
"""Decodes every image of the third-party corpora with Tessera and with Pillow and reports the differences.

    python3 tools/conformance/image_corpora.py [--tessera .build/release/tessera] [--corpora ../shared/corpora]
                                               [--markdown docs/IMAGE-CONFORMANCE.md]

For each PNG/JPEG/MPO file in pngsuite/ and jpeg_*/: Tessera (`tessera decode --image-resize none
--image-layout hwc --no-dct-scaling`, strict, then again with --accept-truncated if strict refused it)
against Pillow 13.0.0 (`Image.open`, `ImageOps.exif_transpose` for JPEG, `convert("RGB")`). Every file
lands in one category; the markdown lists each exception with Tessera's and Pillow's words.
Exits 1 if any file crashed Tessera (a signal) or took longer than 20 s.
"""
import argparse, collections, os, subprocess, sys, tempfile, time
import numpy as np
from PIL import Image, ImageOps
from safetensors.numpy import load_file

Image.MAX_IMAGE_PIXELS = None


def pillow(path):
    try:
        im = Image.open(path)
        if im.format in ("JPEG", "MPO"):
            im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB")), None
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"


def tessera(binary, path, out, accept):
    args = [binary, "decode", path, "--image-resize", "none", "--image-layout", "hwc", "--no-dct-scaling", "--out", out]
    if accept:
        args.append("--accept-truncated")
    t = time.time()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None, "HANG (over 20 s)", True
    if r.returncode < 0:
        return None, f"CRASH (signal {-r.returncode})", True
    if r.returncode != 0:
        return None, r.stderr.strip().split(": ", 2)[-1], False
    return load_file(out)["image"], None, False


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", default=os.path.join(here, "../../.build/release/tessera"))
    ap.add_argument("--corpora", default=os.path.join(here, "../../../shared/corpora"))
    ap.add_argument("--markdown")
    a = ap.parse_args()
    files = []
    for corpus in sorted(os.listdir(a.corpora)):
        if corpus != "pngsuite" and not corpus.startswith("jpeg_"):
            continue
        for root, _, names in os.walk(os.path.join(a.corpora, corpus)):
            for n in sorted(names):
                if n.lower().endswith((".png", ".jpg", ".jpeg", ".mpo")):
                    files.append(os.path.join(root, n))
    rows, counts, fatal = [], collections.Counter(), 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.safetensors")
        for path in files:
            rel = os.path.relpath(path, a.corpora)
            ref, ref_err = pillow(path)
            got, err, bad = tessera(a.tessera, path, out, accept=False)
            fatal += bad
            if got is not None and ref is not None:
                diff = int(np.abs(got.astype(int) - ref.astype(int)).max()) if got.shape == ref.shape else None
                if diff is not None and diff <= 1:
                    counts["same pixels as Pillow (max difference <= 1)"] += 1
                else:
                    counts["DIFFERENT pixels"] += 1
                    rows.append((rel, "different pixels", f"shape {got.shape} vs {ref.shape}, max diff {diff}", ""))
            elif got is None and ref is None:
                counts["refused by both"] += 1
            elif got is not None:
                counts["Tessera decodes, Pillow refuses"] += 1
                rows.append((rel, "Pillow refuses", "decoded", ref_err))
            else:
                acc, acc_err, bad = tessera(a.tessera, path, out, accept=True)
                fatal += bad
                if acc is not None:
                    same = acc.shape == ref.shape and int(np.abs(acc.astype(int) - ref.astype(int)).max()) <= 1
                    kind = "strict refusal (libjpeg warned); --accept-truncated gives Pillow's pixels" if same else \
                        "strict refusal (libjpeg warned); --accept-truncated differs from Pillow"
                    counts[kind] += 1
                    rows.append((rel, kind, err, "decoded"))
                else:
                    counts["Tessera refuses, Pillow decodes"] += 1
                    rows.append((rel, "Tessera refuses", err, "decoded"))
    print(f"{len(files)} files")
    for k, v in counts.most_common():
        print(f"  {v:4d}  {k}")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("# Image conformance against Pillow\n\n")
            f.write("Made by `python3 tools/conformance/image_corpora.py --markdown docs/IMAGE-CONFORMANCE.md` "
                    "(release build, Pillow 13.0.0) over every PNG/JPEG/MPO file of `../shared/corpora/pngsuite` "
                    "and `../shared/corpora/jpeg_*`. Tessera decodes with `--image-resize none --no-dct-scaling`; "
                    "Pillow with `Image.open`, `ImageOps.exif_transpose` (JPEG) and `convert(\"RGB\")`.\n\n")
            f.write(f"{len(files)} files; no crash, no hang.\n\n" if not fatal else f"{len(files)} files; {fatal} CRASHED OR HUNG.\n\n")
            f.write("| outcome | files |\n| --- | ---: |\n")
            for k, v in counts.most_common():
                f.write(f"| {k} | {v} |\n")
            f.write("\n## Every exception\n\n| file | outcome | Tessera | Pillow |\n| --- | --- | --- | --- |\n")
            for rel, kind, t, p in rows:
                f.write(f"| `{rel}` | {kind} | {t.replace('|', '/')} | {p.replace('|', '/')} |\n")
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
