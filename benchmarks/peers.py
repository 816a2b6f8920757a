"""Seconds per epoch against the peer VAEs: pythae's VAE and ctgan's TVAE.

All three train the same architecture (ReLU MLP encoder 256-128, mirrored decoder,
``--n-components`` latents), with Adam at 1e-3 and the same batch size, on the same
rows, in one process, one after the other. The peers' epochs are timed from inside
their own training loop (a hook on TVAE's epoch iterator, a pythae callback):
the median of epochs 2 to ``--epochs``. skvae is timed through its public API
only, from whole ``fit`` calls (``common.fit_epoch_seconds``): fits of
``--epochs`` epochs and of one epoch differ by ``--epochs`` - 1 epochs of
training, the rest of a fit being the same work. Preprocessing (TVAE's
per-column Gaussian mixtures, skvae's column codec and PCA start) is reported
apart as set-up time (skvae: its first one-epoch fit less one epoch). All three
train on every row, without a validation pass (skvae with
``early_stopping=False``), and skvae runs first in the process, so its set-up
time includes PyTorch's first-call warm-up.

The peers pin older pandas, so this runs in its own environment (``make peers``
creates ``.venv-peers``) and never touches the package's test environment.

Run::

    make peers            # or: .venv-peers/bin/python benchmarks/peers.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    environment,
    fit_epoch_seconds,
    load_features,
    markdown_table,
    save_results,
)

HIDDEN = (256, 128)


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers with a ReLU after each (as skvae's hidden layers are built)."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class EpochClock:
    """Collects the wall time of each epoch from calls at each epoch's start."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.start = time.perf_counter()

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    def per_epoch(self, end: float) -> tuple[float, float]:
        """Return (median seconds per epoch, seconds before the first epoch)."""
        stamps = [*self.stamps, end]
        times = np.diff(stamps)[1:]  # the first epoch warms up caches and threads
        return float(statistics.median(times)), stamps[0] - self.start


def _patched_tqdm(module, clock: EpochClock):
    """Replace ``module.tqdm`` by an iterator that ticks ``clock`` per epoch."""
    original = module.tqdm

    class Ticking:
        def __init__(self, iterable, *args, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            for item in self.iterable:
                clock.tick()
                yield item

        def set_postfix(self, *args, **kwargs):
            pass

        set_description = set_postfix
        close = set_postfix

    module.tqdm = Ticking
    return original


def time_skvae(X: np.ndarray, epochs: int, k: int, batch_size: int) -> dict:
    # Every row trains (early_stopping=False), as in the peers; on the CPU, as they.
    per_epoch, setup, _ = fit_epoch_seconds(
        X,
        max(1, epochs - 1),
        n_components=k,
        hidden_layer_sizes=HIDDEN,
        batch_size=batch_size,
        device="cpu",
    )
    return {"s_per_epoch": per_epoch, "setup_s": setup}


def time_pythae(X: np.ndarray, epochs: int, k: int, batch_size: int) -> dict:
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    d = X.shape[1]

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = mlp((d, *HIDDEN))  # Linear + ReLU, as skvae's
            self.embedding = nn.Linear(HIDDEN[1], k)
            self.log_var = nn.Linear(HIDDEN[1], k)

        def forward(self, x):
            h = self.net(x.reshape(x.shape[0], -1))
            return ModelOutput(
                embedding=self.embedding(h), log_covariance=self.log_var(h)
            )

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(mlp((k, *HIDDEN[::-1])), nn.Linear(HIDDEN[0], d))

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    clock = EpochClock()

    class Tick(TrainingCallback):
        def on_epoch_begin(self, training_config, **kwargs):
            clock.tick()

    Xs = StandardScaler().fit_transform(X).astype(np.float32)
    config = VAEConfig(input_dim=(d,), latent_dim=k, reconstruction_loss="mse")
    model = VAE(config, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        trainer = BaseTrainer(
            model,
            train_dataset=BaseDataset(torch.tensor(Xs), torch.zeros(len(Xs))),
            training_config=BaseTrainerConfig(
                output_dir=out,
                num_epochs=epochs,
                learning_rate=1e-3,
                per_device_train_batch_size=batch_size,
                steps_saving=None,
                no_cuda=True,
            ),
            callbacks=[Tick()],
        )
        trainer.train()
        end = time.perf_counter()
    return dict(zip(("s_per_epoch", "setup_s"), clock.per_epoch(end), strict=True))


def time_tvae(X: np.ndarray, epochs: int, k: int, batch_size: int) -> dict:
    import pandas as pd
    from ctgan.synthesizers import tvae

    clock = EpochClock()
    original = _patched_tqdm(tvae, clock)
    try:
        model = tvae.TVAE(
            embedding_dim=k,
            compress_dims=HIDDEN,
            decompress_dims=HIDDEN[::-1],
            batch_size=batch_size,
            epochs=epochs,
            enable_gpu=False,
        )
        model.fit(pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])]))
        end = time.perf_counter()
    finally:
        tvae.tqdm = original
    width = int(model.transformer.output_dimensions)
    timing = dict(zip(("s_per_epoch", "setup_s"), clock.per_epoch(end), strict=True))
    return {**timing, "internal_width": width}


PEERS = {"skvae": time_skvae, "pythae": time_pythae, "tvae": time_tvae}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="digits,crashes,mnist")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--mnist-rows", type=int, default=10_000)
    args = parser.parse_args()

    rows = []
    for name in args.datasets.split(","):
        X = load_features(name, args.mnist_rows if name == "mnist" else None)
        for peer, fn in PEERS.items():
            if peer == "tvae" and X.shape[1] > 100:
                rows.append(
                    {
                        "dataset": name,
                        "peer": peer,
                        "skipped": "TVAE fits a Bayesian Gaussian mixture to every "
                        "column before training (784 here); not its use case",
                    }
                )
                continue
            start = time.perf_counter()
            timing = fn(X, args.epochs, args.n_components, args.batch_size)
            row = {
                "dataset": name,
                "rows": X.shape[0],
                "features": X.shape[1],
                "peer": peer,
                **{key: round(v, 4) for key, v in timing.items()},
                "total_s": round(time.perf_counter() - start, 1),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)

    meta = {
        "args": vars(args),
        "hidden": HIDDEN,
        "environment": environment("pythae", "ctgan", "pandas"),
    }
    save_results("peers", {"meta": meta, "rows": rows}, _markdown(meta, rows))
    print(_markdown(meta, rows))


def _markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Seconds per epoch against peer VAEs",
        "",
        f"Same architecture (encoder {meta['hidden']}, mirrored decoder, "
        f"{meta['args']['n_components']} latents), Adam 1e-3, batch "
        f"{meta['args']['batch_size']}, same rows, one process. Peers: median of "
        f"epochs 2-{meta['args']['epochs']}; skvae: mean of as many epochs, from "
        f"whole fits. Environment: {meta['environment']}.",
        "",
    ]
    table = []
    by = {}
    for row in rows:
        by.setdefault(row["dataset"], {})[row["peer"]] = row
    for name, peers in by.items():
        sk, py, tv = peers.get("skvae"), peers.get("pythae"), peers.get("tvae")
        shape = f"{sk['rows']} x {sk['features']}"

        def cell(row):
            return (
                "skipped"
                if row is None or "skipped" in row
                else f"{row['s_per_epoch']:.3f}"
            )

        def ratio(row, sk=sk):
            if row is None or "skipped" in row:
                return "-"
            return f"{sk['s_per_epoch'] / row['s_per_epoch']:.2f}"

        setup = " / ".join(
            "-" if r is None or "skipped" in r else f"{r['setup_s']:.2f}"
            for r in (sk, py, tv)
        )
        table.append(
            [name, shape, cell(sk), cell(py), ratio(py), cell(tv), ratio(tv), setup]
        )
    header = [
        "dataset",
        "rows x features",
        "skvae s/epoch",
        "pythae s/epoch",
        "ratio",
        "TVAE s/epoch",
        "ratio",
        "set-up s (skvae / pythae / TVAE)",
    ]
    lines += markdown_table(header, table, "l" * 8)
    lines += [
        "",
        "ratio = skvae's seconds per epoch / the peer's (goal: <= 0.5 against "
        "pythae, <= 0.33 against TVAE).",
        "",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(
                f"- {row['peer']} on {row['dataset']}: skipped; {row['skipped']}."
            )
    tv = [r for r in rows if r["peer"] == "tvae" and "internal_width" in r]
    for r in tv:
        lines.append(
            f"- TVAE on {r['dataset']} trains on {r['internal_width']} internal "
            f"columns (its mode-specific normalisation) instead of {r['features']}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
