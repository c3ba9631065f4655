#!/usr/bin/env python3
"""Peer for `tessera bench audio`: the Python audio pipeline (soundfile + soxr + librosa), timed alike.

    python3 tools/bench/python_audio.py --list FILES.txt --processes N --mode decode|resample|mel [--min-seconds S]

decode    soundfile.read(f, dtype="float32")                              (whole file)
resample  + mean over channels + soxr.resample(..., 16000, quality="HQ")   (whole file)
mel       + crop/pad to 16000 samples + librosa.feature.melspectrogram (W1 settings) + log(x + 1e-6)
N processes (a pre-started multiprocessing Pool) share the files; one warm-up pass, then passes until S
seconds; prints JSON {"files", "audio_seconds", "seconds", "per_second"} for the best pass.
Pinned: soundfile 0.14.0, soxr 1.1.0, librosa 0.11.0, numpy 2.4.6.
"""
import argparse, json, os, time
# One thread per process, as each process is one worker: BLAS/OpenMP pools inside every worker would
# oversubscribe the cores (measured: 2 processes x default threads ran 4x slower than 1 process).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")
from multiprocessing import Pool
import numpy as np
import soundfile as sf

MODE = None


def init(mode):
    global MODE
    MODE = mode
    import soxr, librosa  # noqa: F401  (imported once per worker, outside the timing)


def work(path):
    y, sr = sf.read(path, dtype="float32")
    seconds = len(y) / sr
    if MODE == "decode":
        return seconds
    import soxr
    if y.ndim == 2:
        y = y.mean(axis=1).astype(np.float32)
    y = soxr.resample(y, sr, 16000, quality="HQ")
    if MODE == "resample":
        return seconds
    import librosa
    y = y[:16000] if len(y) >= 16000 else np.concatenate([y, np.zeros(16000 - len(y), np.float32)])
    m = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=250, window="hann", center=True,
                                       pad_mode="constant", power=2.0, n_mels=64, fmin=0, fmax=8000)
    np.log(m + 1e-6)
    return seconds


def chunk(paths):
    return sum(work(p) for p in paths), len(paths)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", required=True)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--mode", choices=["decode", "resample", "mel"], default="mel")
    ap.add_argument("--min-seconds", type=float, default=1.5)
    a = ap.parse_args()
    files = [l.strip() for l in open(a.list) if l.strip()]
    jobs = [files[i:i + 16] for i in range(0, len(files), 16)]
    init(a.mode)
    with Pool(a.processes, initializer=init, initargs=(a.mode,)) as pool:
        def one_pass():
            t = time.perf_counter()
            results = list(pool.imap_unordered(chunk, jobs)) if a.processes > 1 else [chunk(j) for j in jobs]
            return sum(r[0] for r in results), sum(r[1] for r in results), time.perf_counter() - t
        one_pass()
        best = None
        total, passes = 0.0, 0
        while (total < a.min_seconds or passes < 2) and passes < 20:
            audio, n, t = one_pass()
            if best is None or t < best[2]:
                best = (audio, n, t)
            total, passes = total + t, passes + 1
    audio, n, t = best
    print(json.dumps({"files": n, "audio_seconds": audio, "seconds": t, "per_second": n / t}))


if __name__ == "__main__":
    main()
