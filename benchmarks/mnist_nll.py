"""MNIST test negative log-likelihood under a time budget: the seed design's example.

Protocol (Burda, Grosse & Salakhutdinov 2016): train on the 60k training images,
binarised dynamically (a fresh Bernoulli draw of every pixel in every epoch), with a
Bernoulli decoder and two ReLU hidden layers; report the test negative
log-likelihood estimated by the importance-weighted bound with K samples, on the 10k
test images binarised once with a fixed seed. Published references: 86.76 nats for
a one-layer VAE (Burda et al. 2016, table 1); pythae reproduces 89.78.

Training is the public estimator's: ``VAETransformer(likelihood="bernoulli")``,
one ``partial_fit`` call per epoch on freshly binarised images. Each call is one
pass over its rows in shuffled mini-batches, and the Adam optimizer (its moments)
carries over from call to call, so this is the usual training loop with a new
binarisation every epoch, which ``fit`` does not do. The KL weight ramps up over
``--kl-warmup`` epochs (the estimator's ``kl_warmup``). The learning rate is
constant, and the model starts as the estimator starts it: the estimator keeps
its optimizer and initialisation to itself (an earlier version of this script
drove skvae's internals, annealed the rate with a cosine schedule down to 5% and
started the decoder's output bias at the logits of the mean image). The training
time is that of the whole ``partial_fit`` calls, the
estimator's per-call work (input checks, encoding, the KL per component) included;
the bounds (``common.iwae_bound``, from the fitted ``module_``) are timed apart.

Run::

    python benchmarks/mnist_nll.py                 # 30 minutes, then the K=1000 test
    python benchmarks/mnist_nll.py --minutes 2     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    RESULTS,
    environment,
    iwae_bound,
    load_mnist,
    markdown_table,
    save_results,
)

from skvae import VAETransformer


def nll(
    vae: VAETransformer, X: np.ndarray, k: int, seed: int, chunk: int = 100
) -> float:
    """Mean negative IWAE bound (nats) over the rows of ``X``; K=1 is the ELBO."""
    rows = max(1, min(chunk, 100_000 // k))
    return -float(np.mean(iwae_bound(vae, X, k, seed=seed, chunk=rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--hidden", default="500,500")
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--kl-warmup", type=int, default=10)
    parser.add_argument("--eval-every", type=float, default=120.0, help="seconds")
    parser.add_argument("--k-final", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="mnist_nll")
    parser.add_argument(
        "--render", action="store_true", help="redraw the table and plot from JSON"
    )
    args = parser.parse_args()
    if args.render:
        result = json.loads((RESULTS / f"{args.name}.json").read_text())
        report(result, RESULTS / args.name)
        return
    hidden = tuple(int(h) for h in args.hidden.split(","))

    X_train, _, X_test, _ = load_mnist()
    generator = torch.Generator().manual_seed(args.seed)
    X_train = torch.tensor(X_train)
    X_test = torch.bernoulli(torch.tensor(X_test), generator=generator).numpy()
    X_probe = X_test[:1000]  # for the time-to-quality curve

    vae = VAETransformer(
        args.n_components,
        hidden_layer_sizes=hidden,
        likelihood="bernoulli",
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        kl_warmup=args.kl_warmup,
        device="cpu",
        random_state=args.seed,
    )

    budget = 60.0 * args.minutes
    curve: list[dict] = []
    train_time, next_eval, epoch = 0.0, 0.0, 0
    while train_time < budget:
        start = time.perf_counter()
        X_epoch = torch.bernoulli(X_train, generator=generator).numpy()
        vae.partial_fit(X_epoch)  # one epoch; Adam's state carries over
        loss = vae.loss_curve_[-1]
        train_time += time.perf_counter() - start
        epoch += 1
        if train_time >= next_eval or train_time >= budget:
            point = {
                "epoch": epoch,
                "train_seconds": round(train_time, 1),
                "train_loss": round(loss, 3),
                "probe_elbo_nll": round(nll(vae, X_probe, 1, 1), 3),
                "probe_iwae100_nll": round(nll(vae, X_probe, 100, 1), 3),
            }
            curve.append(point)
            print(json.dumps(point), flush=True)
            next_eval = train_time + args.eval_every

    start = time.perf_counter()
    final = nll(vae, X_test, args.k_final, 2)
    eval_seconds = time.perf_counter() - start
    elbo = nll(vae, X_test, 1, 2)
    with torch.no_grad():  # Bernoulli pixels go into the model as they are
        mu, log_var = vae.module_.encode(torch.tensor(X_test, dtype=torch.float64))
        kl = (0.5 * (mu.square() + log_var.exp() - 1 - log_var)).mean(0)
    result = {
        "protocol": "60k train dynamically binarised, 10k test binarised once (seed)",
        "architecture": f"784-{'-'.join(map(str, hidden))}-{args.n_components} "
        "ReLU, mirrored decoder, Bernoulli",
        "training": "VAETransformer.partial_fit once per epoch",
        "schedule": "at a constant rate",
        "args": vars(args),
        "epochs": epoch,
        "train_seconds": round(train_time, 1),
        f"test_nll_iwae_k{args.k_final}": round(final, 2),
        "test_nll_elbo": round(elbo, 2),
        "eval_seconds": round(eval_seconds, 1),
        "active_units": int((kl > 0.01).sum()),
        "machine": environment(),
        "curve": curve,
    }
    save_results(args.name, result)
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=1))
    report(result, RESULTS / args.name)


def report(result: dict, stem: Path) -> None:
    """Write ``stem``.md (table) and ``stem``.png (time-to-quality curve)."""
    k_final = result["args"]["k_final"]
    # Results of the earlier version of this script, which annealed the rate.
    schedule = result.get("schedule", "annealed to 5% over the budget (cosine)")
    lines = [
        f"Produced by `python benchmarks/mnist_nll.py` ({result['machine']}). "
        f"Protocol: {result['protocol']}; {result['architecture']}; batch "
        f"{result['args']['batch_size']}, Adam {result['args']['learning_rate']:g} "
        f"{schedule}, KL warm-up {result['args']['kl_warmup']} epochs.",
        "",
        *markdown_table(
            [
                "training",
                "epochs",
                f"test NLL, IWAE K={k_final}",
                "test -ELBO",
                "active units",
                "evaluation",
            ],
            [
                [
                    f"{result['train_seconds'] / 60:.1f} min",
                    result["epochs"],
                    f"**{result[f'test_nll_iwae_k{k_final}']:.2f} nats**",
                    f"{result['test_nll_elbo']:.2f}",
                    f"{result['active_units']} of {result['args']['n_components']}",
                    f"{result['eval_seconds']:.0f} s",
                ]
            ],
            "llllll",
        ),
        "",
        "References: 86.76 nats for a one-layer VAE (Burda et al. 2016, table 1; "
        "3,280 passes); pythae reproduces 89.78. Target: <= 88 nats within 30 "
        "minutes. Time to quality, on the first 1,000 test images (IWAE K=100):",
        "",
        *markdown_table(
            ["minutes", "epoch", "-ELBO", "-IWAE K=100"],
            [
                [
                    f"{p['train_seconds'] / 60:.1f}",
                    p["epoch"],
                    f"{p['probe_elbo_nll']:.2f}",
                    f"{p['probe_iwae100_nll']:.2f}",
                ]
                for p in result["curve"]
            ],
            "llll",
        ),
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    plot(result, stem.with_suffix(".png"))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["curve"]
    minutes = [p["train_seconds"] / 60 for p in curve]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(minutes, [p["probe_elbo_nll"] for p in curve], "o-", label="-ELBO")
    ax.plot(minutes, [p["probe_iwae100_nll"] for p in curve], "s-", label="-IWAE K=100")
    k_final = result["args"]["k_final"]
    final = result[f"test_nll_iwae_k{k_final}"]
    ax.axhline(88, color="grey", ls="--", lw=1, label="target 88 nats")
    ax.axhline(86.76, color="grey", ls=":", lw=1, label="Burda et al. VAE 86.76")
    ax.plot(minutes[-1], final, "k*", ms=12, label=f"final, 10k test, K={k_final}")
    ax.set_xlabel("training time (minutes, 2 CPU cores)")
    ax.set_ylabel("test NLL (nats), 1k-image probe")
    ax.set_ylim(final - 4, 110)
    ax.set_title("MNIST, dynamically binarised: time to quality")
    ax.legend()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
