#!/usr/bin/env python3
"""Peer for `tessera bench ingest`: the W1 ingest written the way a Python user would, with the same
transforms, as a baseline in the same run.

    python3 tools/bench/python_ingest.py DIR --tokenizer T.json --out OUT [--processes 2] [--shard-size 256]

Per sample (a multiprocessing Pool of N processes, ordered imap): Pillow (open, draft("RGB", (64, 64)) for
JPEGs, convert, BILINEAR resize of the shorter side to 64, centre crop, CHW uint8), soundfile (read),
numpy mean (mono), soxr.resample(..., 16000, "HQ"), crop/pad to 16,000 samples, librosa melspectrogram
(n_fft 512, hop 250, 64 mels, fmax 8000) and log(x + 1e-6), tokenizers (encode, truncate/pad to 32).
Shards of 256 batched samples with safetensors.numpy.save_file, fsync'd; a JSON manifest with SHA-256
checksums. Prints JSON: samples, seconds, samples_per_second, peak_rss_bytes (the largest process).
Pinned: pillow 13.0.0, soundfile 0.14.0, soxr 1.1.0, librosa 0.11.0, tokenizers 0.23.3, numpy 2.4.6,
safetensors 0.8.0. One BLAS/OpenMP thread per process.
"""
import argparse, hashlib, json, os, resource, time
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(var, "1")
from multiprocessing import Pool
import numpy as np

TOKENIZER = None


def init(tokenizer_path):
    global TOKENIZER
    from tokenizers import Tokenizer
    import librosa, soxr, soundfile  # noqa: F401  (loaded once per worker)
    TOKENIZER = Tokenizer.from_file(tokenizer_path)
    TOKENIZER.no_truncation()
    TOKENIZER.no_padding()


def sample(job):
    from PIL import Image
    import soundfile as sf, soxr, librosa
    key, files = job
    out = {}
    try:
        im = Image.open(files["image"])
        if im.format == "JPEG":
            im.draft("RGB", (64, 64))
        im = im.convert("RGB")
        w, h = im.size
        rw, rh = (64, max(64, h * 64 // w)) if w <= h else (max(64, w * 64 // h), 64)
        im = im.resize((rw, rh), Image.BILINEAR)
        x0, y0 = (rw - 64) // 2, (rh - 64) // 2
        out["image"] = np.ascontiguousarray(np.asarray(im.crop((x0, y0, x0 + 64, y0 + 64))).transpose(2, 0, 1))
        y, sr = sf.read(files["audio"], dtype="float32")
        if y.ndim == 2:
            y = y.mean(axis=1).astype(np.float32)
        y = soxr.resample(y, sr, 16000, quality="HQ")
        y = y[:16000] if len(y) >= 16000 else np.concatenate([y, np.zeros(16000 - len(y), np.float32)])
        m = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=250, window="hann", center=True,
                                           pad_mode="constant", power=2.0, n_mels=64, fmin=0, fmax=8000)
        out["audio_mel"] = np.log(m + 1e-6).astype(np.float32)
        with open(files["text"], encoding="utf-8") as f:
            ids = TOKENIZER.encode(f.read(), add_special_tokens=False).ids[:32]
        out["text_len"] = np.int32(len(ids))
        out["text_ids"] = np.array(ids + [0] * (32 - len(ids)), np.int32)
    except Exception as e:  # a bad sample is skipped, as Tessera skips it
        return key, None, str(e)
    return key, out, None


def write_shard(path, batch):
    from safetensors.numpy import save_file
    arrays = {name: np.ascontiguousarray(np.stack([s[name] for _, s in batch])) for name in batch[0][1]}
    tmp = path + ".tmp"
    save_file(arrays, tmp, metadata={"keys": json.dumps([k for k, _ in batch])})
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    h = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return {"file": os.path.basename(path), "samples": len(batch), "sha256": h}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=256)
    a = ap.parse_args()
    t0 = time.perf_counter()
    groups = {}
    for name in sorted(os.listdir(a.folder)):
        stem, ext = os.path.splitext(name)
        kind = {".jpg": "image", ".png": "image", ".wav": "audio", ".txt": "text"}.get(ext.lower())
        if kind:
            groups.setdefault(stem, {})[kind] = os.path.join(a.folder, name)
    jobs = sorted(groups.items())
    os.makedirs(a.out, exist_ok=True)
    shards, batch, failed = [], [], 0
    with Pool(a.processes, initializer=init, initargs=(a.tokenizer,)) as pool:
        for key, out, err in pool.imap(sample, jobs, chunksize=8):
            if out is None:
                failed += 1
                continue
            batch.append((key, out))
            if len(batch) == a.shard_size:
                shards.append(write_shard(os.path.join(a.out, f"shard-{len(shards):06d}.safetensors"), batch))
                batch = []
        if batch:
            shards.append(write_shard(os.path.join(a.out, f"shard-{len(shards):06d}.safetensors"), batch))
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump({"shards": shards, "failed": failed}, f)
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children) * 1024
    print(json.dumps({"samples": len(jobs), "seconds": seconds, "samples_per_second": len(jobs) / seconds, "peak_rss_bytes": rss}))


if __name__ == "__main__":
    main()
