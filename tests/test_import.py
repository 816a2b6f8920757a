"""What ``import skvae`` costs: PyTorch waits for the first fit or load."""

import subprocess
import sys


def test_import_leaves_torch_for_the_first_fit():
    code = (
        "import sys, skvae\n"
        "heavy = [m for m in ('torch', 'dask', 'skops', 'onnx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
        "skvae.VAETransformer(max_iter=1).fit([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True"]  # nothing heavy at import; torch once a fit runs
