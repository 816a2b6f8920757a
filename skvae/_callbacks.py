"""scikit-learn's callbacks (``sklearn.callback``, 1.9 and later) on ``fit``.

Detected at run time: with an older scikit-learn, the estimators have no
``set_callbacks`` and ``fit_hooks`` returns None. With 1.9, a fit is a root task
(``"fit"``, one subtask per epoch, at most ``max_iter``) and each
``partial_fit`` call a task of its own without subtasks, as scikit-learn's
``StandardScaler.partial_fit``. Callbacks get ``X`` and ``y`` as passed to
``fit``; when one asks for the fitted estimator, an epoch gives a copy of the
estimator holding a float64 copy of that epoch's model (made only when asked
for), and the end of the fit gives the fitted estimator's attributes.
``ScoringMonitor`` scores only fits that get a ``y``, as in scikit-learn.
The callbacks' set-up and teardown are managed by scikit-learn's
``_fit_context`` around ``fit`` and ``partial_fit``.
"""

from __future__ import annotations

import copy
from typing import Any

from ._compat import CallbackSupportMixin
from ._model import VAE
from ._training import TrainingHooks


class CallbackHooks(TrainingHooks):
    """Tells scikit-learn's callbacks of a fit: the root task and its epochs."""

    def __init__(self, estimator: Any, X: Any, y: Any, task_name: str) -> None:
        self.estimator, self.X, self.y, self.task_name = estimator, X, y, task_name
        self.root: Any = None
        self.epoch: Any = None
        # Fitted attributes decided before training (codec, device...), which an
        # epoch's copy of the estimator needs beside its module.
        self.attributes: dict[str, Any] = {}

    def _data(self) -> dict[str, Any]:
        return {"estimator": self.estimator, "X": self.X, "y": self.y}

    def on_train_begin(self, max_iter: int) -> None:
        self.begin(max_iter)

    def begin(self, max_subtasks: int = 0) -> None:
        """Open the root task (once)."""
        if self.root is None:
            self.root = self.estimator._init_callback_context(
                task_name=self.task_name, max_subtasks=max_subtasks
            )
            self.root.call_on_fit_task_begin(**self._data())

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch = self.root.subcontext(task_name="epoch")
        self.epoch.call_on_fit_task_begin(**self._data())

    def on_epoch_end(
        self, module: VAE, epoch: int, train_loss: float, val_loss: float | None
    ) -> bool:
        def model() -> dict[str, Any]:
            snapshot = copy.deepcopy(module).double().eval()
            return {**self.attributes, "module_": snapshot}

        context, self.epoch = self.epoch, None
        return context.call_on_fit_task_end(
            reconstruction_attributes=model,
            metadata={},
            **self._data(),
        )

    @property
    def active(self) -> bool:
        """Whether any callback hears of this call (its own or propagated)."""
        return bool(getattr(self.estimator, "_skl_callbacks", None))

    def end(self, fitted: dict[str, Any]) -> None:
        """Close the root task with the fitted attributes."""
        self.begin()
        self.root.call_on_fit_task_end(
            reconstruction_attributes=fitted, metadata={}, **self._data()
        )


def fit_hooks(
    estimator: Any, X: Any, y: Any, task_name: str = "fit"
) -> CallbackHooks | None:
    """Return the hooks of one ``fit`` or ``partial_fit`` call; None without the API."""
    if CallbackSupportMixin is None:
        return None
    return CallbackHooks(estimator, X, y, task_name)
