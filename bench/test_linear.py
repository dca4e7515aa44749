"""Benchmarks: int8 quantized Linear (issue 5, section 4), numq vs torch vs onnxruntime.

One group per op and shape ``(M, K, N)``: ``M`` in {1, 16, 64, 256, 512} rows times
``(K, N)`` in {(1024, 1024), (2048, 2048), (768, 3072), (3072, 768)}. Members:

- ``numq``: the kernel-level call ``numq.kernels.gemm.qlinear`` (static) /
  ``qlinear_dynamic`` (dynamic) on weights packed once, output allocated per call.
- ``numq-layer``: ``numq.layers.quantized.Linear`` / ``...quantized.dynamic.Linear``
  called on a QTensor / float array (skipped until those layers exist).
- ``torch``: ``torch.ao.nn.quantized.Linear`` / ``...dynamic.Linear``, engine ``x86``.
- ``ort``: onnxruntime on an in-memory ONNX model: ``QLinearMatMul`` (static; uint8 x
  int8, per-column weight scales, no bias: ONNX's op has none) or
  ``DynamicQuantizeLinear`` + ``MatMulInteger`` + scale + bias (dynamic; ORT fuses it into
  its ``DynamicQuantizeMatMul``). ``intra_op_num_threads=THREADS``, ``inter_op 1``, thread
  spinning off (``session.intra_op.allow_spinning = 0``).
- ``numpy``: float32 ``x @ w.T`` of the same shape (what a NumPy user would write).

Everything runs on 2 threads (fewer if the process's CPU affinity allows fewer: numq,
torch, ORT all use ``THREADS``). Static weights are per-channel symmetric qint8 (torch's
x86 default qconfig); dynamic weights are per-tensor symmetric qint8 (the default of
``quantize_dynamic``). Every member's output is checked once per group before timing:
numq and torch static results must equal a NumPy evaluation of NUMERICS.md's formula
bit for bit, numq's dynamic result must equal torch's, ORT's static result must be within
1 LSB of the bias-free formula. ``extra_info`` holds ``gops`` = ``2*M*K*N / median``.

``test_packed_weight_bytes`` and ``test_no_per_call_weight_allocation`` are not timed;
``--benchmark-only`` skips them, run them with ``-k "packed or allocation" -s``.
"""
import tracemalloc
import warnings

import numba
import numpy as np
import pytest

import numq

# torch 2.13 warns that its quantized dtypes / modules are deprecated
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

MS = [1, 16, 64, 256, 512]
KNS = [(1024, 1024), (2048, 2048), (768, 3072), (3072, 768)]
IMPLS = ["numq", "numq-layer", "torch", "ort", "numpy"]

X_SCALE, X_ZP = 8.0 / 255, 128          # standard-normal activations fill the range
OUT_SCALE, OUT_ZP = 0.04, 128           # outputs have unit variance, a few clamp
# as conftest.py: 2 threads, or fewer if this process may use fewer CPUs (Numba sizes its
# pool from the CPU affinity mask)
THREADS = min(2, numba.config.NUMBA_NUM_THREADS)

_cache = {}


def _kn_id(kn):
    return f"K{kn[0]}xN{kn[1]}"


def _group(kind, M, K, N):
    return f"linear {kind} K{K} N{N} M{M:03d}"


def _once(key, make):
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


# ---------------------------------------------------------------------- data

def _activations(M, K):
    """(float32 x, quint8 codes of x) with X_SCALE / X_ZP."""
    def make():
        x = np.random.default_rng(M * 7919 + K).standard_normal((M, K), dtype=np.float32)
        xq = np.clip(np.rint(x / np.float32(X_SCALE)) + X_ZP, 0, 255).astype(np.uint8)
        return x, xq
    return _once(("x", M, K), make)


def _weights(K, N, per_channel):
    """(float32 w (N, K), int8 codes, float64 scales (N,) or float, bias float32 (N,)).

    Symmetric qint8 as torch's observers make it: scale = max|w| / 127.5, zero point 0.
    """
    def make():
        rng = np.random.default_rng(K * 31 + N)
        w = (rng.standard_normal((N, K), dtype=np.float32) / np.float32(np.sqrt(K)))
        b = (0.1 * rng.standard_normal(N)).astype(np.float32)
        amax = np.abs(w).max(axis=1) if per_channel else np.abs(w).max()
        scales = (np.asarray(amax, np.float64) / 127.5)
        s = scales[:, None] if per_channel else scales
        wq = np.clip(np.rint(w / s), -128, 127).astype(np.int8)
        return w, wq, (scales if per_channel else float(scales)), b
    return _once(("w", K, N, per_channel), make)


def _acc(M, K, N):
    """Exact int32 accumulators sum_k (x - x_zp) * w for the static case (float64 BLAS:
    every partial sum is an integer below 2**53, so the float64 product is exact)."""
    def make():
        _, xq = _activations(M, K)
        _, wq, _, _ = _weights(K, N, True)
        return (xq.astype(np.float64) - X_ZP) @ wq.astype(np.float64).T
    return _once(("acc", M, K, N), make)


def _reference_static(M, K, N, bias=True):
    """NUMERICS.md "Static quantized Linear" evaluated op by op in float32 NumPy."""
    acc = _acc(M, K, N).astype(np.float32)
    _, _, scales, b = _weights(K, N, True)
    atw = np.float32(X_SCALE) * scales.astype(np.float32)
    mult = atw / np.float32(OUT_SCALE)
    y = acc + (b / atw) if bias else acc
    y = np.rint(y * mult) + OUT_ZP
    return np.clip(y, 0, 255).astype(np.uint8)


# -------------------------------------------------------------- torch set-up

def _torch():
    torch = pytest.importorskip("torch")
    torch.backends.quantized.engine = "x86"
    torch.set_num_threads(THREADS)
    return torch


def _torch_static(M, K, N):
    torch = _torch()
    import torch.ao.nn.quantized as nnq
    _, wq, scales, b = _weights(K, N, True)
    w = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(wq), torch.from_numpy(scales), torch.zeros(N, dtype=torch.int64), 0)
    lin = nnq.Linear(K, N, dtype=torch.qint8)
    lin.set_weight_bias(w, torch.from_numpy(b))
    lin.scale, lin.zero_point = OUT_SCALE, OUT_ZP
    xq = torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(_activations(M, K)[1]), X_SCALE, X_ZP)
    return lambda: lin(xq), lambda y: y.int_repr().numpy()


def _torch_dynamic(M, K, N):
    torch = _torch()
    import torch.ao.nn.quantized.dynamic as nnqd
    _, wq, scale, b = _weights(K, N, False)
    w = torch._make_per_tensor_quantized_tensor(torch.from_numpy(wq), scale, 0)
    lin = nnqd.Linear(K, N, dtype=torch.qint8)
    lin.set_weight_bias(w, torch.from_numpy(b))
    xt = torch.from_numpy(_activations(M, K)[0])
    return lambda: lin(xt), lambda y: y.numpy()


# ---------------------------------------------------------------- ORT set-up

def _ort_session(model):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _onnx_model(nodes, inits, x_type, y_type, K, N):
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("x", x_type, [None, K])],
        [helper.make_tensor_value_info("y", y_type, [None, N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10                      # what onnxruntime 1.2x reads
    onnx.checker.check_model(model)
    return model


def _ort_static(M, K, N):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper as nh
    _, wq, scales, _ = _weights(K, N, True)
    inits = [nh.from_array(np.ascontiguousarray(wq.T), "w"),
             nh.from_array(scales.astype(np.float32), "w_scale"),
             nh.from_array(np.zeros(N, np.int8), "w_zp"),
             nh.from_array(np.array(X_SCALE, np.float32), "x_scale"),
             nh.from_array(np.array(X_ZP, np.uint8), "x_zp"),
             nh.from_array(np.array(OUT_SCALE, np.float32), "y_scale"),
             nh.from_array(np.array(OUT_ZP, np.uint8), "y_zp")]
    node = helper.make_node("QLinearMatMul", ["x", "x_scale", "x_zp", "w", "w_scale",
                                              "w_zp", "y_scale", "y_zp"], ["y"])
    sess = _ort_session(_onnx_model([node], inits, TensorProto.UINT8, TensorProto.UINT8, K, N))
    feed = {"x": _activations(M, K)[1]}
    return lambda: sess.run(None, feed)[0], lambda y: y


def _ort_dynamic(M, K, N):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper as nh
    _, wq, scale, b = _weights(K, N, False)
    inits = [nh.from_array(np.ascontiguousarray(wq.T), "w"),
             nh.from_array(np.array(0, np.int8), "w_zp"),
             nh.from_array(np.array(scale, np.float32), "w_scale"),
             nh.from_array(b, "b")]
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "w", "xz", "w_zp"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "w_scale"], ["s"]),
             helper.make_node("Mul", ["accf", "s"], ["yf"]),
             helper.make_node("Add", ["yf", "b"], ["y"])]
    sess = _ort_session(_onnx_model(nodes, inits, TensorProto.FLOAT, TensorProto.FLOAT, K, N))
    feed = {"x": _activations(M, K)[0]}
    return lambda: sess.run(None, feed)[0], lambda y: y


# --------------------------------------------------------------- numq set-up

def _gemm():
    return pytest.importorskip("numq.kernels.gemm", reason="numq.kernels.gemm not there yet")


def _numq_static(M, K, N):
    gemm = _gemm()
    _, wq, scales, b = _weights(K, N, True)
    packed = gemm.pack_linear_weight(wq, scales, np.zeros(N, np.int64))
    xq = _activations(M, K)[1]
    return (lambda: gemm.qlinear(xq, X_SCALE, X_ZP, packed, b, OUT_SCALE, OUT_ZP),
            lambda y: y)


def _numq_dynamic(M, K, N):
    gemm = _gemm()
    _, wq, scale, b = _weights(K, N, False)
    packed = gemm.pack_linear_weight(wq, scale, 0)
    x = _activations(M, K)[0]
    return lambda: gemm.qlinear_dynamic(x, packed, b), lambda y: y


def _quantized_layers(dynamic):
    mod = "numq.layers.quantized" + (".dynamic" if dynamic else "")
    m = pytest.importorskip(mod, reason=f"{mod} not there yet")
    if not hasattr(m, "Linear"):
        pytest.skip(f"{mod}.Linear not there yet")
    return m


def _numq_layer_static(M, K, N):
    nnq = _quantized_layers(False)
    _, wq, scales, b = _weights(K, N, True)
    w = numq._make_per_channel_quantized_tensor(wq, scales, np.zeros(N, np.int64), 0,
                                                numq.qint8)
    lin = nnq.Linear(K, N)
    lin.set_weight_bias(w, b)
    lin.scale, lin.zero_point = OUT_SCALE, OUT_ZP
    xq = numq._make_per_tensor_quantized_tensor(_activations(M, K)[1], X_SCALE, X_ZP,
                                                numq.quint8)
    return lambda: lin(xq), lambda y: y.int_repr()


def _numq_layer_dynamic(M, K, N):
    nnqd = _quantized_layers(True)
    _, wq, scale, b = _weights(K, N, False)
    w = numq._make_per_tensor_quantized_tensor(wq, scale, 0, numq.qint8)
    lin = nnqd.Linear(K, N)
    lin.set_weight_bias(w, b)
    x = _activations(M, K)[0]
    return lambda: lin(x), lambda y: np.asarray(y)


def _numpy(M, K, N, dynamic):
    w = _weights(K, N, not dynamic)[0]
    x = _activations(M, K)[0]
    wt = w.T                       # a view: BLAS reads the transposed operand in place
    return lambda: x @ wt, None


# ---------------------------------------------------------------- the checks

def _check_static(impl, M, K, N, y):
    if impl == "ort":
        # ORT's QLinearMatMul has no bias and computes its multiplier its own way:
        # within 1 LSB of the bias-free formula
        d = np.abs(y.astype(np.int16) - _reference_static(M, K, N, bias=False))
        assert d.max() <= 1, f"ort static differs by {d.max()}"
    else:
        np.testing.assert_array_equal(y, _reference_static(M, K, N),
                                      err_msg=f"{impl} static != NUMERICS formula")


def _check_dynamic(impl, M, K, N, y):
    if impl in ("numq", "numq-layer"):
        ref = _once(("torch dyn", M, K, N),
                    lambda: (lambda fn, conv: conv(fn()))(*_torch_dynamic(M, K, N)))
        np.testing.assert_array_equal(y, ref, err_msg=f"{impl} dynamic != torch")
    else:
        # float outputs of different quantization schemes (ORT uses [0, 255], torch
        # [0, 127]): compare with the float product, loose on purpose
        w, _, _, b = _weights(K, N, False)
        ref = _activations(M, K)[0] @ w.T + b
        err = np.abs(y - ref).max() / np.abs(ref).max()
        assert err < 0.05, f"{impl} dynamic is off by {err:.3f} of the output range"


_STATIC = {"numq": _numq_static, "numq-layer": _numq_layer_static,
           "torch": _torch_static, "ort": _ort_static}
_DYNAMIC = {"numq": _numq_dynamic, "numq-layer": _numq_layer_dynamic,
            "torch": _torch_dynamic, "ort": _ort_dynamic}


def _run(measure, kind, impl, M, K, N):
    table = _STATIC if kind == "static" else _DYNAMIC
    if impl == "numpy":
        fn, conv = _numpy(M, K, N, kind == "dynamic")
    else:
        fn, conv = table[impl](M, K, N)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = conv(fn())
        (_check_static if kind == "static" else _check_dynamic)(impl, M, K, N, y)
    measure(_group(kind, M, K, N), impl, fn, ops=2 * M * K * N)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("kn", KNS, ids=_kn_id)
def test_linear_static(measure, kn, M, impl):
    _run(measure, "static", impl, M, *kn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("kn", KNS, ids=_kn_id)
def test_linear_dynamic(measure, kn, M, impl):
    _run(measure, "dynamic", impl, M, *kn)


# ------------------------------------------------------ memory (not timed)

@pytest.mark.parametrize("kn", KNS, ids=_kn_id)
def test_packed_weight_bytes(kn, record_property):
    """Packed codes <= 1.05x the int8 weight bytes; everything else O(N)."""
    gemm = _gemm()
    K, N = kn
    _, wq, scales, _ = _weights(K, N, True)
    packed = gemm.pack_linear_weight(wq, scales, np.zeros(N, np.int64))
    np.testing.assert_array_equal(gemm.unpack_linear_weight(packed), wq)
    codes = packed.data.nbytes
    extra = sum(getattr(packed, f).nbytes for f in ("col_sums", "zero_points", "scales"))
    ratio = codes / wq.nbytes
    record_property("packed_ratio", ratio)
    print(f"\nK={K} N={N}: packed codes {codes} B = {ratio:.4f}x int8 bytes {wq.nbytes}; "
          f"per-column arrays {extra} B = {extra / N:.1f} B per column")
    assert ratio <= 1.05
    assert extra <= 32 * N


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_no_per_call_weight_allocation(kind):
    """A call allocates (through NumPy) no memory proportional to the weight.

    tracemalloc sees every NumPy allocation made from Python (layer, functional code);
    Numba's runtime allocates kernel-side arrays outside its view, so those are counted
    with Numba's allocation statistics instead and must not grow with the weight.
    """
    from numba.core.runtime import _nrt_python, rtsys
    M, K, N = 16, 2048, 2048
    if kind == "static":
        fn, _ = _numq_static(M, K, N)
    else:
        fn, _ = _numq_dynamic(M, K, N)
    fn()
    fn()
    stats_were_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    before = rtsys.get_allocation_stats()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        after = rtsys.get_allocation_stats()
        if not stats_were_on:
            _nrt_python.memsys_disable_stats()
    nrt_allocs = after.alloc - before.alloc
    out_bytes = M * N * (1 if kind == "static" else 4)
    print(f"\n{kind} M={M} K={K} N={N}: traced peak {peak} B (output {out_bytes} B, "
          f"weight {K * N} B); Numba runtime allocations in the call: {nrt_allocs}")
    assert peak < out_bytes + K * N // 20
