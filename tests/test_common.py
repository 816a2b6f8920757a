"""scikit-learn's estimator checks, with no expected failures.

Besides ``parametrize_with_checks``, this runs the checks that it leaves to
scikit-learn's own test suite but that apply to these estimators: set_output,
feature names, parameter validation, cloning, partial_fit's width check and the
message when a required ``y`` is missing.
"""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_estimator_cloneable,
    check_estimators_partial_fit_n_features,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_param_validation,
    check_requires_y_none,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skvae import VAEImputer, VAETransformer

# Few epochs keep the checks fast; they test the API, not the fit's quality.
ESTIMATORS = [
    VAETransformer(max_iter=5, hidden_layer_sizes=(16,)),
    VAETransformer(max_iter=5, hidden_layer_sizes=(16, 8), early_stopping=True),
    # With labels: the checks pass y (target_tags.required), which trains a head.
    VAETransformer(max_iter=5, hidden_layer_sizes=(16,), target_weight=1.0),
    # Each column mapped through its quantiles to normal scores.
    VAETransformer(max_iter=5, hidden_layer_sizes=(16,), scaling="quantile"),
    VAEImputer(max_iter=5, hidden_layer_sizes=(16,)),
    VAEImputer(max_iter=5, hidden_layer_sizes=(16,), add_indicator=True),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: {})
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
@pytest.mark.parametrize(
    "check",
    [
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
    ids=lambda check: check.__name__,
)
# These checks mix DataFrames and arrays between fit and transform on purpose,
# which scikit-learn answers with these warnings.
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.filterwarnings("ignore:X has feature names, but")
def test_set_output_and_feature_names(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
@pytest.mark.parametrize(
    "check",
    [
        check_param_validation,
        check_estimator_cloneable,
        check_dataframe_column_names_consistency,
        check_get_feature_names_out_error,
        check_requires_y_none,
    ],
    ids=lambda check: check.__name__,
)
def test_checks_left_to_scikit_learn_own_suite(estimator, check):
    check(type(estimator).__name__, estimator)


def test_partial_fit_checks_the_number_of_features():
    check_estimators_partial_fit_n_features(
        "VAETransformer", VAETransformer(max_iter=5, hidden_layer_sizes=(16,))
    )
