"""numq.kernels.qparams and numq._qrange against the references in reference_qparams.py.

Scales compare as float32 bit patterns (NaN equal to NaN), zero points exactly. Few
array dtypes on purpose: calculate_qparams compiles once for int32 zero points and once
for float32 ones.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import numq.dtypes as D
from numq._qrange import qscheme_code, quant_range, symmetric_zero_point
from numq.kernels.qparams import (AFFINE, FLOAT_QPARAMS, SMALL_SCALE_THRESHOLD, SYMMETRIC,
                                  calculate_qparams, choose_qparams_dynamic,
                                  choose_qparams_dynamic_range)

import reference_qparams as R

F32 = np.float32
EPS = float(np.finfo(F32).eps)
INF = math.inf
NAN = math.nan
CODES = {"affine": AFFINE, "symmetric": SYMMETRIC, "float_qparams": FLOAT_QPARAMS}
DTYPES = {"quint8": D.quint8, "qint8": D.qint8, "qint32": D.qint32, "quint4x2": D.quint4x2}

SPECIAL_PAIRS = [
    (INF, -INF), (0.0, 0.0), (-0.0, 0.0), (-1.0, 2.0), (1.0, 2.0), (-2.0, -1.0), (3.0, 3.0),
    (-3.0, -3.0), (NAN, 1.0), (1.0, NAN), (NAN, NAN), (-INF, 1.0), (-1.0, INF), (-INF, INF),
    (-1e-30, 1e-30), (0.0, 1e-38), (-1e-45, 0.0), (-3e38, 3e38), (-1e10, 3e9), (-7.0, 1e-3),
    (-0.5, 0.5), (-1.0, 254.0), (-2.5, 5.0), (1e-7, 2e-7),
]


def run_kernel(mins, maxs, qmin, qmax, scheme, eps, sym_zp=0):
    mins = np.asarray(mins, F32).reshape(-1)
    maxs = np.asarray(maxs, F32).reshape(-1)
    scale = np.empty(mins.size, F32)
    zp = np.empty(mins.size, F32 if scheme == "float_qparams" else np.int32)
    calculate_qparams(mins, maxs, qmin, qmax, CODES[scheme], eps, scale, zp, sym_zp)
    return scale, zp


def assert_same(actual, expected):
    s, z = actual
    rs, rz = expected
    assert (np.array_equal(s.view(np.int32), rs.view(np.int32))
            or np.array_equal(s, rs, equal_nan=True)), (s, rs)
    assert np.array_equal(z, rz, equal_nan=True), (z, rz)
    if z.dtype == np.float32:   # float zero points: same bits (signed zeros included)
        assert np.array_equal(np.isnan(z), np.isnan(rz))
        ok = ~np.isnan(z)
        assert np.array_equal(z[ok].view(np.int32), rz[ok].astype(F32).view(np.int32))


def configs():
    out = []
    for dt in DTYPES:
        for rr in (False, True):
            for scheme in ("affine", "symmetric"):
                qmin, qmax = R.quant_range(dt, rr)
                zp = 128 if dt == "quint8" else 0
                out.append((dt, rr, scheme, qmin, qmax, zp))
    for dt, qmin, qmax, rr in [("quint8", 0, 15, False), ("quint8", -3, 1, False),
                               ("quint8", 0, 255, True), ("qint8", -7, 7, True),
                               ("qint32", -1000, 1001, True), ("quint8", 0, 1000, False),
                               ("qint8", -128, 127, False), ("quint8", -3, 0, True)]:
        eq = R.quant_range(dt, rr, qmin, qmax)
        for scheme in ("affine", "symmetric", "float_qparams"):
            zp = (eq[0] + eq[1]) // 2 if dt == "quint8" else 0
            out.append((dt, rr, scheme, eq[0], eq[1], zp))
    return out


CONFIGS = configs()


@pytest.mark.parametrize("dt,rr,scheme,qmin,qmax,zp", CONFIGS)
def test_calculate_qparams_special_pairs(dt, rr, scheme, qmin, qmax, zp):
    mins = [p[0] for p in SPECIAL_PAIRS]
    maxs = [p[1] for p in SPECIAL_PAIRS]
    got = run_kernel(mins, maxs, qmin, qmax, scheme, EPS, zp)
    assert_same(got, R.calculate_qparams(mins, maxs, qmin, qmax, scheme, EPS, zp))
    # per tensor: one pair at a time gives the same numbers
    for i in (0, 3, 8, 12):
        one = run_kernel(mins[i], maxs[i], qmin, qmax, scheme, EPS, zp)
        assert_same(one, (got[0][i:i + 1], got[1][i:i + 1]))


def test_documented_values():
    # NUMERICS.md: all zeros -> (eps, 0); no data -> (1.0, 0); quint8 symmetric zp 128
    s, z = run_kernel([0.0], [0.0], 0, 255, "affine", EPS)
    assert s[0] == F32(EPS) and z[0] == 0
    s, z = run_kernel([INF], [-INF], -128, 127, "affine", EPS)
    assert s[0] == 1.0 and z[0] == 0
    s, z = run_kernel([-1.0], [2.0], -128, 127, "symmetric", EPS, 0)
    assert s[0] == F32(2.0) / F32(127.5) and z[0] == 0
    s, z = run_kernel([-1.0], [2.0], 0, 255, "affine", EPS)
    assert s[0] == F32(3.0) / F32(255.0) and z[0] == 85
    s, z = run_kernel([0.0], [0.0], 0, 255, "float_qparams", EPS)
    assert s[0] == 1.0 and z[0] == 0.0
    s, z = run_kernel([2.0], [4.0], 0, 255, "float_qparams", EPS)
    assert s[0] == F32(2.0) / F32(255.0) and z[0] == F32(-2.0) / s[0]


def test_nan_range_zero_points_follow_x86_conversion():
    # torch: rint(NaN) -> int32 gives INT32_MIN, qmin - INT32_MIN wraps, then the clamp
    assert run_kernel([NAN], [1.0], 0, 255, "affine", EPS)[1][0] == 0
    assert run_kernel([NAN], [1.0], -128, 127, "affine", EPS)[1][0] == 127
    assert run_kernel([NAN], [1.0], -(2**31), 2**31 - 1, "affine", EPS)[1][0] == 0
    assert np.isnan(run_kernel([NAN], [1.0], 0, 255, "symmetric", EPS, 128)[0][0])


@pytest.mark.parametrize("eps", [0.0, 1e-50, 1e-12, EPS, 0.3, 2.0])
@pytest.mark.parametrize("scheme", ["affine", "symmetric", "float_qparams"])
def test_calculate_qparams_eps(eps, scheme):
    mins = [p[0] for p in SPECIAL_PAIRS]
    maxs = [p[1] for p in SPECIAL_PAIRS]
    assert_same(run_kernel(mins, maxs, -128, 127, scheme, eps),
                R.calculate_qparams(mins, maxs, -128, 127, scheme, eps))


def test_calculate_qparams_per_channel_mixed():
    rng = np.random.default_rng(0)
    mins = np.minimum(rng.standard_normal(257).astype(F32) * 3, 0.5)
    maxs = mins + np.abs(rng.standard_normal(257).astype(F32)) * 5
    mins[7], maxs[7] = INF, -INF        # an unobserved channel
    mins[9] = maxs[9] = 0.0
    for scheme, qmin, qmax, zp in [("affine", 0, 255, 128), ("symmetric", -128, 127, 0),
                                   ("float_qparams", 0, 255, 0), ("affine", -64, 63, 0)]:
        assert_same(run_kernel(mins, maxs, qmin, qmax, scheme, EPS, zp),
                    R.calculate_qparams(mins, maxs, qmin, qmax, scheme, EPS, zp))


f32_values = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, INF, -INF, 1e-45, -1e-45, 3.4e38, -3.4e38]),
    st.builds(lambda m, e: float(F32(m * 10.0**e)), st.floats(-1, 1), st.integers(-40, 38)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(f32_values, f32_values), min_size=1, max_size=8),
       st.sampled_from(CONFIGS), st.sampled_from([EPS, 0.0, 1e-3]),
       st.booleans())
def test_calculate_qparams_hypothesis(pairs, config, eps, with_nan):
    dt, rr, scheme, qmin, qmax, zp = config
    mins = np.array([min(a, b) for a, b in pairs], F32)
    maxs = np.array([max(a, b) for a, b in pairs], F32)
    if with_nan:
        mins[0] = NAN
    assert_same(run_kernel(mins, maxs, qmin, qmax, scheme, eps, zp),
                R.calculate_qparams(mins, maxs, qmin, qmax, scheme, eps, zp))


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**31, 0), st.integers(1, 2**31 - 1), st.booleans(),
       st.tuples(f32_values, f32_values), st.sampled_from(["affine", "symmetric", "float_qparams"]))
def test_calculate_qparams_hypothesis_custom_ranges(lo, hi, rr, pair, scheme):
    qmin, qmax = quant_range(D.qint32.qmin, D.qint32.qmax, rr, lo, hi)
    mn, mx = min(pair), max(pair)
    assert_same(run_kernel([mn], [mx], qmin, qmax, scheme, EPS),
                R.calculate_qparams([mn], [mx], qmin, qmax, scheme, EPS))


# ------------------------------------------------------------------ quant ranges

@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("rr", [False, True])
def test_quant_range_defaults(dt, rr):
    d = DTYPES[dt]
    assert quant_range(d.qmin, d.qmax, rr) == R.quant_range(dt, rr)
    # a lone bound is ignored, as torch's has_customized_qrange requires both
    assert quant_range(d.qmin, d.qmax, rr, quant_min=0) == R.quant_range(dt, rr)
    assert quant_range(d.qmin, d.qmax, rr, quant_max=3) == R.quant_range(dt, rr)


@pytest.mark.parametrize("dt,lo,hi,rr,expected", [
    ("quint8", 0, 15, False, (0, 15)), ("quint8", 0, 255, True, (0, 127)),
    ("quint8", -3, 1, True, (-2, 0)), ("quint8", 0, 1000, False, (0, 1000)),
    ("qint8", -7, 7, True, (-4, 3)), ("qint8", -128, 127, True, (-64, 63)),
    ("qint32", -1000, 1001, True, (-500, 500)), ("quint4x2", 0, 7, True, (0, 3)),
    ("qint32", -(2**31), 2**31 - 1, False, (-(2**31), 2**31 - 1)),
])
def test_quant_range_custom(dt, lo, hi, rr, expected):
    d = DTYPES[dt]
    assert quant_range(d.qmin, d.qmax, rr, lo, hi) == expected == R.quant_range(dt, rr, lo, hi)


@pytest.mark.parametrize("dt,lo,hi,match", [
    ("quint8", 1, 10, "must include"), ("quint8", -5, -1, "must include"),
    ("quint8", 0, 0, "quant_min must be < quant_max"),
    ("qint8", -200, 100, "must be <= 256"), ("qint32", -(2**32), 2, "int32"),
    ("quint8", 0, 2**31, "int32"),
])
def test_quant_range_errors(dt, lo, hi, match):
    d = DTYPES[dt]
    with pytest.raises(ValueError, match=match):
        quant_range(d.qmin, d.qmax, False, lo, hi)


def test_quant_range_bad_types_and_dtype():
    with pytest.raises(TypeError, match="quant_min"):
        quant_range(0, 255, False, 0.0, 10)
    with pytest.raises(ValueError, match="dtype must be one of"):
        quant_range(D.float16.qmin, D.float16.qmax, False)


def test_symmetric_zero_point():
    assert symmetric_zero_point(0, 255, 0, 255, False) == 128
    assert symmetric_zero_point(0, 255, 0, 127, False) == 128      # dtype rule, not range
    assert symmetric_zero_point(0, 255, -3, 1, True) == -1
    assert symmetric_zero_point(0, 255, 0, 127, True) == 63
    assert symmetric_zero_point(-128, 127, -4, 3, True) == 0
    assert symmetric_zero_point(0, 15, 0, 15, False) == 0          # quint4x2: 0, as torch


def test_qscheme_code():
    assert qscheme_code(D.per_tensor_affine) == AFFINE == qscheme_code("per_channel_affine")
    assert qscheme_code(D.per_channel_symmetric) == SYMMETRIC
    assert qscheme_code("torch.per_tensor_symmetric") == SYMMETRIC
    assert qscheme_code(D.per_channel_affine_float_qparams) == FLOAT_QPARAMS
    with pytest.raises(ValueError, match="qscheme"):
        qscheme_code("per_tensor_magic")


# -------------------------------------------------------------------- dynamic

DYN_RANGES = [(0, 255), (0, 127), (-128, 127), (-64, 63)]
DYN_PAIRS = [
    (0.0, 0.0), (1.0, 2.0), (-2.0, -1.0), (-1.0, 1.0), (1e-7, 2e-7), (-2e-7, -1e-7),
    (-1e-7, 1e-7), (-INF, 1.0), (1.0, INF), (-INF, INF), (-INF, -INF), (INF, INF),
    (1e-40, 1e-40), (0.0, 1e-40), (-1e30, 1e30), (-3e38, 3e38), (-3.4e38, 3.4e38),
    (-1.5, 253.5), (-2.5, 252.5), (-0.5, 254.5), (-1e-6, 5e-6), (-6e-5, 1e-9),
    (-0.0, 0.0), (-5.0, 0.0), (0.0, 5.0), (-1e-45, 1e-45),
]


@pytest.mark.parametrize("qmin,qmax", DYN_RANGES)
def test_dynamic_special_pairs(qmin, qmax):
    for mn, mx in DYN_PAIRS:
        got = choose_qparams_dynamic(mn, mx, qmin, qmax)
        assert type(got[0]) is float and type(got[1]) is int
        assert got == R.choose_qparams_dynamic(mn, mx, qmin, qmax), (mn, mx)


def test_dynamic_documented_values():
    assert choose_qparams_dynamic(0.0, 0.0, 0, 255) == (0.1, 0)          # scale 0 -> 0.1
    assert choose_qparams_dynamic(0.0, 0.0, -128, 127) == (0.1, 127)     # max side wins the tie
    s, z = choose_qparams_dynamic(1e-7, 2e-7, 0, 255)
    assert s == SMALL_SCALE_THRESHOLD == float(F32(6.1e-5)) and z == 0
    assert choose_qparams_dynamic(-1.5, 253.5, 0, 255) == (1.0, 2)        # 1.5 rounds to even
    assert choose_qparams_dynamic(-2.5, 252.5, 0, 255) == (1.0, 2)        # 2.5 rounds to even
    assert choose_qparams_dynamic(1.0, INF, 0, 255) == (INF, -(2**31))   # NaN zero point


def test_dynamic_reciprocal_overflow_boundary():
    # f32(scale) <= 2**-128 means 1.0f / f32(scale) == inf: scale falls back to 0.1
    span = 255
    for scale in [2.0**-128, 2.0**-128 + 2.0**-150, 2.0**-128 + 2.0**-149, 2.0**-127,
                  2.0**-149, 2.0**-150, 2.0**-151, 2.0**-126]:
        mx = float(F32(scale * span))
        if mx == 0.0:
            continue
        got = choose_qparams_dynamic(0.0, mx, 0, span)
        assert got == R.choose_qparams_dynamic(0.0, mx, 0, span), scale


@settings(max_examples=800, deadline=None)
@given(f32_values, f32_values,
       st.sampled_from(DYN_RANGES + [(-3, 4), (0, 1), (-1, 0), (-1000, 1000)]))
def test_dynamic_hypothesis(a, b, rng_):
    qmin, qmax = rng_
    mn, mx = min(a, b), max(a, b)
    expected = R.choose_qparams_dynamic(mn, mx, qmin, qmax)
    assert choose_qparams_dynamic(mn, mx, qmin, qmax) == expected


@settings(max_examples=500, deadline=None)
@given(st.floats(-1, 1), st.floats(0, 1), st.integers(-12, -2), st.sampled_from(DYN_RANGES))
def test_dynamic_hypothesis_small_scales(a, w, e, rng_):
    # ranges around the 6.1e-5 cut, where min/max are rescaled in float32
    qmin, qmax = rng_
    mn = float(F32(a * 10.0**e))
    mx = float(F32(mn + w * 10.0**e))
    assume(mn <= mx)
    expected = R.choose_qparams_dynamic(mn, mx, qmin, qmax)
    assert choose_qparams_dynamic(mn, mx, qmin, qmax) == expected


def test_dynamic_rounds_inputs_to_float32():
    x = 0.1  # not a float32: rounded first, as the C++ float parameter
    assert choose_qparams_dynamic(-x, x, 0, 255) == choose_qparams_dynamic(F32(-x), F32(x), 0, 255)
    assert choose_qparams_dynamic(-1e39, 1.0, 0, 255) == choose_qparams_dynamic(-INF, 1.0, 0, 255)


@pytest.mark.parametrize("mn,mx", [(NAN, 1.0), (1.0, NAN), (NAN, NAN), (2.0, 1.0)])
def test_dynamic_bad_range_raises(mn, mx):
    with pytest.raises(ValueError, match="xmin must be <= xmax"):
        choose_qparams_dynamic(mn, mx, 0, 255)


def test_dynamic_bad_qrange_raises():
    with pytest.raises(ValueError, match="qmin must be < qmax"):
        choose_qparams_dynamic(0.0, 1.0, 5, 5)


@pytest.mark.parametrize("dt,rr,expected", [
    ("quint8", False, (0, 255)), ("quint8", True, (0, 127)),
    ("qint8", False, (-128, 127)), ("qint8", True, (-64, 63)),
    (D.quint8, True, (0, 127)), (D.qint8, False, (-128, 127)),
])
def test_dynamic_range(dt, rr, expected):
    assert choose_qparams_dynamic_range(dt, rr) == expected


@pytest.mark.parametrize("dt", ["qint32", D.quint4x2, "float16", None])
def test_dynamic_range_rejects_other_dtypes(dt):
    with pytest.raises(ValueError, match="quint8 or qint8"):
        choose_qparams_dynamic_range(dt, False)
