#!/usr/bin/env python3
"""Makes a W1-like corpus with missing modalities and broken files of every kind, for checking ingest.

    python3 tools/bench/make_bad_corpus.py W1_DIR OUT_DIR [--fraction 0.05] [--seed 0]

Copies (hard-links) W1 and then, for a seeded `fraction` of the samples per kind:
  truncated      an image or WAV cut to a random fraction of its length
  zero-bytes     an image or WAV emptied
  random-bytes   an image or WAV replaced by random bytes
  wrong-ext      a WAV's bytes saved as .png (and the WAV removed), a JPEG's as .wav
  folder         a folder named like the sample's image (the image removed)
and drops a modality from another `fraction` of samples (image, audio or text). Prints the expected
counts as JSON: samples, bad_samples (samples with at least one broken file), missing (samples lacking a modality).
"""
import argparse, json, os, random, shutil


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    keys = sorted({os.path.splitext(n)[0] for n in os.listdir(a.src)})
    files = {}
    for name in sorted(os.listdir(a.src)):
        stem, ext = os.path.splitext(name)
        files.setdefault(stem, []).append(ext)
        shutil.copyfile(os.path.join(a.src, name), os.path.join(a.out, name))
    rng = random.Random(a.seed)
    order = keys[:]
    rng.shuffle(order)
    n = int(len(keys) * a.fraction)
    kinds = ["truncated", "zero-bytes", "random-bytes", "wrong-ext", "folder"]
    bad = {}
    pos = 0
    for kind in kinds:
        for key in order[pos:pos + n]:
            image = next(e for e in files[key] if e in (".jpg", ".png"))
            target = rng.choice([image, ".wav"]) if kind in ("truncated", "zero-bytes", "random-bytes") else None
            if kind == "truncated":
                p = os.path.join(a.out, key + target)
                data = open(p, "rb").read()
                open(p, "wb").write(data[: max(1, int(len(data) * rng.uniform(0.05, 0.7)))])
            elif kind == "zero-bytes":
                open(os.path.join(a.out, key + target), "wb").close()
            elif kind == "random-bytes":
                open(os.path.join(a.out, key + target), "wb").write(bytes(rng.getrandbits(8) for _ in range(4096)))
            elif kind == "wrong-ext":
                if rng.random() < 0.5:
                    os.rename(os.path.join(a.out, key + ".wav"), os.path.join(a.out, key + ".wav.tmp"))
                    os.remove(os.path.join(a.out, key + image))
                    os.rename(os.path.join(a.out, key + ".wav.tmp"), os.path.join(a.out, key + ".png"))
                    os.rename(os.path.join(a.out, key + ".png"), os.path.join(a.out, key + ".png"))
                else:
                    os.remove(os.path.join(a.out, key + ".wav"))
                    shutil.copyfile(os.path.join(a.src, key + image), os.path.join(a.out, key + ".wav"))
            else:
                os.remove(os.path.join(a.out, key + image))
                os.makedirs(os.path.join(a.out, key + image))
            bad[key] = kind
        pos += n
    missing = 0
    for key in order[pos:pos + n]:
        ext = rng.choice([e for e in files[key]])
        os.remove(os.path.join(a.out, key + ext))
        missing += 1
    print(json.dumps({"samples": len(keys), "bad_samples": len(bad), "missing": missing, "kinds": {k: n for k in kinds}}))


if __name__ == "__main__":
    main()
