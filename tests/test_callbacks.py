"""scikit-learn's callbacks (``sklearn.callback``, 1.9+) on fit and partial_fit."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV

from skvae import VAETransformer

from .helpers import FAST

callback = pytest.importorskip("sklearn.callback")


class Recorder:
    """A callback that notes every task it hears of (auto-propagated)."""

    max_propagation_depth = None

    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after
        self.models = []

    def setup(self, estimator, context):
        self.events.append(("setup", type(estimator).__name__))

    def teardown(self, estimator, context):
        self.events.append(("teardown", type(estimator).__name__))

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.events.append(("end", context.task_name, context.task_id))
        self.models.append((context.task_name, fitted_estimator))
        return context.task_name == "epoch" and context.task_id + 1 == self.stop_after


def test_a_fit_is_a_task_with_one_subtask_per_epoch(blobs):
    recorder = Recorder()
    vae = VAETransformer(2, **FAST).set_callbacks(recorder).fit(blobs)
    ends = [e for e in recorder.events if e[0] == "end"]
    assert [e[1] for e in ends] == ["epoch"] * vae.n_iter_ + ["fit"]
    assert [e[2] for e in ends[:-1]] == list(range(vae.n_iter_))
    assert recorder.events[0] == ("setup", "VAETransformer")
    assert recorder.events[-1] == ("teardown", "VAETransformer")
    # Each epoch's model is a copy in float64 that a callback can use...
    name, epoch_model = recorder.models[0]
    assert name == "epoch" and epoch_model.transform(blobs).shape == (200, 2)
    assert epoch_model.module_ is not vae.module_
    # ... and the end of the fit gives the fitted model itself.
    name, final = recorder.models[-1]
    assert name == "fit"
    assert_array_equal(final.transform(blobs), vae.transform(blobs))
    assert not hasattr(vae, "_callback_fit_ctx")  # no callback state is left


def test_a_callback_can_stop_training(blobs):
    vae = VAETransformer(2, **{**FAST, "max_iter": 50}).set_callbacks(Recorder(3))
    vae.fit(blobs)
    assert vae.n_iter_ == 3 and len(vae.loss_curve_) == 3


def test_callbacks_do_not_change_the_fit(blobs):
    plain = VAETransformer(2, **FAST).fit(blobs)
    observed = VAETransformer(2, **FAST).set_callbacks(Recorder()).fit(blobs)
    assert_array_equal(observed.transform(blobs), plain.transform(blobs))


def test_scoring_monitor_scores_every_epoch(blobs):
    def elbo(estimator, X, y=None):
        return {"elbo": estimator.score(X)}

    monitor = callback.ScoringMonitor(scoring=elbo)
    labels = (blobs[:, 0] > 0).astype(int)  # ScoringMonitor scores fits given a y
    vae = VAETransformer(2, **FAST).set_callbacks(monitor).fit(blobs, labels)
    log = monitor.get_logs().data_as_pandas
    epochs = log[log["task_name"] == "epoch"]
    assert len(epochs) == vae.n_iter_ and np.isfinite(epochs["elbo"]).all()
    final = log[log["task_name"] == "fit"]["elbo"].iloc[0]
    assert final == pytest.approx(vae.score(blobs))


def test_callbacks_reach_the_vae_inside_a_grid_search(blobs):
    recorder = Recorder()
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 2]}, cv=2)
    search.set_callbacks(recorder).fit(blobs)
    epochs = [e for e in recorder.events if e[:2] == ("end", "epoch")]
    fits = [e for e in recorder.events if e[:2] == ("end", "fit")]
    assert len(fits) >= 5  # 4 candidate fits and the refit (and the search's own)
    assert len(epochs) >= 5


def test_each_partial_fit_call_is_a_task_of_its_own(blobs):
    recorder = Recorder()
    vae = VAETransformer(2, **FAST).set_callbacks(recorder)
    for part in np.array_split(blobs, 3):
        vae.partial_fit(part)
    assert [e[1] for e in recorder.events if e[0] == "end"] == ["partial_fit"] * 3
    assert recorder.events.count(("setup", "VAETransformer")) == 3
    _, model = recorder.models[-1]
    assert_array_equal(model.transform(blobs), vae.transform(blobs))


def test_callbacks_are_not_saved_with_the_model(blobs):
    vae = VAETransformer(2, **FAST).set_callbacks(Recorder()).fit(blobs)
    restored = pickle.loads(pickle.dumps(vae))
    assert not hasattr(restored, "_skl_callbacks")
    assert_array_equal(restored.transform(blobs), vae.transform(blobs))


class FailsAtTheEnd(Recorder):
    """A callback whose work at the end of the whole call fails (its I/O, say)."""

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name in ("fit", "partial_fit"):
            raise RuntimeError("the callback failed")
        return False


def test_a_callback_failing_at_the_end_fails_the_whole_fit(blobs):
    # The call raises, so it must leave the model as it was: a caller that
    # retries the batch would otherwise train on it twice.
    vae = VAETransformer(2, **FAST).fit(blobs)
    before = pickle.dumps(vae)
    vae.set_callbacks(FailsAtTheEnd())
    with pytest.raises(RuntimeError, match="the callback failed"):
        vae.fit(blobs * 10)
    vae.set_callbacks()
    assert pickle.dumps(vae) == before
    # partial_fit with a stream going on: the stream trains in place, and is
    # put back too, so that the next batch continues as if the failed one had
    # never been passed.
    first, second, third = np.array_split(blobs, 3)
    vae, reference = (VAETransformer(2, **FAST).partial_fit(first) for _ in range(2))
    vae.partial_fit(second)
    reference.partial_fit(second)
    counts = (vae.n_samples_seen_, vae.n_iter_)
    vae.set_callbacks(FailsAtTheEnd())
    with pytest.raises(RuntimeError, match="the callback failed"):
        vae.partial_fit(third * 10)
    vae.set_callbacks()
    assert (vae.n_samples_seen_, vae.n_iter_) == counts
    vae.partial_fit(third)
    reference.partial_fit(third)
    assert_array_equal(vae.transform(blobs), reference.transform(blobs))
