"""What a chunk holds while a restricted fit asks for g(b) (issue 19): the first-partner
difference of probability changes on a chunked engine (``ChunkedChangeDifference``), asked for
its value, gradient and Hessians at m coefficient vectors at once, as each Newton step of the
restricted fits does (``_restriction_second_order``).

Made per chunk in one pass, a chunk holds a few rows x m arrays. Taken by forward differences
of the gradient at the p x m moved vectors (3752d6f, fixed by c1ea49e), it held several
rows x (p m) arrays: p times as much, which raised the Dask workers' peak at 20,000 firms from
619 to 1,137 MiB and at a million from 3.2 to 16.7 GiB. Measured by tracemalloc, which traces
numpy's arrays and does not depend on the heap or on the machine's load.
"""

import tracemalloc

import numpy as np

from buzzpipe.estimate.batched_newton import PRODUCTS_BLOCK
from buzzpipe.estimate.sources import FrameSource
from buzzpipe.estimate.wild_bootstrap import _restriction_second_order
from buzzpipe.results.vocabulary import Family
from buzzpipe.study.common_support import set_breadth, with_categories
from buzzpipe.study.models import PRIMARY_INFERENCE, fit_model, fit_outcome_models
from buzzpipe.study.probability_changes import chunked_change_differences

FIRMS = 20_000
CHUNK_ROWS = 5_000  # four chunks
FITS = 40  # m: restricted fits stepping together (a set's grid is about this size)
# A chunk's pass may hold this many rows x m float64 arrays at once, beside its kept designs:
# the shared index, the weighted densities and curvatures, and each of the four designs'
# index, probability, density and slope while it is summed; and one block of the reference
# design's column products (PRODUCTS_BLOCK rows x p(p+1)/2, ``hessians_by_blocks``).
# Measured on c1ea49e: 9.3 such arrays besides the products' block (12.7 with it).
ROWS_BY_FITS_ARRAYS = 12
CONTROLS = "np.log(employees) + foreign_share + C(industry) + C(region) + openness"


def test_a_chunk_holds_rows_by_m_arrays_not_rows_by_p_m(synthetic_frame):
    frame = synthetic_frame("norway2010", 5, firms=FIRMS)
    found, _ = fit_outcome_models(frame, "product")
    sample = with_categories(found, ("regional", "international"))
    right = "breadth_regional + breadth_national + breadth_international + " + CONTROLS
    fitted = fit_model(f"product ~ {right}", sample, Family.LOGIT, PRIMARY_INFERENCE)
    first = (set_breadth("international", 1), set_breadth("international", 0))
    second = (set_breadth("regional", 1), set_breadth("regional", 0))
    (chunked,) = chunked_change_differences(
        FrameSource(sample, block_rows=CHUNK_ROWS), fitted, Family.LOGIT, [(first, second)]
    )
    estimate = fitted.params.loc[list(fitted.x_names)].to_numpy(dtype=float)
    p = len(estimate)
    params = estimate[:, None] + 0.05 * np.random.default_rng(3).normal(size=(p, FITS))
    _restriction_second_order(chunked, params)  # the chunks' designs built and kept
    tracemalloc.start()
    try:
        values, gradients, hessians = _restriction_second_order(chunked, params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert hessians.shape == (FITS, p, p) and np.isfinite(hessians).all()
    rows_by_fits = CHUNK_ROWS * FITS * 8
    products = min(CHUNK_ROWS, PRODUCTS_BLOCK) * p * (p + 1) // 2 * 8
    bound = ROWS_BY_FITS_ARRAYS * rows_by_fits + products + 4 * hessians.nbytes
    assert len(sample) >= 3 * CHUNK_ROWS and p >= 15
    assert peak <= bound, (
        f"traced peak {peak / 2**20:.1f} MiB = {(peak - products) / rows_by_fits:.1f} chunk "
        f"rows x m arrays besides a block of column products (p = {p}, m = {FITS}); bound "
        f"{bound / 2**20:.1f} MiB"
    )
