"""The skvae version, and the warning for a model saved by another one.

A leaf module: every module can import it.
"""

__version__ = "0.1.0"


class InconsistentVersionWarning(UserWarning):
    """A model is loaded by another skvae version than the one that saved it.

    As scikit-learn's own ``InconsistentVersionWarning``: the model may load and
    work, but results are not guaranteed. Refit it with the installed version, or
    install the version it was saved with.

    Parameters
    ----------
    estimator_name : str
        Class of the loaded estimator.
    current_skvae_version : str
        The installed skvae version.
    original_skvae_version : str
        The skvae version that saved the model.
    """

    def __init__(
        self,
        *,
        estimator_name: str,
        current_skvae_version: str,
        original_skvae_version: str,
    ) -> None:
        self.estimator_name = estimator_name
        self.current_skvae_version = current_skvae_version
        self.original_skvae_version = original_skvae_version

    def __str__(self) -> str:
        return (
            f"Loading {self.estimator_name} saved with skvae "
            f"{self.original_skvae_version} into skvae "
            f"{self.current_skvae_version}. It may load and work, but this is not "
            "guaranteed: refit it, or install the version it was saved with."
        )
