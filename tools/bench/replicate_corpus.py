#!/usr/bin/env python3
"""Makes a larger corpus from W1 for the memory benchmark: every sample N times under new keys, as hard
links (no extra disk space).

    python3 tools/bench/replicate_corpus.py W1_DIR N OUT_DIR      # W1 x 10 = 20,000 samples
"""
import os, sys


def main(src, n, out):
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        stem, ext = os.path.splitext(name)
        for i in range(int(n)):
            target = os.path.join(out, f"{stem}_r{i}{ext}")
            if not os.path.exists(target):
                os.link(os.path.join(src, name), target)
    print(f"{out}: {len(os.listdir(out))} files")


if __name__ == "__main__":
    main(*sys.argv[1:4])
