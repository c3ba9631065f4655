#!/usr/bin/env python3
"""The PyTorch twin of a Tessera joint autoencoder, built from the same model file (RUN/model.json, or
`tessera train DATASET --print-model m1`), with the same parameter names and layouts, so weights move both ways.

    # PyTorch's own initialisation -> a file `tessera train --init FILE` starts from
    python3 tools/train/tessera_twin.py export-init MODEL.json DATASET FILE.safetensors [--seed 0]
    # Tessera's initialisation (--seed N) re-created in numpy (SplitMix64, the same draws in the same order)
    python3 tools/train/tessera_twin.py tessera-init MODEL.json DATASET FILE.safetensors --seed N
    # train the twin from a weights file on the same batches as `tessera train --shuffle none`; print the losses
    python3 tools/train/tessera_twin.py train MODEL.json DATASET --init FILE --steps 10 --batch-size 8 [--lr 1e-3]
    # train the twin like `tessera train` (shuffled epochs, modality dropout) into a run folder `tessera eval` reads
    python3 tools/train/tessera_twin.py fit MODEL.json DATASET RUN --epochs 20 --modality-dropout 0.5 [--seed 0]
    # load Tessera's weights (RUN/weights.safetensors) into the twin and compare codes with `tessera encode`
    # (of the split and from the modalities the codes file names)
    python3 tools/train/tessera_twin.py check-codes MODEL.json DATASET RUN/weights.safetensors CODES.safetensors

Pinned: torch 2.13.0+cpu, numpy 2.4.6, safetensors 0.8.0. Reads shards with tools/python/tessera_reader.py.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../python"))
from tessera_reader import TesseraDataset  # noqa: E402

ORDER = ["image", "audio", "text"]


class MaskedMeanEmbedding(nn.Module):
    """Mean of the embedding rows of the first `length` ids; ids outside the vocabulary count as padding."""

    def __init__(self, vocabulary, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocabulary, dim).normal_())

    def forward(self, ids, lengths):
        vocabulary = self.weight.shape[0]
        positions = torch.arange(ids.shape[1])[None, :]
        valid = (positions < lengths[:, None]) & (ids >= 0) & (ids < vocabulary)
        rows = F.embedding(ids.clamp(0, vocabulary - 1), self.weight) * valid[..., None].float()
        return rows.sum(1) / valid.sum(1, keepdim=True).clamp(min=1).float()


class Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape((x.shape[0],) + tuple(self.shape))


def build_layers(specs, shape, vocabulary):
    """nn.Sequential of a Tessera layer list; returns it and the output shape per sample."""
    layers = []
    for spec in specs:
        if isinstance(spec, str):
            if spec == "flatten":
                layers.append(nn.Flatten(1))
                shape = [int(np.prod(shape))]
            else:
                layers.append({"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(),
                               "identity": nn.Identity()}[spec])
            continue
        (kind, body), = spec.items()
        if kind == "conv2d":
            k, s, p = body["kernel"], body.get("stride", 1), body.get("padding", 0)
            layers.append(nn.Conv2d(shape[0], body["out"], k, s, p))
            shape = [body["out"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif kind == "conv_transpose2d":
            k, s, p, op = body["kernel"], body.get("stride", 1), body.get("padding", 0), body.get("output_padding", 0)
            op_h, op_w = (op, op) if isinstance(op, int) else op  # one number, or [height, width]
            layers.append(nn.ConvTranspose2d(shape[0], body["out"], k, s, p, output_padding=(op_h, op_w)))
            shape = [body["out"], (shape[1] - 1) * s - 2 * p + k + op_h, (shape[2] - 1) * s - 2 * p + k + op_w]
        elif kind == "maxpool":
            k = body["kernel"]
            s = body.get("stride", k)
            layers.append(nn.MaxPool2d(k, s))
            shape = [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]
        elif kind == "upsample":
            layers.append(nn.Upsample(scale_factor=body["scale"], mode="nearest"))
            shape = [shape[0], shape[1] * body["scale"], shape[2] * body["scale"]]
        elif kind == "linear":
            out = body["out"] if isinstance(body, dict) else body
            layers.append(nn.Linear(shape[-1], out))
            shape = shape[:-1] + [out]
        elif kind == "embedding":
            size = body.get("vocabulary", 0) or vocabulary
            layers.append(MaskedMeanEmbedding(size, body["dim"]))
            shape = [body["dim"]]
        elif kind == "reshape":
            target = body["shape"] if isinstance(body, dict) else body
            layers.append(Reshape(target))
            shape = list(target)
        else:
            raise ValueError(f"unknown layer {kind}")
    return nn.Sequential(*layers), shape


class Twin(nn.Module):
    """The joint autoencoder of a Tessera model file, for a dataset's input shapes."""

    def __init__(self, spec, schema):
        super().__init__()
        self.spec = spec
        self.names = [n for n in ORDER if n in spec["modalities"]]
        self.fusion_kind = spec.get("fusion", "concat")
        self.inputs = {}
        self.channels_last = set()
        widths = {}
        for name in self.names:
            m = spec["modalities"][name]
            tensor = m.get("input", {"image": "image", "audio": "audio_mel", "text": "text_ids"}[name])
            vocabulary = schema[tensor].get("tokenizer", {}).get("vocabularySize", 0)
            shape = list(schema[tensor]["shape"])
            if schema[tensor].get("layout") == "hwc" and len(shape) == 3:  # the model sees [C, H, W], as Tessera's does
                shape = [shape[2], shape[0], shape[1]]
                self.channels_last.add(tensor)
            self.inputs[name] = (tensor, shape, vocabulary, m)
        # "scale": "unit" (seed-conv): the model sees and reconstructs pixel values in [0, 1], the stored
        # normalisation undone per channel (U8 images: "normalize"; F32 images: the "mean"/"std" applied).
        self.unit = {}
        for name in self.names:
            tensor, shape, _, m = self.inputs[name]
            if m.get("scale", "normalized") == "unit":
                norm = schema[tensor].get("normalize") or schema[tensor]
                mean, std = np.array(norm["mean"], np.float32), np.array(norm["std"], np.float32)
                view = (1, -1) + (1,) * (len(shape) - 1)
                self.unit[tensor] = (torch.from_numpy(mean).reshape(view), torch.from_numpy(std).reshape(view))
        self.encoders = nn.ModuleDict()
        for name in self.names:
            tensor, shape, vocabulary, m = self.inputs[name]
            self.encoders[name], out = build_layers(m["encoder"], list(shape), vocabulary)
            widths[name] = out
        if self.fusion_kind == "concat":
            self.fusion = nn.Linear(sum(int(np.prod(widths[n])) for n in self.names), spec["code"])
        elif self.fusion_kind == "mean":
            self.fusion = nn.ModuleDict({n: nn.Linear(int(np.prod(widths[n])), spec["code"]) for n in self.names})
        if self.fusion_kind != "none":
            self.shared = nn.Linear(spec["code"], spec["shared_width"] * len(self.names))
            part = [spec["shared_width"]]
        else:
            part = widths[self.names[0]]
        self.decoders = nn.ModuleDict()
        for name in self.names:
            tensor, shape, vocabulary, m = self.inputs[name]
            self.decoders[name], _ = build_layers(m["decoder"], list(part), vocabulary)

    def state_dict_tessera(self):
        """Parameter names as Tessera writes them: image.encoder.0.weight, fusion.weight, shared.bias, ..."""
        out = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] in ("encoders", "decoders"):
                key = ".".join([parts[1], parts[0][:-1]] + parts[2:])
            out[key] = value
        return out

    def load_tessera(self, weights):
        mapped = {}
        for key in self.state_dict():
            parts = key.split(".")
            name = ".".join([parts[1], parts[0][:-1]] + parts[2:]) if parts[0] in ("encoders", "decoders") else key
            mapped[key] = torch.from_numpy(np.ascontiguousarray(weights[name]))
        self.load_state_dict(mapped)

    def model_scale(self, batch):
        """The batch as the model reads it: channels-last images made channels-first, unit-scale inputs mapped
        back to [0, 1]."""
        out = dict(batch)
        for tensor in self.channels_last:
            out[tensor] = batch[tensor].permute(0, 3, 1, 2).contiguous()
        for tensor, (mean, std) in self.unit.items():
            out[tensor] = batch[tensor] * std + mean
        return out

    def forward(self, batch, visible):
        batch = self.model_scale(batch)
        hs = {}
        for name in self.names:
            tensor, shape, vocabulary, m = self.inputs[name]
            encoder = self.encoders[name]
            if name == "text" and isinstance(encoder[0], MaskedMeanEmbedding):
                h = encoder[0](batch["text_ids"].long(), batch["text_len"].long())
                for layer in encoder[1:]:
                    h = layer(h)
            else:
                h = encoder(batch[tensor])
            hs[name] = h
        if self.fusion_kind == "none":
            z = hs[self.names[0]]
            parts = {self.names[0]: z}
        else:
            if self.fusion_kind == "concat":
                z = self.fusion(torch.cat([hs[n] * visible[n][:, None] for n in self.names], 1))
            else:
                zs = [self.fusion[n](hs[n]) * visible[n][:, None] for n in self.names]
                count = sum(visible[n] for n in self.names).clamp(min=1)[:, None]
                z = sum(zs) / count
            s = F.relu(self.shared(z)) if self.spec.get("shared_activation", "relu") == "relu" else self.shared(z)
            w = self.spec["shared_width"]
            parts = {n: s[:, i * w:(i + 1) * w] for i, n in enumerate(self.names)}
        return z, {n: self.decoders[n](parts[n]) for n in self.names}

    def losses(self, batch, recon, present):
        batch = self.model_scale(batch)
        out = {}
        for name in self.names:
            tensor, shape, vocabulary, m = self.inputs[name]
            if m.get("loss", "cross_entropy" if name == "text" else "mse") == "mse":
                weights = present[name]
                n = weights.sum()
                if n == 0:
                    continue
                d = (recon[name] - batch[tensor]).flatten(1)
                out[name] = ((d * d).sum(1) * weights).sum() / (n * d.shape[1])
            else:
                logits = recon[name]
                length = logits.shape[1]
                valid = (torch.arange(length)[None, :] < batch["text_len"].long()[:, None]) & (present[name][:, None] > 0)
                valid &= batch["text_ids"].long() < logits.shape[2]
                if valid.sum() == 0:
                    continue
                out[name] = F.cross_entropy(logits[valid], batch["text_ids"].long()[valid])
        return out


class SplitMix64:
    """Tessera's SeededRandom: SplitMix64, nextUnit, Box-Muller nextGaussian."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = seed & self.MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) * 2.0 ** -53

    def gaussian(self):
        u1 = self.unit()
        while u1 <= 0:
            u1 = self.unit()
        u2 = self.unit()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def tessera_init(twin, seed):
    """The weights `tessera train --seed SEED` starts from: PyTorch's default distributions drawn from Tessera's
    generator, layer by layer: encoders (image, audio, text), fusion, shared, decoders; weight then bias."""
    rng = SplitMix64(seed)
    weights = {}

    def uniform(shape, bound):
        n = int(np.prod(shape))
        return np.array([(rng.unit() * 2 - 1) * bound for _ in range(n)], dtype=np.float64).astype(np.float32).reshape(shape)

    def layer(module, prefix):
        if isinstance(module, MaskedMeanEmbedding):
            shape = tuple(module.weight.shape)
            weights[prefix + ".weight"] = np.array([rng.gaussian() for _ in range(int(np.prod(shape)))]).astype(np.float32).reshape(shape)
            return
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = module.weight
            if isinstance(module, nn.Linear):
                fan_in = w.shape[1]
            else:
                fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            bound = 1 / math.sqrt(fan_in)
            weights[prefix + ".weight"] = uniform(tuple(w.shape), bound)
            weights[prefix + ".bias"] = uniform(tuple(module.bias.shape), bound)

    for name in twin.names:
        for i, module in enumerate(twin.encoders[name]):
            layer(module, f"{name}.encoder.{i}")
    if twin.fusion_kind == "concat":
        layer(twin.fusion, "fusion")
    elif twin.fusion_kind == "mean":
        for name in twin.names:
            layer(twin.fusion[name], f"fusion.{name}")
    if twin.fusion_kind != "none":
        layer(twin.shared, "shared")
    for name in twin.names:
        for i, module in enumerate(twin.decoders[name]):
            layer(module, f"{name}.decoder.{i}")
    return weights


def batches(dataset, split, batch_size):
    """The batches `tessera train --shuffle none` sees: shards and rows in manifest order, the last partial
    batch of each epoch dropped, normalised, absent modalities' rows zero."""
    ds = TesseraDataset(dataset, split)
    while True:
        rows = []
        for shard in ds.shards:
            arrays, keys = ds.shard_arrays(shard)
            arrays = ds.normalize_all(arrays)
            for i in range(len(keys)):
                rows.append({k: v[i] for k, v in arrays.items()})
                if len(rows) == batch_size:
                    yield {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}
                    rows = []


def fit(twin, spec, args):
    """Adam on shuffled epochs of the train split (the last partial batch dropped), with modality dropout as
    `tessera train` does it: per sample with two or more present modalities, with probability p, a uniformly
    chosen non-empty proper subset stays visible. Writes RUN/weights.safetensors and RUN/model.json."""
    import itertools
    import time
    torch.set_num_threads(args.threads)
    ds = TesseraDataset(args.dataset, "train")
    columns = {}
    for shard in ds.shards:
        arrays, _ = ds.shard_arrays(shard)
        for k, v in ds.normalize_all(arrays).items():
            columns.setdefault(k, []).append(v)
    data = {k: torch.from_numpy(np.concatenate(v)) for k, v in columns.items()}
    count = len(next(iter(data.values())))
    present_all = {n: data["mask_" + n].float() if "mask_" + n in data else torch.ones(count) for n in twin.names}
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(twin.parameters(), lr=args.lr)
    names = twin.names
    started = time.time()
    for epoch in range(args.epochs):
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - args.batch_size + 1, args.batch_size):
            index = order[start:start + args.batch_size]
            batch = {k: v[index] for k, v in data.items()}
            present = {n: present_all[n][index] for n in names}
            visible = {n: present[n].clone() for n in names}
            draws = torch.rand(len(index), generator=generator)
            for b in range(len(index)):
                shown = [n for n in names if present[n][b] > 0]
                if len(shown) < 2 or draws[b] >= args.modality_dropout:
                    continue
                subsets = [c for r in range(1, len(shown)) for c in itertools.combinations(shown, r)]
                keep = subsets[int(torch.randint(len(subsets), (1,), generator=generator))]
                for n in shown:
                    visible[n][b] = 1.0 if n in keep else 0.0
            optimizer.zero_grad()
            _, recon = twin(batch, visible)
            total = sum(twin.losses(batch, recon, present).values())
            total.backward()
            optimizer.step()
        print(json.dumps({"epoch": epoch + 1, "loss": float(total.detach()), "seconds": round(time.time() - started, 1)}), flush=True)
    os.makedirs(args.out, exist_ok=True)
    weights = {k: v.detach().numpy().copy() for k, v in twin.state_dict_tessera().items()}
    save_file(weights, os.path.join(args.out, "weights.safetensors"), metadata={"format": "tessera-weights", "model": json.dumps(spec)})
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(spec, f, indent=2)


def load_spec_and_schema(model_path, dataset):
    with open(model_path) as f:
        spec = json.load(f)
    with open(os.path.join(dataset, "manifest.json")) as f:
        schema = json.load(f)["schema"]
    return spec, schema


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export-init", "tessera-init"):
        p = sub.add_parser(name)
        p.add_argument("model")
        p.add_argument("dataset")
        p.add_argument("out")
        p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("train")
    p.add_argument("model")
    p.add_argument("dataset")
    p.add_argument("--init", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("fit")
    p.add_argument("model")
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--modality-dropout", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("check-codes")
    p.add_argument("model")
    p.add_argument("dataset")
    p.add_argument("weights")
    p.add_argument("codes")
    p.add_argument("--split", help="the split the codes are of (default: the one the codes file names)")
    args = parser.parse_args()

    spec, schema = load_spec_and_schema(args.model, args.dataset)
    torch.manual_seed(getattr(args, "seed", 0))
    twin = Twin(spec, schema)
    if args.command == "export-init":
        save_file({k: v.detach().numpy().copy() for k, v in twin.state_dict_tessera().items()}, args.out)
        print(f"{args.out}: PyTorch's initialisation of {spec.get('name')} (seed {args.seed})")
    elif args.command == "tessera-init":
        save_file(tessera_init(twin, args.seed), args.out)
        print(f"{args.out}: Tessera's initialisation of {spec.get('name')} (seed {args.seed})")
    elif args.command == "train":
        torch.set_num_threads(args.threads)
        twin.load_tessera(load_file(args.init))
        optimizer = torch.optim.Adam(twin.parameters(), lr=args.lr)
        records = []
        for step, batch in zip(range(args.steps), batches(args.dataset, "train", args.batch_size)):
            present = {n: batch["mask_" + n].float() if "mask_" + n in batch else torch.ones(args.batch_size) for n in twin.names}
            optimizer.zero_grad()
            _, recon = twin(batch, present)
            parts = twin.losses(batch, recon, present)
            total = sum(parts.values())
            total.backward()
            optimizer.step()
            records.append({"step": step + 1, "loss": float(total.detach()), **{f"loss_{k}": float(v.detach()) for k, v in parts.items()}})
            if not args.json:
                print(json.dumps(records[-1]))
        if args.json:
            print(json.dumps(records))
    elif args.command == "fit":
        fit(twin, spec, args)
    elif args.command == "check-codes":
        twin.load_tessera(load_file(args.weights))
        codes = load_file(args.codes)["code"]
        with safe_open(args.codes, "np") as f:
            meta = f.metadata() or {}
        # The codes file names its split and the modalities its codes were computed from (`tessera encode`).
        split = args.split or meta.get("split", "train")
        visible = set(meta.get("modalities", ",".join(twin.names)).split(","))
        ds = TesseraDataset(args.dataset, split)
        got = []
        with torch.no_grad():
            for shard in ds.shards:
                arrays, _ = ds.shard_arrays(shard)
                arrays = ds.normalize_all(arrays)
                batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
                n = len(next(iter(arrays.values())))
                present = {name: batch["mask_" + name].float() if "mask_" + name in batch else torch.ones(n) for name in twin.names}
                present = {name: mask if name in visible else torch.zeros(n) for name, mask in present.items()}
                z, _ = twin(batch, present)
                got.append(z.numpy())
        got = np.concatenate(got)
        if got.shape != codes.shape:
            sys.exit(f"{args.codes}: {codes.shape[0]} codes, but the {split} split has {got.shape[0]} samples (--split names another)")
        error = np.abs(got - codes).max() / max(np.abs(codes).max(), 1e-12)
        print(f"codes of {len(got)} samples: largest difference {error:.2e} of the largest code value")
        sys.exit(0 if error < 1e-4 else 1)


if __name__ == "__main__":
    main()
