#!/usr/bin/env python3
"""The "spoken-digit triad" corpus: every Free Spoken Digit Dataset recording paired, by digit and seed, with an
MNIST image of that digit and a short text naming the digit.

    python3 tools/corpora/make_digit_triad.py OUT [--seed N] [--texts phrases|word] [--train-per-cell N] [--test-per-cell N]
                                              [--holdout val|test]
    tessera ingest --manifest OUT/triad.csv --out SHARDS --tokenizer fixtures/text/tokenizers/w1.json   # W1's transforms

Splits: FSDD's official one. Recordings 0-4 of every speaker and digit, paired with MNIST *test* images, form the
held-out split (`test` by default, or `val`); recordings 5-49, with MNIST *training* images, form `train`. Pairing:
the MNIST images of each digit (from the matching MNIST split, in file-name order) are shuffled with a generator
seeded by (seed, digit) and dealt to that digit's recordings in sorted order, so every sample has its own image.
Texts come from a few templates ("seven", "the digit seven", ...), chosen by the same generator, or
(`--texts word`) are the digit's name alone; the images are the same either way.

`--train-per-cell` / `--test-per-cell` keep the first N takes of each (speaker, digit) cell: a small subset for
tests and the demo. Output: OUT/<split>/<digit>_<speaker>_<take>.{wav,png,txt}, OUT/triad.csv (key, image, audio,
text, split, label), OUT/README.md with sources and licences.

Inputs (read-only): ../shared/corpora/fsdd/recordings (CC BY-SA 4.0) and ../shared/corpora/mnist/mnist_png.tar.gz
(MNIST, commonly CC BY-SA 3.0). numpy only for the seeded shuffle.
"""
import argparse
import csv
import os
import shutil
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "../../../shared/corpora"))
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["{w}", "the digit {w}", "number {w}", "a spoken {w}", "this is {w}", "the number {w}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--fsdd", default=os.path.join(SHARED, "fsdd/recordings"))
    parser.add_argument("--mnist", default=os.path.join(SHARED, "mnist/mnist_png.tar.gz"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-cell", type=int, default=45, help="takes 5.. of each speaker and digit (max 45)")
    parser.add_argument("--test-per-cell", type=int, default=5, help="takes 0..4 of each speaker and digit (max 5)")
    parser.add_argument("--holdout", choices=["test", "val"], default="test")
    parser.add_argument("--texts", choices=["phrases", "word"], default="phrases",
                        help="phrases: one of a few templates per sample (default); word: the digit's name alone")
    args = parser.parse_args()

    recordings = sorted(f for f in os.listdir(args.fsdd) if f.endswith(".wav"))
    cells = {}
    for name in recordings:
        digit, speaker, take = name[:-4].split("_")
        cells.setdefault((int(digit), speaker), []).append(int(take))
    chosen = {"train": [], args.holdout: []}
    for (digit, speaker), takes in sorted(cells.items()):
        takes.sort()
        held = [t for t in takes if t < 5][: args.test_per_cell]
        train = [t for t in takes if t >= 5][: args.train_per_cell]
        chosen[args.holdout] += [(digit, speaker, t) for t in held]
        chosen["train"] += [(digit, speaker, t) for t in train]

    # MNIST images by (split, digit), in file-name order.
    images = {(split, d): [] for split in ("training", "testing") for d in range(10)}
    with tarfile.open(args.mnist, "r:gz") as archive:
        names = [m.name for m in archive.getmembers() if m.isfile() and m.name.endswith(".png")]
    for name in sorted(names, key=lambda n: (n.split("/")[1], int(n.split("/")[2]), int(n.split("/")[3][:-4]))):
        _, split, digit, _ = name.split("/")
        images[(split, int(digit))].append(name)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    rows = []
    wanted = {}  # MNIST member -> where its PNG goes
    templates = TEMPLATES if args.texts == "phrases" else ["{w}"]
    for split, items in chosen.items():
        mnist_split = "training" if split == "train" else "testing"
        os.makedirs(os.path.join(args.out, split), exist_ok=True)
        for digit in range(10):
            mine = sorted((s, t) for d, s, t in items if d == digit)
            rng = np.random.default_rng([args.seed, digit, 0 if split == "train" else 1])
            pool = images[(mnist_split, digit)]
            order = rng.permutation(len(pool))
            if len(mine) > len(pool):
                raise SystemExit(f"not enough MNIST {mnist_split} images of {digit}")
            for k, (speaker, take) in enumerate(mine):
                key = f"{digit}_{speaker}_{take}"
                base = os.path.join(args.out, split, key)
                shutil.copyfile(os.path.join(args.fsdd, key + ".wav"), base + ".wav")
                wanted[pool[order[k]]] = base + ".png"
                template = templates[int(rng.integers(len(templates)))]  # drawn either way: the same images
                with open(base + ".txt", "w") as f:
                    f.write(template.format(w=WORDS[digit]) + "\n")
                rows.append({"key": key, "image": f"{split}/{key}.png", "audio": f"{split}/{key}.wav",
                             "text": f"{split}/{key}.txt", "split": split, "label": digit})
    # One streaming pass over the archive (random access into a .tar.gz decompresses from the start each time).
    with tarfile.open(args.mnist, "r|gz") as archive:
        for member in archive:
            if member.name in wanted:
                with open(wanted[member.name], "wb") as f:
                    f.write(archive.extractfile(member).read())
    with open(os.path.join(args.out, "triad.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "image", "audio", "text", "split", "label"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["split"], r["key"])))
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(README.format(train=len(chosen["train"]), held=len(chosen[args.holdout]), holdout=args.holdout, seed=args.seed, texts=args.texts,
                              train_per_cell=args.train_per_cell, test_per_cell=args.test_per_cell))
    print(f"{args.out}: {len(chosen['train'])} train, {len(chosen[args.holdout])} {args.holdout} samples")


README = """# Spoken-digit triad

Made by `python3 tools/corpora/make_digit_triad.py` (seed {seed}, texts: {texts}, {train_per_cell} train and {test_per_cell}
held-out takes per speaker and digit): {train} train and {held} {holdout} samples. Each sample is one Free Spoken Digit Dataset recording
(`<digit>_<speaker>_<take>.wav`, 8 kHz mono), an MNIST image of the same digit (`.png`, 28x28 grey) and a short text
naming it (`.txt`); `triad.csv` lists them with their split and label (the digit) for `tessera ingest --manifest`.

Sources and licences:

- Free Spoken Digit Dataset, Jakobovski/free-spoken-digit-dataset @26eb9aa, CC BY-SA 4.0: the recordings, unchanged.
- MNIST (LeCun, Cortes, Burges), as PNGs from dokechin/mnist_png @cfa313d; no licence is stated in that repository,
  MNIST is commonly distributed under CC BY-SA 3.0. Images unchanged.
- The texts are written by the script.
"""

if __name__ == "__main__":
    main()
