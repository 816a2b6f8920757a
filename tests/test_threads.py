"""Torch threads sized to the work: the choice, and the caller's setting kept."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from skvae import VAETransformer, _threads

from .helpers import FAST


@pytest.fixture
def caller_setting():
    """Run the test from a known setting of 2 threads; restore the real one."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_the_choice_follows_the_work_and_the_free_cores(monkeypatch, caller_setting):
    monkeypatch.setattr(_threads, "free_cores", lambda limit: min(limit, 8))
    big = 10 * _threads.PARALLEL_WORK
    assert _threads.choose_threads(3, 1.0) == 3  # an int is taken as it is
    assert _threads.choose_threads(None, big) is None  # torch's setting stays
    assert _threads.choose_threads("auto", _threads.PARALLEL_WORK / 2) == 1
    assert _threads.choose_threads("auto", 1.5 * _threads.PARALLEL_WORK) == 2
    assert _threads.choose_threads("auto", big) == caller_setting  # at most those
    monkeypatch.setattr(_threads, "free_cores", lambda limit: 1)  # a busy machine
    assert _threads.choose_threads("auto", big) == 1


def test_a_small_fit_trains_on_one_thread_and_restores_the_callers(
    monkeypatch, caller_setting
):
    seen = []
    original = torch.set_num_threads
    monkeypatch.setattr(
        torch, "set_num_threads", lambda n: (seen.append(n), original(n))[1]
    )
    X = np.random.default_rng(0).normal(size=(200, 4))
    vae = VAETransformer(2, **FAST).fit(X)
    vae.transform(X)
    assert seen and set(seen) == {1, caller_setting}
    assert torch.get_num_threads() == caller_setting
    seen.clear()
    VAETransformer(2, n_threads=None, **FAST).fit(X).transform(X)
    assert seen == []  # None: torch's setting is left alone
    VAETransformer(2, n_threads=2, **FAST).fit(X)
    assert 1 not in seen


def test_concurrent_calls_restore_the_callers_setting(caller_setting):
    X = np.random.default_rng(0).normal(size=(300, 4))
    vae = VAETransformer(2, **FAST).fit(X)
    expected = vae.transform(X)
    results = []

    def work():
        for _ in range(20):
            results.append(vae.transform(X))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert torch.get_num_threads() == caller_setting
    assert all(np.array_equal(r, expected) for r in results)


def test_an_inner_call_keeps_the_outer_setting(caller_setting):
    # A dask partition's transform runs on the one thread its partition got; a
    # callback's transform during training on the training's threads.
    with _threads.torch_threads(1):
        assert torch.get_num_threads() == 1
        assert _threads.choose_threads("auto", 1e12) is None
        with _threads.torch_threads(3):
            assert torch.get_num_threads() == 1
            assert _threads.caller_threads() == caller_setting
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == caller_setting


def test_each_thread_gets_its_own_setting_back(caller_setting):
    # torch's (OpenMP's) setting belongs to each thread.
    X = np.random.default_rng(0).normal(size=(300, 4))
    vae = VAETransformer(2, **FAST).fit(X)
    seen = []

    def work():
        torch.set_num_threads(2)
        vae.transform(X)
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=work)
    thread.start()
    vae.partial_fit(X)
    thread.join()
    assert seen == [2]
    assert torch.get_num_threads() == caller_setting


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_another_processs_busy_thread_is_seen():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        counts = [_threads._others_running() for _ in range(5)]
    finally:
        spinner.kill()
        spinner.wait()
    assert max(counts) >= 1


def test_a_reading_of_the_free_cores_stands_a_moment(monkeypatch):
    # Calls in a loop share one reading of /proc; a later call reads again, so
    # a process that starts keeping a core busy is seen within PROBE_SECONDS.
    readings = iter([2, 1])
    reads = []

    def probe():
        reads.append(1)
        return next(readings)

    monkeypatch.setattr(_threads, "_probe_free_cores", probe)
    monkeypatch.setattr(_threads, "_probe", (-float("inf"), 0))
    monkeypatch.setattr(_threads, "PROBE_SECONDS", 60.0)
    assert _threads.free_cores(1) == 1  # the reading, under the caller's limit
    assert [_threads.free_cores(4) for _ in range(3)] == [2, 2, 2]  # the same one
    assert len(reads) == 1
    monkeypatch.setattr(_threads, "_probe", (-float("inf"), 0))  # it has expired
    assert _threads.free_cores(4) == 1  # read again: a busy machine
    assert len(reads) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_forked_child_reads_the_free_cores_afresh(monkeypatch):
    monkeypatch.setattr(_threads, "_probe", (time.monotonic(), 1))
    monkeypatch.setattr(_threads, "PROBE_SECONDS", 60.0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its reading is gone
        os.write(write, b"1" if _threads._probe[0] == -float("inf") else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert _threads._probe[1] == 1  # the parent keeps its own


@pytest.mark.parametrize("value", [0, -2, 1.5, "two", True])
def test_a_bad_n_threads_set_after_fit_is_a_clear_error(blobs, value):
    # fit validates its parameters; set_params after it does not, and torch's
    # own error ("set_num_threads expects a positive integer") named no
    # parameter.
    vae = VAETransformer(2, **FAST).fit(blobs)
    vae.set_params(n_threads=value)
    with pytest.raises(ValueError, match="n_threads must be an int >= 1"):
        vae.transform(blobs)
