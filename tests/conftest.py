import numpy as np
import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def blobs():
    """Small continuous data with 3-D structure: (200, 6), float64."""
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(200, 3))
    mixing = rng.normal(size=(3, 6))
    return latent @ mixing + 0.1 * rng.normal(size=(200, 6))
