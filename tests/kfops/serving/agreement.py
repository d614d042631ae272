"""Asserting that the compiled fast path answers as scikit-learn does."""

import numpy as np

RTOL, ATOL = 1e-9, 1e-12


def assert_same(got, want):
    """(labels, proba) equal to sklearn's: labels exactly, numbers to 1e-9 relative."""
    (labels, proba), (want_labels, want_proba) = got, want
    labels = np.asarray(labels)
    assert labels.shape == want_labels.shape
    if want_labels.dtype.kind == "f":
        np.testing.assert_allclose(labels, want_labels, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_array_equal(labels, want_labels)
    if want_proba is None:
        assert proba is None
    else:
        assert proba.shape == want_proba.shape
        np.testing.assert_allclose(proba, want_proba, rtol=RTOL, atol=ATOL)
