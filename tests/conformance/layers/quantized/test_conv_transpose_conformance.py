"""Quantized ConvTranspose1d/2d/3d against torch 2.13, engine ``fbgemm``: exact equality.

``fbgemm`` is the reference (NUMERICS.md): torch's ``x86`` / oneDNN transposed
convolution is wrong when in_channels != out_channels. fbgemm itself is wrong for 2-d
2x2 kernels with >= 8 input and output channels (its prepack scrambles the weight);
there numq is checked against torch's ``qnnpack`` engine (exact without bias; qnnpack
rounds a float bias differently). torch refuses per-channel transposed-conv weights;
numq's per-channel path is checked against torch's per-tensor one with every channel
given the same qparams.
"""
import warnings

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.quantization as Q
from numq.layers.quantized.conv_transpose import (ConvTranspose1d, ConvTranspose2d,
                                                  ConvTranspose3d)

torch = pytest.importorskip("torch")
tnnq = pytest.importorskip("torch.ao.nn.quantized")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
NUMQ = {1: ConvTranspose1d, 2: ConvTranspose2d, 3: ConvTranspose3d}
TORCH = {1: tnnq.ConvTranspose1d, 2: tnnq.ConvTranspose2d, 3: tnnq.ConvTranspose3d}


@pytest.fixture(autouse=True)
def fbgemm_engine():
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    yield
    torch.backends.quantized.engine = old


def _tq(codes, scale, zp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch._make_per_tensor_quantized_tensor(torch.from_numpy(codes), scale, zp)


def _pair(rank, kw, seed, bias=True, wzp=None):
    """A torch layer and its numq twin with the same random weight, bias and qparams."""
    rng = np.random.default_rng(seed)
    tm, nm = TORCH[rank](**kw), NUMQ[rank](**kw)
    IC, OCg = kw["in_channels"], kw["out_channels"] // kw.get("groups", 1)
    codes = rng.integers(-128, 128, (IC, OCg) + tuple(nm.kernel_size)).astype(np.int8)
    ws = float(rng.uniform(0.002, 0.03))
    wz = int(rng.integers(-5, 6)) if wzp is None else wzp
    b = (rng.standard_normal(kw["out_channels"]) * 4).astype(np.float32) if bias else None
    tm.set_weight_bias(_tq(codes, ws, wz), None if b is None else torch.from_numpy(b))
    nm.set_weight_bias(numq._make_per_tensor_quantized_tensor(codes, ws, wz, numq.qint8), b)
    s, z = float(rng.uniform(0.05, 0.4)), int(rng.integers(0, 256))
    tm.scale, tm.zero_point = s, z
    nm.scale, nm.zero_point = s, z
    return tm, nm, codes, ws, wz, b


def _x(rng, shape):
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    s, z = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
    return (_tq(codes, s, z),
            numq._make_per_tensor_quantized_tensor(codes, s, z, numq.quint8))


def _same(ty, ny, f32_scale=False):
    assert tuple(ty.shape) == ny.shape
    ts = float(np.float32(ty.q_scale())) if f32_scale else ty.q_scale()
    assert (ts, ty.q_zero_point()) == (ny.q_scale(), ny.q_zero_point())
    np.testing.assert_array_equal(ny.int_repr(), ty.int_repr().numpy())


# (rank, kwargs, input spatial)
CASES = [
    (2, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
             output_padding=1), (5, 7)),
    (2, dict(in_channels=6, out_channels=4, kernel_size=(2, 5), stride=(3, 1),
             padding=(0, 2), groups=2), (4, 6)),
    (2, dict(in_channels=4, out_channels=4, kernel_size=3, dilation=2, padding=1,
             output_padding=1, groups=4), (6, 5)),
    (2, dict(in_channels=3, out_channels=5, kernel_size=4, stride=2, output_padding=2), (3, 3)),
    (2, dict(in_channels=2, out_channels=3, kernel_size=(7, 1), stride=(1, 2), padding=(3, 0)),
     (5, 9)),
    (1, dict(in_channels=4, out_channels=6, kernel_size=5, stride=3, padding=2,
             output_padding=1, groups=2, dilation=1), (7,)),
    (1, dict(in_channels=3, out_channels=2, kernel_size=3, dilation=3, padding=2), (8,)),
    (1, dict(in_channels=2, out_channels=4, kernel_size=2, stride=3, output_padding=2), (5,)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=2, stride=2), (4, 5)),
    (3, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
             output_padding=1, groups=2), (3, 4, 3)),
    (3, dict(in_channels=2, out_channels=3, kernel_size=(1, 2, 3), stride=(2, 1, 2),
             dilation=(1, 2, 1)), (2, 3, 4)),
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_matches_torch_fbgemm(case):
    rank, kw, spatial = case
    seed = CASES.index(case)
    tm, nm, *_ = _pair(rank, kw, seed, bias=seed % 3 != 1)
    tx, nx = _x(np.random.default_rng(100 + seed), (2, kw["in_channels"]) + spatial)
    _same(tm(tx), nm(nx))


def test_convtranspose2d_64_to_32_k4_s2():
    # the benchmark shape, at a smaller size
    tm, nm, *_ = _pair(2, dict(in_channels=64, out_channels=32, kernel_size=4, stride=2,
                               padding=1), 3)
    tx, nx = _x(np.random.default_rng(9), (1, 64, 14, 14))
    _same(tm(tx), nm(nx))


def test_per_channel_with_equal_qparams_matches_torch_per_tensor():
    kw = dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, groups=2)
    tm, nm, codes, ws, wz, b = _pair(2, kw, 21)
    wpc = numq._make_per_channel_quantized_tensor(codes, np.full(3, ws), np.full(3, wz), 1,
                                                  numq.qint8)
    nm.set_weight_bias(wpc, b)
    tx, nx = _x(np.random.default_rng(22), (2, 4, 5, 5))
    _same(tm(tx), nm(nx))
    with pytest.raises(RuntimeError, match="Per Channel"):  # what numq adds over torch
        tm.set_weight_bias(torch.quantize_per_channel(
            torch.randn(4, 3, 3, 3), torch.full((3,), 0.1), torch.zeros(3, dtype=torch.long),
            1, torch.qint8), None)


def test_loads_torch_state_dict():
    kw = dict(in_channels=4, out_channels=2, kernel_size=2, stride=2, output_padding=1)
    tm, _, *_ = _pair(2, kw, 31)
    sd = tm.state_dict()
    w = sd["weight"]
    # torch's layout: the weight as a qint8 tensor, scale as a float32 0-d tensor
    nsd = {"weight": numq._make_per_tensor_quantized_tensor(
               w.int_repr().numpy(), w.q_scale(), w.q_zero_point(), numq.qint8),
           "bias": sd["bias"].numpy(), "scale": sd["scale"].numpy(),
           "zero_point": sd["zero_point"].numpy()}
    nm = ConvTranspose2d(**kw)
    nm.load_state_dict(nsd, strict=False)
    assert nm.weight().q_scale() == w.q_scale()
    tx, nx = _x(np.random.default_rng(32), (1, 4, 3, 3))
    # the state dict rounds the output scale to float32; the kernels use f32(scale)
    # anyway, so the codes are unchanged
    _same(tm(tx), nm(nx), f32_scale=True)


def test_from_float_matches_torch():
    torch.manual_seed(0)
    tf = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
    nf = L.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
    nf.load_state_dict({k: v.detach().numpy() for k, v in tf.state_dict().items()})
    data = np.random.default_rng(41).standard_normal((3, 6, 7, 7)).astype(np.float32) * 2
    tf.qconfig = torch.ao.quantization.default_qconfig
    tf.activation_post_process = tf.qconfig.activation()
    tf.activation_post_process(torch.from_numpy(data))
    nf.qconfig = Q.default_qconfig
    nf.activation_post_process = nf.qconfig.activation()
    nf.activation_post_process(data)
    tq, nq = tnnq.ConvTranspose2d.from_float(tf), ConvTranspose2d.from_float(nf)
    assert (tq.scale, tq.zero_point) == (nq.scale, nq.zero_point)
    tw, nw = tq.weight(), nq.weight()
    assert (tw.q_scale(), tw.q_zero_point()) == (nw.q_scale(), nw.q_zero_point())
    np.testing.assert_array_equal(nw.int_repr(), tw.int_repr().numpy())
    np.testing.assert_array_equal(nq.bias(), tq.bias().detach().numpy())
    assert repr(nq) == repr(tq)
    tx, nx = _x(np.random.default_rng(42), (2, 4, 5, 5))
    _same(tq(tx), nq(nx))


@pytest.mark.parametrize("stride", [1, 2])
def test_2x2_kernel_where_fbgemm_is_wrong_matches_qnnpack(stride):
    kw = dict(in_channels=8, out_channels=16, kernel_size=2, stride=stride)
    tm, nm, codes, *_ = _pair(2, kw, 51, bias=False, wzp=0)
    # fbgemm's prepack does not keep a 2x2 transposed weight with >= 8 channels
    assert not np.array_equal(tm.weight().int_repr().numpy(), codes)
    torch.backends.quantized.engine = "qnnpack"   # restored by the fixture
    tq = tnnq.ConvTranspose2d(**kw, bias=False)
    tq.set_weight_bias(_tq(codes, nm.weight().q_scale(), 0), None)
    tq.scale, tq.zero_point = nm.scale, nm.zero_point
    tx, nx = _x(np.random.default_rng(52), (2, 8, 4, 5))
    _same(tq(tx), nm(nx))
