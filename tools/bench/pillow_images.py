#!/usr/bin/env python3
"""Peer for `tessera bench images`: Pillow decode (+ resize to 64x64 with draft), timed the same way.

    python3 tools/bench/pillow_images.py --list FILES.txt --processes N --mode full|draft64 [--min-seconds S]

`full`: Image.open + convert("RGB") (full-size decode). `draft64`: the W1 image recipe as a Pillow user
writes it: open, draft("RGB", (64, 64)) for JPEGs, convert("RGB"), resize the shorter side to 64
(BILINEAR, reducing_gap=None, longer side rounded down), centre crop, numpy array (CHW uint8).
N processes (a pre-started multiprocessing Pool) share the files; one warm-up pass, then passes until
S seconds; prints JSON {"images", "seconds", "per_second"} for the best pass.
Pinned: Pillow 13.0.0, numpy 2.4.6.
"""
import argparse, json, os, time
from multiprocessing import Pool
import numpy as np
from PIL import Image


def work(path, mode):
    im = Image.open(path)
    if mode == "draft64":
        if im.format == "JPEG":
            im.draft("RGB", (64, 64))
        im = im.convert("RGB")
        w, h = im.size
        rw, rh = (64, max(64, h * 64 // w)) if w <= h else (max(64, w * 64 // h), 64)
        im = im.resize((rw, rh), Image.BILINEAR)
        x0, y0 = (rw - 64) // 2, (rh - 64) // 2
        im = im.crop((x0, y0, x0 + 64, y0 + 64))
        return np.ascontiguousarray(np.asarray(im).transpose(2, 0, 1)).nbytes
    return np.asarray(im.convert("RGB")).nbytes


def chunk(args):
    paths, mode = args
    return sum(work(p, mode) > 0 for p in paths)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", required=True)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--mode", choices=["full", "draft64"], default="draft64")
    ap.add_argument("--min-seconds", type=float, default=1.5)
    a = ap.parse_args()
    files = [l.strip() for l in open(a.list) if l.strip()]
    step = 16
    jobs = [(files[i:i + step], a.mode) for i in range(0, len(files), step)]
    with Pool(a.processes) as pool:
        def one_pass():
            t = time.perf_counter()
            n = sum(pool.imap_unordered(chunk, jobs)) if a.processes > 1 else sum(map(chunk, jobs))
            return n, time.perf_counter() - t
        one_pass()
        best, total, passes = float("inf"), 0.0, 0
        while (total < a.min_seconds or passes < 2) and passes < 20:
            n, t = one_pass()
            best, total, passes = min(best, t), total + t, passes + 1
    print(json.dumps({"images": n, "seconds": best, "per_second": n / best}))


if __name__ == "__main__":
    main()
