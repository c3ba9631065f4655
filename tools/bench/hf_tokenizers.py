#!/usr/bin/env python3
"""Peer for `tessera bench text`: Hugging Face `tokenizers` on one thread over the same lines.

    RAYON_NUM_THREADS=1 python3 tools/bench/hf_tokenizers.py --tokenizer T.json --lines LINES.json [--min-seconds S]

Times a plain `encode` loop and one `encode_batch` over all lines (add_special_tokens=False), best of
passes lasting at least S seconds, after a warm-up pass. Prints JSON with tokens and seconds for each.
Pinned: tokenizers 0.23.3.
"""
import argparse, json, os, time
os.environ.setdefault("RAYON_NUM_THREADS", "1")
from tokenizers import Tokenizer


def best(fn, min_seconds):
    fn()
    times, total = [], 0.0
    while total < min_seconds or len(times) < 2:
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
        total += times[-1]
    return n, min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--lines", required=True)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    a = ap.parse_args()
    tok = Tokenizer.from_file(a.tokenizer)
    tok.no_truncation()
    tok.no_padding()
    lines = json.load(open(a.lines, encoding="utf-8"))
    loop_tokens, loop_s = best(lambda: sum(len(tok.encode(s, add_special_tokens=False).ids) for s in lines), a.min_seconds)
    batch_tokens, batch_s = best(lambda: sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False)), a.min_seconds)
    print(json.dumps({"tokens": loop_tokens, "encode_seconds": loop_s, "encode_batch_seconds": batch_s,
                      "encode_per_second": loop_tokens / loop_s, "encode_batch_per_second": batch_tokens / batch_s}))


if __name__ == "__main__":
    main()
