"""Sums that MXNet 1.9.1's reduction operators make slow on CPU.

Its ``sum``/``mean`` over an axis run at a fraction of memory bandwidth (about
6x slower than an elementwise pass over the same data); a matrix product with
a vector of ones gives the same sums through BLAS.
"""


def last_axis_sum(F, x):
    """``F.sum(x, axis=-1, keepdims=True)`` as a matrix-vector product."""
    rows = F.reshape(x, shape=(-1, 0), reverse=True)                  # (M, C)
    ones = F.ones_like(F.slice_axis(rows, axis=0, begin=0, end=1))    # (1, C)
    sums = F.dot(rows, ones, transpose_b=True)                        # (M, 1)
    return F.reshape_like(sums, x, lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=-1)


def total_mean(F, x):
    """``F.mean(x)`` (over every element, shape (1,)) as a dot product."""
    flat = F.reshape(x, shape=(1, -1))
    ones = F.ones_like(flat)
    total = F.dot(flat, ones, transpose_b=True)
    count = F.dot(ones, ones, transpose_b=True)
    return F.reshape(total / count, shape=(1,))
