#!/usr/bin/env python3
"""Read Tessera datasets from Python: numpy + safetensors, and a PyTorch IterableDataset when torch is present.

    from tessera_reader import TesseraDataset
    ds = TesseraDataset("out/demo/dataset", split="train")          # checks every shard's SHA-256 on open
    for sample in ds.samples():                                     # dicts of numpy arrays + "key"
        ...
    for batch in ds.batches(64, normalize=True):                    # dicts of stacked arrays, floats normalised
        ...
    torch_ds = ds.torch(batch_size=64, shuffle=True, seed=0)        # torch.utils.data.IterableDataset

`normalize=True` applies the manifest's schema normalisation: (x * scale - mean[c]) / std[c] per channel (along the
schema's `axis`); the rows of an absent modality (mask 0) stay zeros, as in Tessera's loader.
Pinned for the tests: numpy 2.4.6, safetensors 0.8.0 (torch 2.13.0+cpu optional).
"""
import hashlib, json, os
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


class TesseraDataset:
    def __init__(self, folder, split="train", verify=True):
        self.folder = folder
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            self.manifest = json.load(f)
        if self.manifest.get("format") != "tessera-dataset":
            raise ValueError(f"{folder}: not a Tessera dataset")
        if split not in self.manifest["splits"]:
            raise KeyError(f"{folder}: no split {split!r} (have {sorted(self.manifest['splits'])})")
        self.split = split
        self.shards = self.manifest["splits"][split]["shards"]
        self.schema = self.manifest["schema"]
        if verify:
            for shard in self.shards:
                self._verify(shard)

    def _verify(self, shard):
        path = os.path.join(self.folder, shard["file"])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != shard["sha256"]:
            raise IOError(f"{path}: SHA-256 does not match the manifest (corrupted?)")

    def __len__(self):
        return sum(s["samples"] for s in self.shards)

    def shard_arrays(self, shard):
        """All tensors of one shard (leading axis N) and its sample keys."""
        path = os.path.join(self.folder, shard["file"])
        arrays = load_file(path)
        with safe_open(path, framework="np") as f:
            keys = json.loads(f.metadata()["keys"])
        return arrays, keys

    def normalize(self, name, array):
        """Applies the schema's normalisation to `name` (leading axis N); other tensors pass through."""
        norm = self.schema[name].get("normalize")
        if not norm:
            return array
        x = array.astype(np.float32) * np.float32(norm.get("scale", 1.0))
        mean = np.asarray(norm["mean"], np.float32)
        std = np.asarray(norm["std"], np.float32)
        # Channels run along the per-sample axis `axis` (0 for CHW images, 2 for HWC); +1 for the leading N.
        axis = norm.get("axis", 0) + 1
        shape = tuple(-1 if i == axis else 1 for i in range(x.ndim)) if len(mean) > 1 else (1,) * x.ndim
        return (x - mean.reshape(shape)) / std.reshape(shape)

    def normalize_all(self, arrays):
        """Normalises every tensor that has a normalisation; the rows of an absent modality (mask 0) stay
        zeros, as Tessera's loader delivers them."""
        out = {k: self.normalize(k, v) for k, v in arrays.items()}
        for name in out:
            modality = name.split("_")[0]
            mask = arrays.get("mask_" + modality)
            if self.schema[name].get("normalize") and mask is not None:
                out[name] = out[name] * (mask != 0).reshape((-1,) + (1,) * (out[name].ndim - 1)).astype(out[name].dtype)
        return out

    def samples(self, normalize=False):
        for shard in self.shards:
            arrays, keys = self.shard_arrays(shard)
            if normalize:
                arrays = self.normalize_all(arrays)
            for i, key in enumerate(keys):
                sample = {name: a[i] for name, a in arrays.items()}
                sample["key"] = key
                yield sample

    def batches(self, batch_size, normalize=False):
        buffer = []
        for sample in self.samples(normalize=normalize):
            buffer.append(sample)
            if len(buffer) == batch_size:
                yield _stack(buffer)
                buffer = []
        if buffer:
            yield _stack(buffer)

    def torch(self, batch_size=64, shuffle=False, seed=0, normalize=True):
        import torch

        dataset = self

        class _Iterable(torch.utils.data.IterableDataset):
            def __init__(self):
                self.epoch = 0

            def __iter__(self):
                order = list(range(len(dataset.shards)))
                if shuffle:
                    np.random.default_rng([seed, self.epoch]).shuffle(order)
                self.epoch += 1
                for index in order:
                    arrays, keys = dataset.shard_arrays(dataset.shards[index])
                    if normalize:
                        arrays = dataset.normalize_all(arrays)
                    for start in range(0, len(keys), batch_size):
                        yield {k: torch.from_numpy(np.ascontiguousarray(v[start:start + batch_size])) for k, v in arrays.items()}

        return _Iterable()


def _stack(samples):
    out = {k: np.stack([s[k] for s in samples]) for k in samples[0] if k != "key"}
    out["key"] = [s["key"] for s in samples]
    return out


if __name__ == "__main__":
    import sys
    ds = TesseraDataset(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "train")
    print(f"{len(ds)} samples in {len(ds.shards)} shards; tensors: {', '.join(ds.schema)}")
