"""sklearn's estimator checks on every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_id import GRIDEDimension, PCADimension, TwoNNDimension


def _expected_failed_checks(estimator):
    if isinstance(estimator, TwoNNDimension) and estimator.metric == "precomputed":
        return {
            "check_estimators_dtypes": (
                "the check casts a distance matrix to integers: every point's two "
                "nearest neighbours become equidistant, and TwoNN rightly refuses "
                "data whose ratios r2/r1 all equal 1"
            )
        }
    return {}


@parametrize_with_checks(
    [
        TwoNNDimension(),
        TwoNNDimension(method="mle"),
        TwoNNDimension(metric="precomputed"),
        GRIDEDimension(),
        GRIDEDimension(n1=2, n2=4),
        GRIDEDimension(n1=2, n2=4, metric="precomputed"),
        PCADimension(),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
