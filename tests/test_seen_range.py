"""Inputs beyond the training range reach the encoder compressed."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose

from skvae import VAETransformer
from skvae._model import compress_beyond

from .helpers import FAST


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 2))
    frame = pd.DataFrame(t @ rng.normal(size=(2, 4)), columns=list("abcd"))
    frame["rare"] = 0.0  # blank in all rows but one, as a corner pixel
    frame.loc[0, "rare"] = 1.37  # not whole: no categorical levels
    return frame


@pytest.fixture(scope="module")
def fitted():
    frame = _table()
    return frame, VAETransformer(2, **FAST).fit(frame)


def test_compression_is_the_identity_in_range_and_logarithmic_beyond():
    low, high = torch.tensor([-1.0, -np.inf]), torch.tensor([2.0, np.inf])
    x = torch.tensor([[-1.0, -1e6], [0.5, 0.0], [2.0, 1e6], [3.0, 5.0], [-1001.0, 1.0]])
    got = compress_beyond(x, low, high)
    expected = [
        [-1.0, -1e6],
        [0.5, 0.0],
        [2.0, 1e6],
        [2 + np.log(2), 5],
        [-1 - np.log(1001), 1],
    ]
    assert_allclose(got.numpy(), expected, rtol=1e-6)
    # Rows all in range (a training batch) come back as they are, untouched;
    # a hole's NaN still goes through the formula.
    rows = x[:3]
    assert compress_beyond(rows, low, high) is rows
    holed = torch.tensor([[0.5, float("nan")]])
    assert torch.isnan(compress_beyond(holed, low, high)[0, 1])


def test_a_value_far_beyond_a_near_constant_column_keeps_the_latent_near(fitted):
    # A test row with 1,000 on a column blank in all training rows but one
    # (which held 1.37): without the compression the encoder read it 17,000
    # standard deviations out and the latent followed.
    frame, vae = fitted
    rows = frame.iloc[1:6].copy()
    at_max, far = rows.assign(rare=1.37), rows.assign(rare=1000.0)
    z_max, z_far = vae.transform(at_max), vae.transform(far)
    moved = np.abs(z_far - z_max).max()
    assert moved < 10
    scores = vae.score_samples(far)
    assert np.isfinite(scores).all()
    module, bounds = vae.module_, vae.module_.seen_bounds
    module.seen_bounds = None
    try:  # as before: the latent is thrown far away
        z_unguarded = vae.transform(far)
    finally:
        module.seen_bounds = bounds
    assert np.abs(z_unguarded - z_max).max() > 100 * moved


def test_rows_in_range_are_encoded_as_without_it(fitted):
    frame, vae = fitted
    z = vae.transform(frame)
    module, bounds = vae.module_, vae.module_.seen_bounds
    module.seen_bounds = None
    try:
        assert_allclose(vae.transform(frame), z, rtol=0, atol=0)
    finally:
        module.seen_bounds = bounds


def test_the_range_is_the_codec_s_after_a_load_and_follows_a_stream(fitted):
    frame, vae = fitted
    far = frame.iloc[1:6].assign(rare=1000.0)
    loaded = pickle.loads(pickle.dumps(vae))
    assert_allclose(loaded.transform(far), vae.transform(far), rtol=1e-12)
    # Over a stream, each batch widens the range; a batch that fails leaves
    # the range as it was.
    stream = VAETransformer(2, **FAST)
    stream.partial_fit(frame.iloc[1:150])  # "rare" all 0 here
    low, high = stream.module_.seen_range
    assert high[4] == low[4]
    stream.partial_fit(frame.iloc[150:].assign(rare=np.r_[1.37, np.zeros(149)]))
    _, wider = stream.module_.seen_range
    assert wider[4] > high[4]
    with pytest.raises(ValueError):
        stream.partial_fit(frame.iloc[:10].assign(a="text"))
    assert_allclose(stream.module_.seen_range[1], wider)


def test_the_onnx_encoder_compresses_as_transform_does(fitted):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    import onnxruntime as ort

    from skvae import to_onnx

    frame, vae = fitted
    test = frame.iloc[1:40].astype(np.float32)
    test.iloc[:10, 4] = np.linspace(2, 5000, 10, dtype=np.float32)  # beyond "rare"
    test.iloc[10:15, 0] = -50.0  # and beyond "a"'s
    onx = to_onnx(vae, test.iloc[:5])
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feeds = {c: test[[c]].to_numpy() for c in test.columns}
    (Z,) = session.run(None, feeds)
    assert_allclose(Z, vae.transform(test), atol=1e-4, rtol=1e-4)
