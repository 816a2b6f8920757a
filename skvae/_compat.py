"""What depends on the scikit-learn version: its callback API (1.9 and later).

A leaf module: it imports nothing of skvae, so that the faces and the machinery
can both read it.
"""

from __future__ import annotations

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover - older scikit-learn
    CallbackSupportMixin = None


def supports_callbacks() -> tuple[type, ...]:
    """Return the mixin that gives ``set_callbacks``, where scikit-learn has one."""
    return () if CallbackSupportMixin is None else (CallbackSupportMixin,)
