"""Quantized ConvTranspose1d/2d/3d and the kernel-level transposed convolution.

Integer results are compared for exact equality with the scatter reference in
``reference_conv_transpose.py`` (int64 accumulation, written independently of the
kernel's gather).
"""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numq
import numq.layers as L
import numq.quantization as Q
from numq.kernels import conv_transpose as K
from numq.layers.quantized.conv_transpose import (ConvTranspose1d, ConvTranspose2d,
                                                  ConvTranspose3d)

from reference_conv_transpose import (conv_transpose_acc_ref, qconv_transpose_ref,
                                      requantize_ref)

CLASSES = {1: ConvTranspose1d, 2: ConvTranspose2d, 3: ConvTranspose3d}


def _weight(rng, IC, OCg, ks, per_channel, G=1):
    """A qint8 weight QTensor and the per-output-channel (scales, zero points) it implies."""
    codes = rng.integers(-128, 128, (IC, OCg) + tuple(ks)).astype(np.int8)
    if per_channel:
        s = rng.uniform(0.002, 0.03, OCg)
        z = rng.integers(-4, 5, OCg)
        w = numq._make_per_channel_quantized_tensor(codes, s, z, 1, numq.qint8)
        return w, codes, np.tile(s, G), np.tile(z, G)
    s, z = float(rng.uniform(0.002, 0.03)), int(rng.integers(-4, 5))
    return numq._make_per_tensor_quantized_tensor(codes, s, z, numq.qint8), codes, s, z


def _input(rng, shape, scale=0.05, zp=None):
    zp = int(rng.integers(0, 256)) if zp is None else zp
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    return numq._make_per_tensor_quantized_tensor(codes, scale, zp, numq.quint8), codes, zp


def _check_layer(rank, IC, OC, ks, stride, padding, opad, dilation, G, per_channel, spatial,
                 bias=True, N=2, seed=0):
    rng = np.random.default_rng(seed)
    m = CLASSES[rank](IC, OC, ks, stride=stride, padding=padding, output_padding=opad,
                      groups=G, bias=bias, dilation=dilation)
    w, codes, ws, wz = _weight(rng, IC, OC // G, m.kernel_size, per_channel, G)
    b = (rng.standard_normal(OC) * 4).astype(np.float32) if bias else None
    m.set_weight_bias(w, b)
    m.scale, m.zero_point = float(rng.uniform(0.05, 0.4)), int(rng.integers(0, 256))
    x, xc, xzp = _input(rng, (N, IC) + tuple(spatial))
    y = m(x)
    want = qconv_transpose_ref(xc, x.q_scale(), xzp, codes, ws, wz, per_channel, b, m.scale,
                               m.zero_point, m.stride, m.padding, m.output_padding,
                               m.dilation, G)
    assert y.dtype is numq.quint8
    assert (y.q_scale(), y.q_zero_point()) == (m.scale, m.zero_point)
    np.testing.assert_array_equal(y.int_repr(), want)


# (rank, IC, OC, kernel, stride, padding, output_padding, dilation, groups, spatial)
CASES = [
    (2, 4, 6, 3, 2, 1, 1, 1, 1, (5, 7)),
    (2, 3, 5, (1, 4), (1, 3), (0, 1), (0, 2), 1, 1, (6, 3)),
    (2, 4, 4, (7, 2), 1, (3, 0), 0, (1, 2), 2, (4, 5)),
    (2, 6, 6, 3, 2, 0, (1, 0), 1, 6, (5, 5)),          # depthwise
    (2, 6, 3, (5, 5), (3, 2), 2, 0, 2, 3, (3, 4)),
    (2, 2, 8, 6, 3, 2, 2, 1, 2, (1, 1)),               # one input pixel
    (2, 4, 4, 3, 1, 1, (1, 1), 2, 1, (6, 6)),          # output_padding < dilation only
    (2, 2, 3, 2, 2, 0, 2, 1, 1, (3, 3)),               # output_padding >= stride (torch allows)
    (2, 5, 4, 2, 2, 0, 0, 1, 1, (4, 3)),               # k == s: every phase is a 1x1 conv
    (1, 4, 6, 5, 3, 2, 1, 1, 2, (7,)),
    (1, 3, 3, 1, 1, 0, 0, 1, 1, (9,)),
    (1, 8, 2, 4, 2, 3, 1, 3, 1, (11,)),
    (3, 4, 6, 3, 2, 1, 1, 1, 2, (3, 4, 5)),
    (3, 2, 3, (2, 1, 3), (1, 2, 3), (1, 0, 1), (0, 1, 2), (2, 1, 1), 1, (4, 3, 2)),
]


@pytest.fixture(params=["phases", "col2im", "direct"])
def method(request, monkeypatch):
    """Force one of the kernel's three methods (it normally picks by shape)."""
    monkeypatch.setattr(K, "_method", lambda packed, stride: request.param)
    return request.param


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_layer_matches_reference(case, per_channel, method):
    rank, IC, OC, ks, s, p, op, d, G, spatial = case
    _check_layer(rank, IC, OC, ks, s, p, op, d, G, per_channel, spatial,
                 bias=(CASES.index(case) % 3 != 2), seed=CASES.index(case))


@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), G=st.sampled_from([1, 2, 3]),
       icg=st.integers(1, 3), ocg=st.integers(1, 3),
       k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), per_channel=st.booleans(),
       method=st.sampled_from(["phases", "col2im", "direct"]))
def test_int32_accumulators_property(seed, G, icg, ocg, k, s, d, hw, per_channel, method):
    rng = np.random.default_rng(seed)
    p = tuple(int(rng.integers(0, di * (ki - 1) + 1)) for ki, di in zip(k, d))
    op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d))
    out = K.conv_transpose_output_size(hw, k, s, p, op, d)
    if min(out) < 1:
        return
    IC, OC = G * icg, G * ocg
    _, codes, ws, wz = _weight(rng, IC, ocg, k, per_channel, G)
    packed = K.pack_conv_transpose_weight(codes, ws, wz, G)
    xc = rng.integers(0, 256, (2, IC) + hw).astype(np.uint8)
    xzp = int(rng.integers(0, 256))
    with mock.patch.object(K, "_method", lambda packed, stride: method):
        acc = K.qconv_transpose_int32(np.ascontiguousarray(np.moveaxis(xc, 1, -1)), xzp,
                                      packed, s, p, op, d)
    want = conv_transpose_acc_ref(xc, xzp, codes, wz, s, p, op, d, G)
    assert acc.dtype == np.int32
    np.testing.assert_array_equal(np.moveaxis(acc, -1, 1), want)


def test_parallel_paths_match_reference(method):
    # 16 channels x 66 x 66 output: above the gather kernels' serial threshold
    _check_layer(2, 8, 16, 4, 2, 1, 1, 1, 2, True, (33, 33), N=1, seed=7)
    # 64 channels at 48 x 48, 3x3: a 1.3 MB im2col / 4.7 MB expanded input, above the
    # copies' serial threshold
    _check_layer(2, 64, 8, 3, 1, 1, 0, 1, 1, True, (48, 48), N=1, seed=17)
    rng = np.random.default_rng(8)
    _, codes, ws, wz = _weight(rng, 8, 8, (4, 4), True, 2)
    packed = K.pack_conv_transpose_weight(codes, ws, wz, 2)
    xc = rng.integers(0, 256, (1, 8, 33, 33)).astype(np.uint8)
    acc = K.qconv_transpose_int32(np.ascontiguousarray(np.moveaxis(xc, 1, -1)), 9, packed,
                                  (2, 2), (1, 1), (1, 1), (1, 1))
    np.testing.assert_array_equal(
        np.moveaxis(acc, -1, 1),
        conv_transpose_acc_ref(xc, 9, codes, wz, (2, 2), (1, 1), (1, 1), (1, 1), 2))


def test_channels_beyond_the_gemm_k_limit():
    # 8200 input channels x 9 taps exceeds the GEMM's K limit for a phase GEMM: the
    # kernel must pick a method that still works (and stays exact)
    _check_layer(2, 8200, 2, 3, 1, 1, 0, 1, 1, False, (2, 2), N=1, seed=13)


def test_kernel_api_round_trip_and_out():
    rng = np.random.default_rng(3)
    _, codes, ws, wz = _weight(rng, 4, 3, (3, 3), True, 2)
    packed = K.pack_conv_transpose_weight(codes, ws, wz, 2)
    np.testing.assert_array_equal(K.unpack_conv_transpose_weight(packed), codes)
    assert packed.per_channel and packed.out_channels == 6 and packed.kernel_size == (3, 3)
    x = rng.integers(0, 256, (1, 5, 4, 4)).astype(np.uint8)
    out = np.empty((1, 11, 9, 6), np.uint8)
    assert not packed.plans  # no geometry given: the sub-kernels are packed on first use
    r = K.qconv_transpose(x, 0.1, 100, packed, None, 0.5, 10, (2, 2), (0, 0), (0, 0), (1, 1),
                          out=out)
    assert r is out and len(packed.plans) == 1
    eager = K.pack_conv_transpose_weight(codes, ws, wz, 2, (2, 2), (0, 0), (1, 1))
    assert list(eager.plans) == list(packed.plans)
    want = requantize_ref(conv_transpose_acc_ref(np.moveaxis(x, -1, 1), 100, codes, wz,
                                                 (2, 2), (0, 0), (0, 0), (1, 1), 2),
                          0.1, ws, True, None, 0.5, 10)
    np.testing.assert_array_equal(np.moveaxis(out, -1, 1), want)


def test_saturation_and_empty_positions():
    # a big output scale collapses everything to the zero point; a tiny one saturates.
    # stride 3 with kernel 1 leaves positions no input reaches: they hold bias only.
    m = ConvTranspose1d(1, 1, 1, stride=3)
    m.set_weight_bias(numq._make_per_tensor_quantized_tensor(np.array([[[127]]], np.int8),
                                                             1.0, 0, numq.qint8),
                      np.array([2.0], np.float32))
    x = numq._make_per_tensor_quantized_tensor(np.array([[[255, 0]]], np.uint8), 1.0, 0,
                                               numq.quint8)
    m.scale, m.zero_point = 1.0, 3
    np.testing.assert_array_equal(m(x).int_repr(), [[[255, 5, 5, 5]]])
    m.scale = 1e6
    np.testing.assert_array_equal(m(x).int_repr(), [[[3, 3, 3, 3]]])


def test_output_is_a_channels_last_view_that_behaves():
    rng = np.random.default_rng(11)
    m = ConvTranspose2d(3, 5, 3, stride=2)
    m.set_weight_bias(_weight(rng, 3, 5, (3, 3), False)[0], None)
    x, _, _ = _input(rng, (2, 3, 4, 4))
    y = m(x)
    yc = y.contiguous()
    assert yc.is_contiguous()
    np.testing.assert_array_equal(y.int_repr(), yc.int_repr())
    np.testing.assert_array_equal(y.dequantize(), yc.dequantize())
    np.testing.assert_array_equal(y[1, 2].int_repr(), yc.int_repr()[1, 2])
    # a channels-last view as input gives what its contiguous copy gives
    m2 = ConvTranspose2d(5, 2, 2)
    m2.set_weight_bias(_weight(rng, 5, 2, (2, 2), True)[0], np.ones(2, np.float32))
    np.testing.assert_array_equal(m2(y).int_repr(), m2(yc).int_repr())


def test_empty_batch():
    m = ConvTranspose2d(2, 3, 3)
    x = numq._make_per_tensor_quantized_tensor(np.zeros((0, 2, 4, 4), np.uint8), 0.1, 0,
                                               numq.quint8)
    assert m(x).shape == (0, 3, 6, 6)


def test_output_size_picks_output_padding():
    rng = np.random.default_rng(5)
    m = ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    m.set_weight_bias(_weight(rng, 2, 2, (3, 3), False)[0], None)
    x, _, _ = _input(rng, (1, 2, 6, 6))
    y = m(x, output_size=(1, 2, 12, 11))
    assert y.shape == (1, 2, 12, 11)
    m.output_padding = (1, 0)
    np.testing.assert_array_equal(y.int_repr(), m(x).int_repr())


def test_weight_bias_round_trip_and_state_dict():
    rng = np.random.default_rng(2)
    m = ConvTranspose3d(4, 6, (2, 3, 1), stride=(1, 2, 1), groups=2)
    w = _weight(rng, 4, 3, (2, 3, 1), True, 2)[0]
    b = rng.standard_normal(6).astype(np.float32)
    m.set_weight_bias(w, b)
    m.scale, m.zero_point = 0.25, 77
    assert m.weight().equal(w) and m.weight().q_per_channel_axis() == 1
    np.testing.assert_array_equal(m.bias(), b)
    sd = m.state_dict()  # its layout is the shared _ConvNd base's (tested with Conv)
    m2 = ConvTranspose3d(4, 6, (2, 3, 1), stride=(1, 2, 1), groups=2, bias=False)
    m2.load_state_dict(sd)
    assert (m2.scale, m2.zero_point) == (0.25, 77)
    assert m2.weight().equal(w)
    np.testing.assert_array_equal(m2.bias(), b)
    x, _, _ = _input(rng, (1, 4, 3, 3, 3))
    np.testing.assert_array_equal(m2(x).int_repr(), m(x).int_repr())
    assert repr(m).startswith("QuantizedConvTranspose3d(4, 6, kernel_size=(2, 3, 1), "
                              "stride=(1, 2, 1), scale=0.25, zero_point=77, groups=2")


def test_defaults_and_no_bias():
    m = ConvTranspose1d(3, 4, 2, bias=False)
    assert m.bias() is None and (m.scale, m.zero_point) == (1.0, 0)
    assert m.weight().shape == (3, 4, 2) and m.weight().qscheme() is numq.per_tensor_affine
    assert m._input_padding([3, 5], [1, 2], [1, 3]) == [1, 5]


def test_from_float_matches_manual_quantization():
    rng = np.random.default_rng(4)
    f = L.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                          generator=1)
    f.qconfig = Q.default_qconfig
    f.activation_post_process = f.qconfig.activation()
    f.activation_post_process(rng.standard_normal(100).astype(np.float32) * 3)
    q = ConvTranspose2d.from_float(f)
    wobs = Q.default_qconfig.weight()
    wobs(f.weight.data)
    s, z = wobs.calculate_qparams()
    wq = numq.quantize_per_tensor(f.weight.data, float(s[0] if np.ndim(s) else s),
                                  int(z[0] if np.ndim(z) else z), numq.qint8)
    assert q.weight().equal(wq)
    np.testing.assert_array_equal(q.bias(), f.bias.data)
    os_, oz = f.activation_post_process.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(np.asarray(os_).reshape(-1)[0]),
                                       int(np.asarray(oz).reshape(-1)[0]))
    assert (q.stride, q.padding, q.output_padding, q.groups) == ((2, 2), (1, 1), (1, 1), 2)


def test_from_float_per_channel_axis1():
    f = L.ConvTranspose1d(3, 4, 2, generator=0)
    f.qconfig = Q.QConfig(activation=Q.default_observer,
                          weight=Q.PerChannelMinMaxObserver.with_args(
                              dtype=numq.qint8, qscheme=numq.per_channel_symmetric, ch_axis=1))
    q = ConvTranspose1d.from_float(f)
    assert q.weight().q_per_channel_axis() == 1 and q.weight().shape == (3, 4, 2)


# ------------------------------------------------------------------ bad input

def _layer():
    return ConvTranspose2d(4, 4, 3)


def _x(shape=(1, 4, 5, 5), dtype=numq.quint8):
    return numq._make_per_tensor_quantized_tensor(np.zeros(shape, dtype.storage), 0.1, 0,
                                                  dtype)


def test_bad_input_not_quantized():
    with pytest.raises(TypeError, match="input must be a quantized tensor"):
        _layer()(np.zeros((1, 4, 5, 5), np.float32))


def test_bad_input_dtype():
    with pytest.raises(TypeError, match="input must have dtype quint8"):
        _layer()(_x(dtype=numq.qint8))


def test_bad_input_per_channel():
    x = numq._make_per_channel_quantized_tensor(np.zeros((1, 4, 5, 5), np.uint8),
                                                np.ones(4), np.zeros(4, np.int64), 1,
                                                numq.quint8)
    with pytest.raises(ValueError, match="per-tensor"):
        _layer()(x)


@pytest.mark.parametrize("shape", [(4, 5, 5), (1, 1, 4, 5, 5)])
def test_bad_input_rank(shape):
    with pytest.raises(ValueError, match=r"input shape must be \(N, C, H, W\)"):
        _layer()(_x(shape))


def test_bad_input_channels():
    with pytest.raises(ValueError, match="expected input with 4 channels"):
        _layer()(_x((1, 3, 5, 5)))


def test_bad_output_size_below_one():
    with pytest.raises(ValueError, match="output spatial size .* would be < 1"):
        ConvTranspose2d(4, 4, 3, padding=3)(_x((1, 4, 2, 2)))


def test_bad_output_size_argument():
    with pytest.raises(ValueError, match="valid sizes range"):
        _layer()(_x(), output_size=(20, 20))


def test_bad_groups():
    with pytest.raises(ValueError, match="must be divisible by groups"):
        ConvTranspose2d(4, 6, 3, groups=4)


def test_bad_padding_mode():
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        ConvTranspose2d(4, 4, 3, padding_mode="reflect")


def test_bad_padding_string():
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        ConvTranspose2d(4, 4, 3, padding="same")


def test_bad_padding_negative():
    with pytest.raises(ValueError, match="padding must be >= 0"):
        ConvTranspose2d(4, 4, 3, padding=-1)


def test_bad_stride():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ConvTranspose2d(4, 4, 3, stride=0)


def test_bad_weight_per_channel_axis0():
    w = numq._make_per_channel_quantized_tensor(np.zeros((4, 4, 3, 3), np.int8), np.ones(4),
                                                np.zeros(4, np.int64), 0, numq.qint8)
    with pytest.raises(ValueError, match="along axis 1"):
        _layer().set_weight_bias(w, None)


def test_bad_weight_shape():
    with pytest.raises(ValueError, match="weight must have shape"):
        _layer().set_weight_bias(numq._make_per_tensor_quantized_tensor(
            np.zeros((4, 4, 2, 2), np.int8), 1.0, 0, numq.qint8), None)


def test_bad_weight_dtype():
    with pytest.raises(TypeError, match="weight must have dtype qint8"):
        _layer().set_weight_bias(_x((4, 4, 3, 3)), None)


def test_bad_bias_shape():
    m = _layer()
    with pytest.raises(ValueError, match="bias must have shape"):
        m.set_weight_bias(m.weight(), np.zeros(3, np.float32))


def test_bad_from_float_module_type():
    f = L.Conv2d(2, 2, 1)
    f.qconfig = Q.default_qconfig
    with pytest.raises(TypeError, match="from_float only works for ConvTranspose2d"):
        ConvTranspose2d.from_float(f)


def test_bad_from_float_without_qconfig():
    with pytest.raises(ValueError, match="qconfig"):
        ConvTranspose2d.from_float(L.ConvTranspose2d(2, 2, 1))
