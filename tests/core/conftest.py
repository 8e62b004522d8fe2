"""One BLAS thread for the numerical-core tests that ask for it (``pytestmark``): on a shared, small machine,
OpenBLAS threads on tiny matrices oversubscribe the cores and make millisecond tests take seconds."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture
def one_blas_thread():
    with threadpool_limits(limits=1):
        yield
