#!/usr/bin/env python3
"""Reads every audio file of the third-party corpora with Tessera and with soundfile and compares the samples.

    python3 tools/conformance/audio_corpora.py [--tessera .build/release/tessera] [--corpora ../shared/corpora]
                                               [--markdown docs/AUDIO-CONFORMANCE.md]

Files: everything in wav_*/ and fsdd/ (audio or not). Tessera: `tessera decode F --audio-rate 0
--audio-samples 0 --mel-bins 0 --audio-channels keep --out X` (native rate, every channel, whole file);
soundfile 0.14.0: `sf.read(F, dtype="float32", always_2d=True)`. Samples must be identical.
Exits 1 on any crash, hang or sample difference.
"""
import argparse, collections, os, subprocess, sys, tempfile
import numpy as np
import soundfile as sf
from safetensors.numpy import load_file

SKIP = {"SOURCE.txt", "CHECK.txt", "CHECK.tsv", "README.fsdd.md", "speakers.json", "EXPECTED_FAIL.tsv", "MANIFEST.tsv"}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", default=os.path.join(here, "../../.build/release/tessera"))
    ap.add_argument("--corpora", default=os.path.join(here, "../../../shared/corpora"))
    ap.add_argument("--markdown")
    a = ap.parse_args()
    files = []
    for corpus in sorted(os.listdir(a.corpora)):
        if corpus.startswith("wav_") or corpus == "fsdd":
            for root, _, names in os.walk(os.path.join(a.corpora, corpus)):
                files += [os.path.join(root, n) for n in sorted(names) if n not in SKIP and not n.startswith("LICENSE")]
    counts, rows, fatal = collections.Counter(), [], 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.safetensors")
        for path in files:
            rel = os.path.relpath(path, a.corpora)
            try:
                ref, ref_err = sf.read(path, dtype="float32", always_2d=True)[0], None
            except Exception as e:
                ref, ref_err = None, f"{type(e).__name__}: {e}".replace(path, rel)
            args = [a.tessera, "decode", path, "--audio-rate", "0", "--audio-samples", "0", "--mel-bins", "0",
                    "--audio-channels", "keep", "--out", out]
            try:
                r = subprocess.run(args, capture_output=True, text=True, timeout=30)
                truncated = r.returncode == 1 and ": truncated:" in r.stderr
                if truncated:  # refused by default; read what is there and compare that
                    r = subprocess.run(args + ["--audio-accept-truncated"], capture_output=True, text=True, timeout=30)
            except subprocess.TimeoutExpired:
                fatal += 1
                rows.append((rel, "HANG", "", ""))
                continue
            if r.returncode < 0:
                fatal += 1
                rows.append((rel, f"CRASH (signal {-r.returncode})", "", ""))
                continue
            err = r.stderr.strip().split(": ", 2)[-1] if r.returncode else None
            if ref is not None and err is None:
                got = load_file(out)["audio"].T
                if got.shape == ref.shape and np.array_equal(got, ref):
                    if truncated:
                        counts["truncated: refused by default; --audio-accept-truncated gives identical samples"] += 1
                        rows.append((rel, "truncated (refused by default)", "identical with --audio-accept-truncated", "read"))
                    else:
                        counts["identical samples"] += 1
                else:
                    fatal += 1
                    counts["DIFFERENT samples"] += 1
                    rows.append((rel, "different samples", str(got.shape), str(ref.shape)))
            elif ref is None and err is not None:
                counts["refused by both"] += 1
                rows.append((rel, "refused by both", err, ref_err))
            elif ref is None:
                counts["Tessera reads, soundfile refuses"] += 1
                rows.append((rel, "Tessera reads, soundfile refuses", "read", ref_err))
            else:
                counts["Tessera refuses, soundfile reads"] += 1
                rows.append((rel, "Tessera refuses, soundfile reads", err, "read"))
    print(f"{len(files)} files")
    for k, v in counts.most_common():
        print(f"  {v:5d}  {k}")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("# Audio conformance against soundfile\n\n")
            f.write("Made by `python3 tools/conformance/audio_corpora.py --markdown docs/AUDIO-CONFORMANCE.md` (release build) "
                    "over every file of `../shared/corpora/wav_*` and `../shared/corpora/fsdd`. Tessera reads with "
                    "`--audio-rate 0 --audio-samples 0 --mel-bins 0 --audio-channels keep` (no resampling, every channel, "
                    "the whole file); the reference is soundfile 0.14.0 (`sf.read(dtype=\"float32\", always_2d=True)`).\n\n")
            f.write(f"{len(files)} files; {'no crash, no hang, no difference' if not fatal else str(fatal) + ' PROBLEMS'}. "
                    "A file whose header declares more audio data than it holds is refused by default as truncated "
                    "(soundfile reads what is there); with `--audio-accept-truncated` Tessera reads the same samples.\n\n")
            f.write("| outcome | files |\n| --- | ---: |\n")
            for k, v in counts.most_common():
                f.write(f"| {k} | {v} |\n")
            f.write("\n## Every file not read by both\n\n| file | outcome | Tessera | soundfile |\n| --- | --- | --- | --- |\n")
            for rel, kind, t, p in rows:
                f.write(f"| `{rel}` | {kind} | {t.replace('|', '/')} | {p.replace('|', '/')} |\n")
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
