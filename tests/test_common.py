"""sklearn's estimator checks on every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_id import ABIDEDimension, GRIDEDimension, PCADimension, PHDimension, TwoNNDimension


def _expected_failed_checks(estimator):
    if isinstance(estimator, TwoNNDimension) and estimator.metric == "precomputed":
        return {
            "check_estimators_dtypes": (
                "the check casts a distance matrix to integers: every point's two "
                "nearest neighbours become equidistant, and TwoNN rightly refuses "
                "data whose ratios r2/r1 all equal 1"
            )
        }
    if isinstance(estimator, PHDimension):
        reason = (
            "the check fits a few dozen random points, too few for the spanning tree's length to grow "
            "slower than n: PHDimension rightly refuses to return a dimension from them"
        )
        return {
            "check_n_features_in_after_fitting": reason,
            "check_dtype_object": reason,
            "check_fit2d_1feature": reason,
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
        PHDimension(n_min=4, n_sizes=3, n_repeats=2, random_state=0),
        ABIDEDimension(),
        ABIDEDimension(method="gride", max_neighbors=10),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
