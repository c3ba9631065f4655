#!/usr/bin/env python3
"""The PyTorch peer of `tessera bench train`: W2 (model M1 on W1 shards, batch 64, Adam 1e-3, all modalities,
no dropout) with PyTorch on the CPU, the model built by tools/train/tessera_twin.py from the same model file.

    python3 tools/bench/pytorch_train.py MODEL.json SHARDS --threads 2 --steps 30 [--fused]

Batches are read and normalised before timing starts (the peer is timed on training alone, which favours it);
steady state is timed after 5 warm-up steps. Prints one JSON object: samples/s, peak RSS (this process),
torch version. Run it under `LD_PRELOAD=libjemalloc.so.2` with `--fused` for the tuned variant.
Pinned: torch 2.13.0+cpu, numpy 2.4.6, safetensors 0.8.0.
"""
import argparse, json, os, resource, sys, time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../train"))
from tessera_twin import Twin, batches, load_spec_and_schema  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("shards")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--fused", action="store_true", help="torch.optim.Adam(fused=True)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec, schema = load_spec_and_schema(args.model, args.shards)
    twin = Twin(spec, schema)
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3, fused=True) if args.fused else torch.optim.Adam(twin.parameters(), lr=1e-3)
    total = args.warmup + args.steps
    data = []
    for batch in batches(args.shards, "train", args.batch_size):
        data.append(batch)
        if len(data) == total:
            break
    start = None
    for step, batch in enumerate(data):
        if step == args.warmup:
            start = time.perf_counter()
        present = {n: batch["mask_" + n].float() for n in twin.names}
        optimizer.zero_grad(set_to_none=True)
        _, recon = twin(batch, present)
        loss = sum(twin.losses(batch, recon, present).values())
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    print(json.dumps({"samples_per_second": args.steps * args.batch_size / seconds, "steps": args.steps, "seconds": seconds,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "torch": torch.__version__,
                      "threads": args.threads, "fused": args.fused, "allocator": "jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "") else "glibc"}))


if __name__ == "__main__":
    main()
