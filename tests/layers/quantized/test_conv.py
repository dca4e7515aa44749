"""Quantized Conv1d/2d/3d, ConvReLU, functional conv and the conv kernels: exact
equality with the NumPy reference (reference_conv.py), layout independence, layer
state, and one test per class of bad input.
"""
import numpy as np
import pytest

import numq
import numq.layers as L
import numq.quantization as Q
from numq.kernels import conv as K
from numq.layers.intrinsic import ConvReLU2d as FloatConvReLU2d
from numq.layers.intrinsic.quantized import ConvReLU1d, ConvReLU2d, ConvReLU3d
from numq.layers.quantized import functional as qF
from numq.layers.quantized.conv import Conv1d, Conv2d, Conv3d

from reference_conv import qconv_ref

CONV = {1: Conv1d, 2: Conv2d, 3: Conv3d}
CONV_RELU = {1: ConvReLU1d, 2: ConvReLU2d, 3: ConvReLU3d}


def _qx(rng, shape, hi=256):
    codes = rng.integers(0, hi, shape).astype(np.uint8)
    s, z = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
    return numq._make_per_tensor_quantized_tensor(codes, s, z, numq.quint8)


def _qw(rng, shape, per_channel, lo=-128, hi=128):
    codes = rng.integers(lo, hi, shape).astype(np.int8)
    OC = shape[0]
    if per_channel:
        return numq._make_per_channel_quantized_tensor(
            codes, rng.uniform(0.002, 0.03, OC), rng.integers(-5, 6, OC), 0, numq.qint8)
    return numq._make_per_tensor_quantized_tensor(
        codes, float(rng.uniform(0.002, 0.03)), int(rng.integers(-5, 6)), numq.qint8)


def _channels_last(x):
    """The same QTensor stored channels-last (``(N, C, *sp)`` view of ``(N, *sp, C)``)."""
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    back = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
    return numq._make_per_tensor_quantized_tensor(
        np.ascontiguousarray(x.int_repr().transpose(perm)).transpose(back),
        x.q_scale(), x.q_zero_point(), numq.quint8)


def _wparams(w):
    OC = w.shape[0]
    if w.qscheme() is numq.per_tensor_affine:
        return np.full(OC, w.q_scale()), np.full(OC, w.q_zero_point()), False
    return w.q_per_channel_scales(), w.q_per_channel_zero_points(), True


def _ref(x, w, b, stride, padding, dilation, groups, scale, zp, relu=False):
    ws, wz, pc = _wparams(w)
    return qconv_ref(x.int_repr(), x.q_scale(), x.q_zero_point(), w.int_repr(), ws, wz, pc,
                     b, stride, padding, dilation, groups, scale, zp, relu)


def _layer(rank, kw, rng, per_channel, relu=False, bias=True):
    m = (CONV_RELU if relu else CONV)[rank](**kw)
    g = m.groups
    w = _qw(rng, (m.out_channels, m.in_channels // g) + m.kernel_size, per_channel)
    b = (rng.standard_normal(m.out_channels) * 3).astype(np.float32) if bias else None
    m.set_weight_bias(w, b)
    m.scale, m.zero_point = float(rng.uniform(0.05, 0.4)), int(rng.integers(0, 256))
    return m, w, b


def _check_layer(m, w, b, x, relu=False):
    y = m(x)
    ref = _ref(x, w, b, m.stride, m.padding, m.dilation, m.groups, m.scale, m.zero_point,
               relu)
    assert y.dtype is numq.quint8 and (y.q_scale(), y.q_zero_point()) == (m.scale,
                                                                          m.zero_point)
    np.testing.assert_array_equal(y.int_repr(), ref)
    return y


# (rank, kwargs, input shape): strides, paddings, dilations, groups 1 / 2 / depthwise /
# depthwise multiplier, kernel sizes 1..7, rectangular kernels, odd sizes, batch > 1
CASES = [
    (2, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1), (2, 4, 7, 9)),
    (2, dict(in_channels=6, out_channels=4, kernel_size=(2, 5), stride=(2, 1),
             padding=(0, 2), groups=2), (1, 6, 9, 6)),
    (2, dict(in_channels=8, out_channels=8, kernel_size=3, stride=2, padding=1,
             groups=8), (2, 8, 9, 7)),
    (2, dict(in_channels=4, out_channels=12, kernel_size=(3, 4), dilation=2, padding=(2, 1),
             groups=4), (1, 4, 11, 10)),
    (2, dict(in_channels=3, out_channels=16, kernel_size=7, stride=2, padding=3),
     (2, 3, 15, 13)),
    (2, dict(in_channels=16, out_channels=24, kernel_size=1), (2, 16, 5, 7)),
    (2, dict(in_channels=16, out_channels=8, kernel_size=1, stride=(2, 3)), (1, 16, 7, 5)),
    (2, dict(in_channels=5, out_channels=7, kernel_size=(1, 6), dilation=(1, 2),
             padding=(0, 3)), (2, 5, 3, 13)),
    (2, dict(in_channels=1, out_channels=5, kernel_size=(5, 2)), (2, 1, 6, 3)),
    (1, dict(in_channels=4, out_channels=6, kernel_size=5, stride=2, padding=2), (3, 4, 17)),
    (1, dict(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6), (2, 6, 9)),
    (1, dict(in_channels=4, out_channels=2, kernel_size=4, dilation=3, groups=2), (1, 4, 11)),
    (3, dict(in_channels=4, out_channels=6, kernel_size=(3, 2, 3), stride=(1, 2, 1),
             padding=(1, 0, 1)), (2, 4, 5, 6, 5)),
    (3, dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, dilation=(2, 1, 1),
             groups=4), (1, 4, 5, 4, 5)),
]


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-{sorted(c[1].items())}")
def test_conv_matches_reference(case, per_channel):
    rank, kw, shape = case
    rng = np.random.default_rng(abs(hash((str(case), per_channel))) % 2**32)
    m, w, b = _layer(rank, kw, rng, per_channel)
    _check_layer(m, w, b, _qx(rng, shape))


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5], CASES[9]],
                         ids=["2d", "depthwise", "1x1", "1d"])
def test_gemm_variants_match_reference(case, isa_variant):
    rank, kw, shape = case
    rng = np.random.default_rng(5)
    m, w, b = _layer(rank, kw, rng, True)
    _check_layer(m, w, b, _qx(rng, shape))


# 64k input channels, groups 1, symmetric weights: the AMX variant's implicit GEMM reads
# bands of padded input rows (partial 16-pixel tiles, strides, dilation, batch, ranks;
# several bands per plane, uneven last bands, bands wholly in the padding, 3-D bands of
# several depth planes, more output channels than one strip group)
AMX_CASES = [
    (2, dict(in_channels=64, out_channels=40, kernel_size=3, padding=1), (2, 64, 9, 11)),
    (2, dict(in_channels=128, out_channels=33, kernel_size=(3, 2), stride=2, padding=(1, 0),
             dilation=(2, 1)), (1, 128, 12, 9)),
    (1, dict(in_channels=64, out_channels=64, kernel_size=5, stride=3, padding=2), (3, 64, 40)),
    (3, dict(in_channels=64, out_channels=16, kernel_size=(2, 3, 1), padding=(0, 1, 0)),
     (1, 64, 3, 5, 18)),
    (2, dict(in_channels=64, out_channels=48, kernel_size=3, padding=2, dilation=2),
     (2, 64, 30, 17)),
    (2, dict(in_channels=64, out_channels=160, kernel_size=(1, 3), padding=(4, 1)),
     (1, 64, 13, 16)),
    (3, dict(in_channels=64, out_channels=32, kernel_size=3, stride=(2, 1, 1), padding=1),
     (1, 64, 5, 21, 7)),
]
AMX_IDS = ["2d", "2d-strided", "1d", "3d", "2d-bands-dilated", "2d-pad-rows-wide",
           "3d-bands"]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", AMX_CASES, ids=AMX_IDS)
def test_implicit_gemm_path_matches_reference(case, relu, channels_last, isa_variant):
    rank, kw, shape = case
    rng = np.random.default_rng(11)
    m, w, b = _layer(rank, kw, rng, True, relu=relu)
    ws = w.q_per_channel_scales()
    m.set_weight_bias(numq._make_per_channel_quantized_tensor(
        w.int_repr(), ws, np.zeros(len(ws), np.int64), 0, numq.qint8), b)
    x = _qx(rng, shape)
    if channels_last:
        x = _channels_last(x)
    _check_layer(m, m.weight(), b, x, relu=relu)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_relu_matches_reference(rank):
    rank, kw, shape = {1: CASES[9], 2: CASES[1], 3: CASES[12]}[rank]
    rng = np.random.default_rng(6)
    m, w, b = _layer(rank, kw, rng, True, relu=True)
    y = _check_layer(m, w, b, _qx(rng, shape), relu=True)
    assert y.int_repr().min() >= m.zero_point


def test_no_bias():
    rng = np.random.default_rng(7)
    m, w, b = _layer(2, CASES[0][1], rng, False, bias=False)
    assert m.bias() is None and "bias=False" in repr(m)
    _check_layer(m, w, None, _qx(rng, CASES[0][2]))


def test_depthwise_full_range_is_exact():
    """Full-range codes, where torch's x86 3x3 depthwise kernel saturates int16 pair
    sums (docs: "Quantized convolution"): numq keeps exact int32 sums."""
    rng = np.random.default_rng(8)
    m = Conv2d(16, 16, 3, padding=1, groups=16)
    codes = np.where(rng.random((16, 1, 3, 3)) < 0.5, -128, 127).astype(np.int8)
    w = numq._make_per_channel_quantized_tensor(codes, np.full(16, 0.01), np.zeros(16, int),
                                                0, numq.qint8)
    m.set_weight_bias(w, None)
    m.scale, m.zero_point = 40.0, 128
    x = numq._make_per_tensor_quantized_tensor(
        np.where(codes[None, :, 0, :2, :1] > 0, 255, 0).repeat(4, 2).repeat(4, 3)
        .astype(np.uint8).reshape(1, 16, 8, 4), 0.05, 0, numq.quint8)
    _check_layer(m, w, None, x)


# the direct 3x3 depthwise kernel: nine taps in registers, read from a ring of padded
# input rows (batches, strides, dilations that map rows to ring slots unevenly, lines
# wholly in the padding); channels-last inputs of C not a multiple of 16, large enough
# (the second and the dilated batch) for the parallel driver
DW3_CASES = [
    (dict(stride=1, padding=1), (2, 20, 9, 11)),
    (dict(stride=(2, 1), padding=(4, 1), dilation=(3, 1)), (2, 20, 16, 9)),
    (dict(stride=1, padding=1), (1, 40, 48, 40)),
    (dict(stride=2, padding=1), (1, 20, 12, 9)),
    (dict(stride=(1, 2), padding=(2, 0), dilation=2), (2, 20, 11, 13)),
    (dict(stride=1, padding=0), (1, 20, 3, 5)),
    (dict(stride=1, padding=3), (1, 20, 4, 4)),        # no position has all taps inside
]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("case", DW3_CASES, ids=lambda c: f"{sorted(c[0].items())}-{c[1]}")
def test_depthwise_3x3_direct_path(case, per_channel, relu):
    kw, shape = case
    C = shape[1]
    rng = np.random.default_rng(abs(hash((str(case), per_channel, relu))) % 2**32)
    m, w, b = _layer(2, dict(in_channels=C, out_channels=C, kernel_size=3, groups=C, **kw),
                     rng, per_channel, relu=relu)
    x = _qx(rng, shape)
    _check_layer(m, w, b, _channels_last(x), relu=relu)


def test_depthwise_3x3_pixel_strided_view():
    # the kernel reads a channels-last view in place: pixels 2*C bytes apart
    rng = np.random.default_rng(23)
    C = 24
    codes = rng.integers(-128, 128, (C, 1, 3, 3)).astype(np.int8)
    ws, b = rng.uniform(0.01, 0.02, C), rng.standard_normal(C).astype(np.float32)
    p = K.pack_conv_weight(codes, ws, np.zeros(C, np.int64), C)
    wide = rng.integers(0, 256, (2, 10, 14, C)).astype(np.uint8)
    view = wide[:, :, ::2, :].transpose(0, 3, 1, 2)
    assert view.strides[3] == 2 * C and view.strides[1] == 1
    y = K.qconv(view, 0.05, 3, p, b, (1, 1), (1, 1), (1, 1), 0.5, 9)
    want = qconv_ref(np.ascontiguousarray(view), 0.05, 3, codes, ws, np.zeros(C, np.int64),
                     True, b, (1, 1), (1, 1), (1, 1), C, 0.5, 9, False)
    np.testing.assert_array_equal(y, want)


# 2 or 3 input channels (first layers): 4-byte pixels and a word im2col; NCHW and
# channels-last inputs, strides, paddings, dilation, rectangular kernels, 1-D and 3-D
FEW_CHANNEL_CASES = [
    (2, dict(in_channels=3, out_channels=32, kernel_size=3, stride=2, padding=1), (2, 3, 17, 15)),
    (2, dict(in_channels=2, out_channels=5, kernel_size=(2, 3), padding=(1, 0), dilation=2),
     (1, 2, 9, 8)),
    (2, dict(in_channels=3, out_channels=33, kernel_size=5, stride=(1, 3), padding=2),
     (1, 3, 11, 12)),
    (1, dict(in_channels=3, out_channels=8, kernel_size=4, stride=2, padding=1), (2, 3, 19)),
    (3, dict(in_channels=2, out_channels=6, kernel_size=3, padding=1), (1, 2, 4, 5, 6)),
    (2, dict(in_channels=3, out_channels=40, kernel_size=7, stride=2, padding=3),
     (1, 3, 37, 35)),
]


@pytest.mark.parametrize("symmetric", [False, True], ids=["w_zp", "symmetric"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("case", FEW_CHANNEL_CASES, ids=lambda c: f"{c[0]}d-{c[2]}")
def test_few_input_channels(case, per_channel, channels_last, symmetric, isa_variant):
    # AMX: symmetric weights with dense kernel rows take the implicit GEMM over bands of
    # 4-byte pixels (one 64-k step per kernel row), the rest im2col rows padded to 64
    # bytes; the other variants 4-byte words
    rank, kw, shape = case
    rng = np.random.default_rng(abs(hash((str(case), per_channel))) % 2**32)
    m, w, b = _layer(rank, kw, rng, per_channel)
    if symmetric:
        if per_channel:
            ws = w.q_per_channel_scales()
            w = numq._make_per_channel_quantized_tensor(
                w.int_repr(), ws, np.zeros(len(ws), np.int64), 0, numq.qint8)
        else:
            w = numq._make_per_tensor_quantized_tensor(w.int_repr(), w.q_scale(), 0,
                                                       numq.qint8)
        m.set_weight_bias(w, b)
    x = _qx(rng, shape)
    if channels_last:
        x = _channels_last(x)
    _check_layer(m, w, b, x)


def test_input_layouts_give_the_same_codes():
    """NCHW, channels-last views, strided views and chained layers all read in place."""
    rng = np.random.default_rng(9)
    m, w, b = _layer(2, dict(in_channels=16, out_channels=8, kernel_size=3, padding=1),
                     rng, True)
    x = _qx(rng, (2, 16, 9, 8))
    want = _check_layer(m, w, b, x).int_repr()
    cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(x._int, 1, -1)), -1, 1)
    xcl = numq._make_per_tensor_quantized_tensor(cl, x.q_scale(), x.q_zero_point(),
                                                 numq.quint8)
    xcl._int = cl  # keep the channels-last view (the constructor copies to C order)
    np.testing.assert_array_equal(m(xcl).int_repr(), want)
    big = _qx(rng, (2, 16, 18, 9))
    sub = big[:, :, ::2]  # strided view: rows 0, 2, 4, ...
    _check_layer(m, w, b, sub)
    # a second layer reads the first's channels-last output without conversion
    m2, w2, b2 = _layer(2, dict(in_channels=8, out_channels=8, kernel_size=3, groups=8),
                        rng, False)
    y = m(x)
    assert not y.is_contiguous() and y._int.strides[1] == 1
    _check_layer(m2, w2, b2, y)
    # a channel slice of a channels-last tensor: unaligned start, channel stride 1
    m3, w3, b3 = _layer(2, dict(in_channels=8, out_channels=4, kernel_size=3, padding=1),
                        rng, True)
    wide = numq._make_per_tensor_quantized_tensor(
        np.moveaxis(rng.integers(0, 256, (2, 9, 8, 11)).astype(np.uint8), -1, 1),
        0.05, 3, numq.quint8)
    wide._int = np.moveaxis(np.ascontiguousarray(np.moveaxis(wide._int, 1, -1)), -1, 1)
    _check_layer(m3, w3, b3, wide[:, 1:9])


def test_output_behaves_like_a_contiguous_qtensor():
    rng = np.random.default_rng(10)
    m, _, _ = _layer(2, CASES[0][1], rng, False)
    y = m(_qx(rng, CASES[0][2]))
    c = y.contiguous()
    assert c.is_contiguous() and c.equal(y) and y.equal(c)
    np.testing.assert_array_equal(y.dequantize(), c.dequantize())
    np.testing.assert_array_equal(y.reshape(2, -1).int_repr(), c.reshape(2, -1).int_repr())
    np.testing.assert_array_equal(y[1, 2:4].int_repr(), c[1, 2:4].int_repr())
    assert y.int_repr().flags.c_contiguous


def test_parallel_and_chunked_paths_match_reference(monkeypatch):
    """Inputs above the parallel threshold, and a batch split into im2col chunks."""
    rng = np.random.default_rng(11)
    m, w, b = _layer(2, dict(in_channels=32, out_channels=16, kernel_size=3, padding=1,
                             groups=2), rng, True)
    x = _qx(rng, (3, 32, 28, 28))
    assert 3 * 28 * 28 * 32 >= K.PARALLEL_MIN
    want = _check_layer(m, w, b, x).int_repr()
    monkeypatch.setattr(K, "_CHUNK_BYTES", 1)  # one sample per chunk, a ragged last one
    np.testing.assert_array_equal(m(x).int_repr(), want)
    md, wd, bd = _layer(2, dict(in_channels=32, out_channels=32, kernel_size=3, padding=1,
                                groups=32), rng, True)
    _check_layer(md, wd, bd, x)


def test_reflect_padding():
    rng = np.random.default_rng(12)
    for rank, shape in ((1, (2, 4, 9)), (2, (2, 4, 6, 7))):
        m, w, b = _layer(rank, dict(in_channels=4, out_channels=6, kernel_size=3, padding=2,
                                    padding_mode="reflect"), rng, True)
        x = _qx(rng, shape)
        pads = [(0, 0), (0, 0)] + [(2, 2)] * rank
        xp = numq._make_per_tensor_quantized_tensor(np.pad(x.int_repr(), pads, mode="reflect"),
                                                    x.q_scale(), x.q_zero_point(), numq.quint8)
        ref = _ref(xp, w, b, m.stride, (0,) * rank, m.dilation, 1, m.scale, m.zero_point)
        np.testing.assert_array_equal(m(x).int_repr(), ref)


def test_functional_matches_reference():
    rng = np.random.default_rng(13)
    for rank, shape, wshape in ((1, (2, 4, 10), (6, 2, 3)), (2, (2, 4, 8, 7), (6, 2, 3, 2)),
                                (3, (1, 4, 4, 5, 3), (4, 2, 2, 2, 2))):
        x, w = _qx(rng, shape), _qw(rng, wshape, rank != 2)
        b = rng.standard_normal(wshape[0]).astype(np.float32)
        kw = dict(stride=2, padding=1, dilation=1, groups=2)
        y = getattr(qF, f"conv{rank}d")(x, w, b, scale=0.3, zero_point=17, **kw)
        ref = _ref(x, w, b, (2,) * rank, (1,) * rank, (1,) * rank, 2, 0.3, 17)
        np.testing.assert_array_equal(y.int_repr(), ref)


def test_kernel_api_pack_unpack_and_qconv():
    rng = np.random.default_rng(14)
    codes = rng.integers(-128, 128, (6, 2, 3, 3)).astype(np.int8)
    p = K.pack_conv_weight(codes, rng.uniform(0.01, 0.02, 6), rng.integers(-3, 4, 6), 2)
    np.testing.assert_array_equal(K.unpack_conv_weight(p), codes)
    assert p.per_channel and not p.depthwise and p.in_channels == 4
    x = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    y = K.qconv(x, 0.05, 3, p, None, (1, 1), (1, 1), (1, 1), 0.5, 9)
    ref = qconv_ref(x, 0.05, 3, codes, p.scales, p.zero_points, True, None, (1, 1), (1, 1),
                    (1, 1), 2, 0.5, 9)
    np.testing.assert_array_equal(y, ref)


# ------------------------------------------------------------------ layer state
def test_weight_bias_state_dict_round_trip():
    rng = np.random.default_rng(15)
    for per_channel in (False, True):
        m, w, b = _layer(2, CASES[1][1], rng, per_channel)
        assert m.weight().equal(w)
        np.testing.assert_array_equal(m.bias(), b)
        sd = m.state_dict()
        assert set(sd) == {"weight", "weight_scale", "weight_zero_point", "weight_axis",
                           "bias", "scale", "zero_point"}
        assert all(isinstance(v, np.ndarray) for v in sd.values())
        m2 = Conv2d(**CASES[1][1])
        m2.load_state_dict(sd)
        assert m2.weight().equal(w) and (m2.scale, m2.zero_point) == (m.scale, m.zero_point)
        x = _qx(rng, CASES[1][2])
        assert m2(x).equal(m(x))
    # torch's layout: the weight as a quantized tensor
    m3 = Conv2d(**CASES[1][1])
    m3.load_state_dict({"weight": w, "bias": b, "scale": 0.5, "zero_point": 3})
    assert m3.weight().equal(w) and (m3.scale, m3.zero_point) == (0.5, 3)
    with pytest.raises(KeyError, match="weight_scale"):
        Conv2d(**CASES[1][1]).load_state_dict({"weight": w.int_repr(), "scale": 1.0,
                                               "zero_point": 0})


def test_repr_and_defaults():
    m = Conv2d(4, 8, (3, 5), stride=2, padding=1, groups=2)
    assert repr(m) == ("QuantizedConv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), scale=1.0, "
                       "zero_point=0, padding=(1, 1), groups=2)")
    assert m.weight().shape == (8, 2, 3, 5) and m.weight().dtype is numq.qint8
    np.testing.assert_array_equal(m.bias(), np.zeros(8, np.float32))
    assert repr(ConvReLU1d(2, 2, 3)).startswith("QuantizedConvReLU1d(2, 2, kernel_size=(3,)")


def test_from_float():
    rng = np.random.default_rng(16)
    f = L.Conv2d(4, 6, 3, padding=1)
    f.qconfig = Q.default_per_channel_qconfig
    f.activation_post_process = f.qconfig.activation()
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    f.activation_post_process(f(x))
    q = Conv2d.from_float(f)
    obs = Q.default_per_channel_qconfig.weight()
    obs(f.weight.data)
    s, z = obs.calculate_qparams()
    want = numq.quantize_per_channel(f.weight.data, s, z, 0, numq.qint8)
    assert q.weight().equal(want)
    s_out, z_out = f.activation_post_process.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(s_out[0]), int(z_out[0]))
    fused = FloatConvReLU2d(L.Conv2d(4, 6, 3), L.ReLU())
    fused.qconfig = Q.default_qconfig
    fused.activation_post_process = fused.qconfig.activation()
    fused.activation_post_process(fused(x))
    qr = ConvReLU2d.from_float(fused)
    assert type(qr) is ConvReLU2d and qr.weight().shape == (6, 4, 3, 3)
    with pytest.raises(TypeError, match="only works for Conv2d"):
        Conv2d.from_float(fused)
    with pytest.raises(ValueError, match="qconfig"):
        Conv2d.from_float(L.Conv2d(4, 6, 3))


# -------------------------------------------------------------------- bad input
def _m_x():
    rng = np.random.default_rng(17)
    return Conv2d(4, 6, 3), _qx(rng, (1, 4, 5, 5))


def test_bad_input_rank():
    m, x = _m_x()
    with pytest.raises(ValueError, match=r"input shape must be `\(N, C, H, W\)`"):
        m(x[0])


def test_bad_input_not_quantized():
    m, x = _m_x()
    with pytest.raises(TypeError, match="input must be a quint8 QTensor"):
        m(x.dequantize())


def test_bad_input_dtype_and_scheme():
    m, x = _m_x()
    with pytest.raises(TypeError, match="quint8"):
        m(numq.quantize_per_tensor(x.dequantize(), 0.1, 0, numq.qint8))
    with pytest.raises(ValueError, match="per-tensor"):
        m(numq.quantize_per_channel(x.dequantize(), np.ones(4), np.zeros(4, int), 1,
                                    numq.quint8))


def test_bad_channel_count():
    m, x = _m_x()
    with pytest.raises(ValueError, match="input has 3 channels.*in_channels = 4"):
        m(x[:, :3])


def test_bad_groups():
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups"):
        Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"out_channels \(6\) must be divisible by groups"):
        Conv2d(4, 6, 3, groups=4)
    with pytest.raises(TypeError, match="groups must be an int"):
        Conv2d(4, 6, 3, groups=1.0)


def test_bad_output_size():
    m, x = _m_x()
    with pytest.raises(ValueError, match="output size .* too small"):
        m(_qx(np.random.default_rng(0), (1, 4, 2, 5)))


def test_bad_geometry_arguments():
    with pytest.raises(ValueError, match="padding='same'"):
        Conv2d(4, 6, 3, padding="same")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        Conv2d(4, 6, 3, stride=0)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 2"):
        Conv2d(4, 6, (3, 3, 3))
    with pytest.raises(ValueError, match="out_channels must be greater than 0"):
        Conv2d(4, 0, 3)


def test_bad_reduction_length():
    w = numq._make_per_tensor_quantized_tensor(np.zeros((1, 8193, 3, 3), np.int8), 0.1, 0,
                                               numq.qint8)
    x = numq._make_per_tensor_quantized_tensor(np.zeros((1, 8193, 3, 3), np.uint8), 0.1, 0,
                                               numq.quint8)
    with pytest.raises(ValueError, match="must be <= 65536"):
        qF.conv2d(x, w, None)


def test_bad_padding_mode():
    with pytest.raises(ValueError, match="'replicate' is not supported"):
        Conv2d(4, 6, 3, padding_mode="replicate")
    with pytest.raises(ValueError, match="does not support reflection"):
        Conv3d(4, 6, 3, padding_mode="reflect")
    _, x = _m_x()
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        qF.conv2d(x, _qw(np.random.default_rng(0), (6, 4, 3, 3), False), None,
                  padding_mode="reflect")


def test_bad_weight():
    m, _ = _m_x()
    rng = np.random.default_rng(18)
    with pytest.raises(TypeError, match="weight must be a quantized tensor"):
        m.set_weight_bias(np.zeros((6, 4, 3, 3), np.int8), None)
    with pytest.raises(TypeError, match="qint8"):
        m.set_weight_bias(numq.quantize_per_tensor(np.zeros((6, 4, 3, 3), np.float32), 0.1,
                                                   0, numq.quint8), None)
    with pytest.raises(ValueError, match=r"weight must have shape \(6, 4, 3, 3\)"):
        m.set_weight_bias(_qw(rng, (6, 4, 3, 2), False), None)
    w_axis1 = numq.quantize_per_channel(np.ones((6, 4, 3, 3), np.float32), np.ones(4),
                                        np.zeros(4, int), 1, numq.qint8)
    with pytest.raises(ValueError, match="along axis 0"):
        m.set_weight_bias(w_axis1, None)


def test_bad_bias():
    m, _ = _m_x()
    w = _qw(np.random.default_rng(19), (6, 4, 3, 3), False)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        m.set_weight_bias(w, np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="bias must be a float array"):
        m.set_weight_bias(w, np.zeros(6, np.int32))


def test_bad_output_qparams():
    m, x = _m_x()
    with pytest.raises(ValueError, match="zero_point must be <= 255"):
        m.zero_point = 256
    with pytest.raises(ValueError, match="scale must be a finite positive"):
        m.scale = 0.0
    w = _qw(np.random.default_rng(20), (6, 4, 3, 3), False)
    with pytest.raises(ValueError, match="zero_point must be >= 0"):
        qF.conv2d(x, w, None, scale=0.1, zero_point=-1)


def test_concurrent_calls_from_python_threads():
    """Per-thread scratch buffers: layers called from several threads at once give the
    same codes as sequential calls."""
    import threading
    rng = np.random.default_rng(22)
    m, _, _ = _layer(2, dict(in_channels=16, out_channels=16, kernel_size=3, padding=1),
                     rng, True)
    md, _, _ = _layer(2, dict(in_channels=16, out_channels=16, kernel_size=3, padding=1,
                              groups=16), rng, True)
    xs = [_qx(rng, (2, 16, 20, 20)) for _ in range(4)]
    want = [(m(x).int_repr(), md(x).int_repr()) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(3):
            got[i] = (m(xs[i]).int_repr(), md(xs[i]).int_repr())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (a, b), (c, d) in zip(want, got):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
