"""The Module framework: registration, traversal, hooks, modes, state dicts, containers.

No torch and no numq float layers here: the layers are small custom modules written in
the style a user writes a custom model (``forward`` saves ``self._saved``, ``backward``
returns the input gradient), so these tests depend on module.py / containers.py /
parameter.py only. Gradients are checked against central finite differences in float64.
"""
import collections
import copy
import pickle

import numpy as np
import pytest

from numq.layers import (Identity, IncompatibleKeys, Module, ModuleDict, ModuleList,
                         Parameter, Sequential)


# ----------------------------------------------------------------------- test layers
class Affine(Module):
    """``y = x * weight + bias`` over the last axis, with a persistent and a scratch buffer."""

    def __init__(self, n, bias=True, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.uniform(0.5, 1.5, n))
        if bias:
            self.bias = Parameter(rng.uniform(-0.5, 0.5, n))
        else:
            self.register_parameter("bias", None)  # declared but absent, as torch's bias=False
        self.register_buffer("calls", np.zeros((), np.int64))
        self.register_buffer("scratch", np.zeros(n), persistent=False)

    def forward(self, x):
        self.calls += 1
        if self.training:
            self._saved = x
        y = x * self.weight.data
        return y + self.bias.data if self.bias is not None else y

    def backward(self, grad_output):
        x = self._take_saved()
        self.weight.accumulate((grad_output * x).reshape(-1, x.shape[-1]).sum(0))
        if self.bias is not None:
            self.bias.accumulate(grad_output.reshape(-1, x.shape[-1]).sum(0))
        return grad_output * self.weight.data

    def extra_repr(self):
        return f"n={self.weight.shape[0]}, bias={self.bias is not None}"


class Tanh(Module):
    """Parameter-free, saves its output (so a wrong ``_saved`` gives a wrong gradient)."""

    def forward(self, x):
        y = np.tanh(x)
        if self.training:
            self._saved = y
        return y

    def backward(self, grad_output):
        y = self._take_saved()
        return grad_output * (1 - y * y)


def numeric_grads(f, params, x, h=1e-6):
    """Central differences of scalar ``f()`` w.r.t. ``x`` and each parameter's data."""
    out = []
    for arr in [x] + [p.data for p in params]:
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            fp = f()
            arr[i] = old - h
            fm = f()
            arr[i] = old
            g[i] = (fp - fm) / (2 * h)
        out.append(g)
    return out


def check_grads(model, x, rtol=1e-6):
    """model.backward of d(sum(out * r))/d(.) against finite differences."""
    r = np.random.default_rng(7).standard_normal(model(x).shape)
    model.zero_grad()
    model.train()
    out = model(x)
    gx = model.backward(r)
    params = list(model.parameters())
    model.eval()  # finite differences must not touch _saved
    num = numeric_grads(lambda: float((model(x) * r).sum()), params, x)
    np.testing.assert_allclose(gx, num[0], rtol=rtol, atol=1e-8)
    for p, g in zip(params, num[1:]):
        np.testing.assert_allclose(p.grad, g, rtol=rtol, atol=1e-8)
    model.train()
    return out


class Net(Module):
    def __init__(self):
        super().__init__()
        self.fc = Affine(3, seed=1)
        self.block = Sequential(Affine(3, seed=2), Tanh(), Affine(3, bias=False, seed=3))
        self.heads = ModuleList([Affine(3, seed=4), Identity()])
        self.extra = ModuleDict({"b": Tanh(), "a": Affine(3, seed=5)})

    def forward(self, x):
        return self.extra["a"](self.heads[0](self.block(self.fc(x))))


X = np.random.default_rng(3).standard_normal((4, 3))


# ----------------------------------------------------------------------------- hooks
def test_forward_pre_hook_modifies_args_and_remove():
    m = Affine(3)
    seen = []
    h1 = m.register_forward_pre_hook(lambda mod, args: seen.append(("pre", mod)) or None)
    h2 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    np.testing.assert_allclose(m(X), (2 * X) * m.weight.data + m.bias.data)
    assert seen == [("pre", m)]
    h2.remove()
    h2.remove()  # a second remove is harmless
    np.testing.assert_allclose(m(X), X * m.weight.data + m.bias.data)
    h1.remove()
    m(X)
    assert len(seen) == 2


def test_forward_pre_hook_may_return_a_bare_value():
    m = Identity()
    m.register_forward_pre_hook(lambda mod, args: args[0] + 1)  # not a tuple: wrapped
    np.testing.assert_array_equal(m(X), X + 1)


def test_forward_hook_sees_modified_args_and_replaces_output():
    m = Identity()
    log = []
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 3,))
    m.register_forward_hook(lambda mod, args, out: log.append((args[0], out)))
    h = m.register_forward_hook(lambda mod, args, out: out - 1)
    np.testing.assert_array_equal(m(X), 3 * X - 1)
    np.testing.assert_array_equal(log[0][0], 3 * X)
    h.remove()
    np.testing.assert_array_equal(m(X), 3 * X)


def test_hooks_run_in_registration_order_and_handle_as_context_manager():
    m = Identity()
    order = []
    m.register_forward_hook(lambda *a: order.append(1))
    with m.register_forward_hook(lambda *a: order.append(2)):
        m(X)
    m(X)
    assert order == [1, 2, 1]


def test_forward_kwargs_reach_forward():
    class KW(Module):
        def forward(self, x, scale=1.0):
            return x * scale

    np.testing.assert_array_equal(KW()(X, scale=2.0), 2 * X)


def test_module_without_forward_or_backward():
    with pytest.raises(TypeError, match="forward"):
        Module()(X)
    with pytest.raises(TypeError, match="backward"):
        Module().backward(X)


# ---------------------------------------------------------------------- registration
def test_register_parameter_and_none_parameter():
    m = Affine(3, bias=False)
    assert "bias" in m._parameters and m.bias is None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert list(m.state_dict()) == ["weight", "calls"]
    m.bias = Parameter(np.zeros(3))  # filling the declared slot
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.bias = None
    assert m.bias is None and "bias" in m._parameters


def test_register_parameter_errors():
    m = Affine(3)
    with pytest.raises(TypeError, match="Parameter"):
        m.register_parameter("p", np.zeros(3))
    with pytest.raises(TypeError, match="str"):
        m.register_parameter(1, Parameter(np.zeros(3)))
    for bad in ("a.b", ""):
        with pytest.raises(KeyError):
            m.register_parameter(bad, Parameter(np.zeros(3)))
    m.plain = 5
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("plain", Parameter(np.zeros(3)))
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = np.ones(3)  # an array is not a Parameter


def test_parameter_basics():
    p = Parameter([1, 2, 3])  # integers become float32
    assert p.dtype == np.float32 and p.shape == (3,) and p.numel() == 3 and len(p) == 3
    np.testing.assert_array_equal(np.asarray(p), [1, 2, 3])
    with pytest.raises(TypeError, match="float"):
        Parameter(np.array([1 + 2j]))
    p.accumulate(np.ones(3))
    p.accumulate(np.ones(3))
    np.testing.assert_array_equal(p.grad, [2, 2, 2])
    q = Parameter(np.zeros(2), requires_grad=False)
    q.accumulate(np.ones(2))
    assert q.grad is None
    assert Parameter(p).data is not p.data  # a copy, like torch's Parameter(tensor).clone()


def test_register_buffer_persistent_false():
    m = Affine(3)
    assert [n for n, _ in m.named_buffers()] == ["calls", "scratch"]
    assert "scratch" not in m.state_dict()
    m.scratch = np.ones(3)  # assigning an array to a buffer name updates the buffer
    np.testing.assert_array_equal(m._buffers["scratch"], 1)
    with pytest.raises(TypeError, match="buffer 'scratch'"):
        m.scratch = [1, 2, 3]
    with pytest.raises(TypeError, match="numpy array"):
        m.register_buffer("b", [1.0])
    m.register_buffer("scratch", m.scratch, persistent=True)  # re-registering makes it persistent
    assert "scratch" in m.state_dict()


def test_add_module_and_attribute_access():
    m = Module()
    a = Affine(2)
    m.add_module("a", a)
    assert m.a is a and m.get_submodule("a") is a and m.get_submodule("") is m
    m.b = Tanh()  # attribute assignment registers a child
    assert list(m._modules) == ["a", "b"]
    with pytest.raises(TypeError, match="Module"):
        m.add_module("c", object())
    with pytest.raises(KeyError):
        m.add_module("x.y", Tanh())
    with pytest.raises(TypeError, match="child module 'a'"):
        m.a = 3
    with pytest.raises(AttributeError, match="no submodule 'zz'"):
        m.get_submodule("a.zz")
    m.a = None
    assert m.a is None and "a" in m._modules


def test_attribute_errors_name_the_attribute():
    m = Affine(2)
    with pytest.raises(AttributeError, match="'Affine' object has no attribute 'nope'"):
        m.nope
    assert not hasattr(m, "nope")

    class Early(Module):
        def __init__(self):
            self.w = Parameter(np.zeros(1))  # before super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_reassigning_a_name_moves_it_between_kinds_and_delattr():
    m = Affine(2)
    with pytest.raises(TypeError, match="as parameter 'weight'"):
        m.weight = Tanh()  # as torch: a parameter slot only takes a Parameter or None
    m.child = Tanh()
    m.child = Parameter(np.ones(2))  # a Parameter replaces a child of the same name
    assert "child" not in m._modules and "child" in m._parameters
    m.scratch = Tanh()  # ... and a Module replaces a buffer
    assert "scratch" not in m._buffers and isinstance(m.scratch, Tanh)
    del m.weight
    assert "weight" not in m._parameters and not hasattr(m, "weight")
    del m.calls
    assert "calls" not in m._buffers
    assert "bias" in dir(m) and "child" in dir(m)


# ------------------------------------------------------------------------- traversal
def test_named_modules_children_and_duplicates():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "fc", "block", "block.0", "block.1", "block.2", "heads", "heads.0",
                     "heads.1", "extra", "extra.b", "extra.a"]
    assert [n for n, _ in net.named_children()] == ["fc", "block", "heads", "extra"]
    assert list(net.children()) == [net.fc, net.block, net.heads, net.extra]
    assert list(net.modules())[0] is net and len(list(net.modules())) == 12
    # a module registered twice is listed once (unless remove_duplicate=False)
    shared = Tanh()
    s = Sequential(shared, shared, Affine(1))
    assert [n for n, _ in s.named_modules()] == ["", "0", "2"]
    assert [n for n, _ in s.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in s.named_children()] == ["0", "2"]
    assert [n for n, _ in net.named_modules(prefix="m")][:2] == ["m", "m.fc"]


def test_named_parameters_and_buffers_shared_once():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc.weight", "fc.bias", "block.0.weight", "block.0.bias",
                     "block.2.weight", "heads.0.weight", "heads.0.bias",
                     "extra.a.weight", "extra.a.bias"]
    assert len(list(net.parameters())) == 9
    assert list(net.named_parameters(recurse=False)) == []
    assert [n for n, _ in net.fc.named_parameters(prefix="fc")] == ["fc.weight", "fc.bias"]
    # a tied parameter appears once, under its first name
    net.heads[0].weight = net.fc.weight
    names = [n for n, _ in net.named_parameters()]
    assert "heads.0.weight" not in names and len(names) == 8
    assert len([n for n, _ in net.named_parameters(remove_duplicate=False)]) == 9
    bufs = [n for n, _ in net.named_buffers()]
    assert bufs[:2] == ["fc.calls", "fc.scratch"] and len(list(net.buffers())) == 10


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.block.train()
    assert net.block[1].training and not net.fc.training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError, match="mode"):
        net.train("no")


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(m)) is net
    assert seen[-1] is net and seen.index(net.block[0]) < seen.index(net.block)
    assert len(seen) == len(list(net.modules()))


def test_zero_grad_and_requires_grad():
    net = Net()
    net.train()
    out = net.block(X)
    net.block.backward(np.ones_like(out))
    grads = [p for p in net.block.parameters()]
    assert all(p.grad is not None for p in grads)
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in grads)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    net.block(X)
    net.block.backward(np.ones_like(out))
    assert all(p.grad is None for p in net.parameters())


def test_double_and_float_cast_parameters_buffers_and_grads():
    m = Affine(3)
    m.weight.grad = np.ones(3)
    m.float()
    assert m.weight.dtype == np.float32 and m.weight.grad.dtype == np.float32
    assert m.scratch.dtype == np.float32 and m.calls.dtype == np.int64  # ints untouched
    m.double()
    assert m.bias.dtype == np.float64
    with pytest.raises(TypeError, match="float"):
        m.to(np.int32)


# ------------------------------------------------------------------------ state dict
def test_state_dict_keys_and_values_share_storage():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["fc.weight", "fc.bias", "fc.calls", "block.0.weight", "block.0.bias",
                        "block.0.calls", "block.2.weight", "block.2.calls", "heads.0.weight",
                        "heads.0.bias", "heads.0.calls", "extra.a.weight", "extra.a.bias",
                        "extra.a.calls"]
    assert isinstance(sd, collections.OrderedDict)
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["fc.weight"] is net.fc.weight.data  # torch's state_dict shares storage too
    assert net.state_dict(keep_vars=True)["fc.weight"] is net.fc.weight
    assert list(net.fc.state_dict(prefix="p.")) == ["p.weight", "p.bias", "p.calls"]


def test_load_state_dict_round_trip_copies_and_casts():
    a, b = Net(), Net()
    for p in a.parameters():
        p.data += 1
    sd = {k: v.astype(np.float32) if v.dtype.kind == "f" else v
          for k, v in a.state_dict().items()}
    res = b.load_state_dict(sd)
    assert res == IncompatibleKeys([], []) and res.missing_keys == []
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_allclose(vb, va, rtol=1e-6, err_msg=k)
        assert vb.dtype == va.dtype  # cast to the module's dtype (float64 here)
    sd["fc.weight"][...] = 99  # the module holds copies
    assert not (b.fc.weight.data == 99).any()
    # Parameters are accepted as values as well (keep_vars=True dicts)
    b.load_state_dict(a.state_dict(keep_vars=True))


def test_load_state_dict_strict_missing_and_unexpected():
    net = Net()
    sd = dict(net.state_dict())
    del sd["block.0.bias"]
    sd["block.9.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"Missing key\(s\).*'block.0.bias'.*"
                                       r"Unexpected key\(s\).*'block.9.weight'"):
        net.load_state_dict(sd)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["block.0.bias"] and res.unexpected_keys == ["block.9.weight"]


def test_load_state_dict_shape_mismatch_always_raises():
    net = Net()
    sd = dict(net.state_dict())
    sd["fc.weight"] = np.zeros(4)
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"size mismatch for fc.weight.*\(4,\).*\(3,\)"):
            net.load_state_dict(sd, strict=strict)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([("fc.weight", np.zeros(3))])
    sd["fc.weight"] = np.array(["a", "b", "c"])
    with pytest.raises(ValueError, match="fc.weight"):
        net.load_state_dict(sd)


def test_non_persistent_buffer_is_not_expected_by_load_state_dict():
    m = Affine(3)
    sd = m.state_dict()
    m.load_state_dict(sd)  # no 'scratch' needed
    sd = dict(sd, scratch=np.ones(3))
    with pytest.raises(KeyError, match="Unexpected key.*'scratch'"):
        m.load_state_dict(sd)


# -------------------------------------------------------------------- deepcopy, repr
def test_deepcopy_is_independent_and_keeps_ties():
    net = Net()
    net.heads[0].weight = net.fc.weight  # a tie must survive the copy
    net.fc.weight.grad = np.ones(3)
    net.fc.register_forward_hook(lambda m, a, o: o * 0)
    c = copy.deepcopy(net)
    assert c.heads[0].weight is c.fc.weight and c.fc.weight is not net.fc.weight
    np.testing.assert_array_equal(c.fc.weight.grad, 1)
    c.fc.weight.data += 5
    assert not np.allclose(c.fc.weight.data, net.fc.weight.data)
    assert len(c.fc._forward_hooks) == 1
    np.testing.assert_array_equal(c.fc(X), 0)  # hooks are copied, like torch's
    assert [n for n, _ in c.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_pickle_round_trip():
    net = Net()
    net.heads[0].weight = net.fc.weight
    p = pickle.loads(pickle.dumps(net))
    assert p.heads[0].weight is p.fc.weight
    np.testing.assert_array_equal(p(X), net(X))
    assert list(p.state_dict()) == list(net.state_dict())


def test_repr_matches_torch_layout():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (fc): Affine(n=3, bias=True)\n"
        "  (block): Sequential(\n"
        "    (0): Affine(n=3, bias=True)\n"
        "    (1): Tanh()\n"
        "    (2): Affine(n=3, bias=False)\n"
        "  )\n"
        "  (heads): ModuleList(\n"
        "    (0): Affine(n=3, bias=True)\n"
        "    (1): Identity()\n"
        "  )\n"
        "  (extra): ModuleDict(\n"
        "    (b): Tanh()\n"
        "    (a): Affine(n=3, bias=True)\n"
        "  )\n"
        ")")
    assert repr(Parameter(np.zeros(1))).startswith("Parameter containing:")


# ------------------------------------------------------------------------ Sequential
def test_sequential_indexing_slicing_append():
    a, b, c = Affine(2), Tanh(), Affine(2, seed=1)
    s = Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b and list(s) == [a, b]
    with pytest.raises(IndexError):
        s[2]
    with pytest.raises(IndexError):
        s[-3]
    assert s.append(c) is s and s[2] is c and list(s._modules) == ["0", "1", "2"]
    sl = s[1:]
    assert isinstance(sl, Sequential) and list(sl._modules) == ["1", "2"]  # torch keeps keys
    assert list(sl) == [b, c]
    s[1] = Identity()
    assert isinstance(s[1], Identity)
    del s[0]
    assert list(s._modules) == ["1", "2"]
    od = Sequential(collections.OrderedDict([("first", a), ("second", b)]))
    assert od.first is a and list(od.state_dict()) == ["first.weight", "first.bias",
                                                       "first.calls"]


def test_sequential_forward_backward_matches_finite_differences():
    s = Sequential(Affine(3, seed=1), Tanh(), Affine(3, bias=False, seed=2), Tanh())
    out = check_grads(s, X.copy())
    np.testing.assert_allclose(out, s[3](s[2](s[1](s[0](X)))))


def test_sequential_same_layer_twice_restores_saved():
    # the shared-layer rule: the same Affine and Tanh are called twice in one forward
    a, t = Affine(3, seed=4), Tanh()
    s = Sequential(a, t, a, t)
    check_grads(s, X.copy())


def test_manual_saved_swap_for_a_layer_called_twice():
    # what a custom model does when it calls one layer twice (DESIGN.md "Modules")
    a = Affine(3, seed=6)
    x = X.copy()
    h = a(x)
    s1 = a._saved
    y = a(np.tanh(h))
    s2 = a._saved
    r = np.random.default_rng(1).standard_normal(y.shape)
    a._saved = s2
    g = a.backward(r) * (1 - np.tanh(h) ** 2)
    a._saved = s1
    gx = a.backward(g)

    a.eval()
    num = numeric_grads(lambda: float((a(np.tanh(a(x))) * r).sum()), list(a.parameters()), x)
    np.testing.assert_allclose(gx, num[0], rtol=1e-6)
    np.testing.assert_allclose(a.weight.grad, num[1], rtol=1e-6)
    np.testing.assert_allclose(a.bias.grad, num[2], rtol=1e-6)


def test_nested_sequential_used_twice():
    block = Sequential(Affine(3, seed=8), Tanh())
    check_grads(Sequential(block, block, Affine(3, seed=9)), X.copy())


def test_empty_sequential_is_identity_with_backward():
    s = Sequential()
    np.testing.assert_array_equal(s(X), X)
    np.testing.assert_array_equal(s.backward(X), X)


def test_eval_saves_nothing_and_backward_before_forward_is_a_clear_error():
    s = Sequential(Affine(3), Tanh())
    s.eval()
    s(X)
    assert all(m._saved is None for m in s.modules())
    with pytest.raises(RuntimeError, match=r"Sequential.backward\(\) called without"):
        s.backward(X)
    with pytest.raises(RuntimeError, match=r"Affine.backward\(\) called without"):
        Affine(3).backward(X)
    s.train()
    out = s(X)
    s.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="called twice"):  # saved state is consumed
        s.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="Affine.backward"):
        s[0].backward(np.ones_like(out))


def test_sequential_child_in_eval_mode_fails_clearly_in_backward():
    s = Sequential(Affine(3), Tanh())
    s[1].eval()
    out = s(X)
    with pytest.raises(RuntimeError, match="Tanh.backward"):
        s.backward(np.ones_like(out))


# ------------------------------------------------------------- ModuleList, ModuleDict
def test_module_list():
    a, b, c = Affine(2), Tanh(), Identity()
    ml = ModuleList([a, b])
    assert len(ml) == 2 and ml[0] is a and ml[-1] is b and list(ml) == [a, b]
    ml.append(c)
    ml.extend([Tanh()])
    ml.insert(1, Identity())
    assert len(ml) == 5 and ml[2] is b and list(ml._modules) == ["0", "1", "2", "3", "4"]
    assert isinstance(ml[1:3], ModuleList) and list(ml[1:3])[1] is b
    ml[0] = Tanh()
    assert isinstance(ml[0], Tanh) and a not in list(ml)
    for bad in (5, -6):
        with pytest.raises(IndexError):
            ml[bad]
        with pytest.raises(IndexError):
            ml[bad] = Tanh()
    assert ModuleList().__len__() == 0
    ml2 = ModuleList([Affine(2), Affine(2)])
    assert [n for n, _ in ml2.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                      "1.bias"]


def test_module_dict():
    a, b = Affine(2), Tanh()
    md = ModuleDict({"a": a})
    md["b"] = b
    assert "a" in md and len(md) == 2 and md["a"] is a and list(md) == ["a", "b"]
    assert list(md.keys()) == ["a", "b"] and list(md.values()) == [a, b]
    assert list(md.items())[1] == ("b", b)
    md.update([("c", Identity())])
    assert md.pop("c").__class__ is Identity and "c" not in md
    del md["b"]
    assert list(md) == ["a"] and md.a is a
    assert list(md.state_dict()) == ["a.weight", "a.bias", "a.calls"]
    with pytest.raises(KeyError):
        md["zz"]


def test_identity():
    i = Identity(3, foo="ignored")  # torch's Identity accepts and ignores arguments
    assert i(X) is X and i.backward(X) is X
    assert list(i.parameters()) == [] and repr(i) == "Identity()"
