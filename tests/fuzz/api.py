"""Random hostile calls to every public loom function and Tensor method, run in a child interpreter so that a
crash (SIGSEGV, SIGABRT, a sanitizer report) is caught and reported with the exact call.

    python -m tests.fuzz.api --calls 1000000 --seed 7           # a long run: a summary, then every crash
    python -m tests.fuzz.api --seed 7 --start 4321 --show        # print call 4321 of seed 7 (the reproducer)
    python -m tests.fuzz.api --seed 7 --start 4321 --calls 1     # run only that call

Each call is generated from (seed, index) alone, so a run resumes after a crash at the next index and any call
can be regenerated. A call is one line of Python source (`r = F.avg_pool2d(loom.ones((1, 2, 1)), 2**63-1)`):
the child executes the line, so what is reported is exactly what ran. The targets are found by introspection
(loom.*, loom.nn.functional.*, loom.nn.init.*, loom.autograd.*, every Tensor method, property and operator), so
new functions are fuzzed without editing this file; EXCLUDED lists the few left out, each with its reason.

Arguments come from a small table keyed by the parameter's annotation or name (a tensor, a dim, a size, a
float, ...), each kind mixing plausible values (so calls reach the kernels) with hostile ones: integers near
2^31, 2^32, 2^62, 2^63 and 2^64, 0-d tensors where ints are expected, self-overlapping, expanded (stride 0),
offset and transposed views, ranks 0 to past 64, NaN/inf, zero-size tensors, every dtype, and junk objects.

A call passes when it returns or raises an ordinary Python exception; the run fails on a crash, a hang (no
progress for --timeout seconds) or an exception type outside ALLOWED. tests/python/test_robustness.py runs a
seeded slice in CI; `make sanitize-test` runs it against the AddressSanitizer + UBSan build.
"""
import argparse
import collections
import inspect
import json
import keyword
import mmap
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

# Ordinary exceptions: TypeError/ValueError/IndexError/RuntimeError/NotImplementedError/OverflowError are what
# loom documents; MemoryError is a refused allocation (the child's address space is capped); AttributeError,
# KeyError and ZeroDivisionError come from Python-level functions handed non-tensors, as in torch.
ALLOWED = (TypeError, ValueError, IndexError, RuntimeError, NotImplementedError, OverflowError, MemoryError,
           AttributeError, KeyError, ZeroDivisionError)

# Left out of the fuzz, with the reason. Everything else public is called.
EXCLUDED = {
    "loom.set_num_threads": "process-wide: a huge thread count makes every later call slow "
                            "(test_robustness.py tests its validation)",
    "loom.set_default_dtype": "process-wide: later calls would depend on history, so one line would not reproduce",
    "loom.save": "writes files named by its arguments",
    "loom.save_file": "writes files named by its arguments",
    "loom.load": "reads files: the safetensors reader has its own fuzzer (tests/fuzz/safetensors_fuzzer.cpp)",
    "loom.load_file": "reads files: the safetensors reader has its own fuzzer (tests/fuzz/safetensors_fuzzer.cpp)",
    "loom.autograd.set_grad_enabled": "a class (context manager) that changes thread-wide state",
}

PRELUDE = "import loom, numpy as np\nimport loom.nn.functional as F\nimport loom.nn.init as init\n"

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
SHAPES = [(), (0,), (1,), (3,), (5,), (2, 3), (3, 1), (4, 4), (2, 0, 3), (1, 2, 3), (2, 3, 4), (1, 2, 4, 4),
          (2, 1, 3, 3), (1, 1, 1, 1, 1)]
HUGE_INTS = ["2**31-1", "2**31", "-2**31", "2**31+1", "2**32-1", "2**32", "2**32+1", "2**62", "-2**62",
             "2**62+1", "2**63-1", "2**63-2", "-2**63", "-2**63+1", "2**63", "2**64", "-2**64", "10**30"]
SMALL_INTS = ["0", "1", "2", "3", "4", "-1", "-2", "-3", "5", "7", "64", "65"]
FLOATS = ["0.5", "-1.5", "0.0", "-0.0", "2.0", "1e-45", "1e308", "-1e308", "float('nan')", "float('inf')",
          "-float('inf')"]
SPECIAL_VALUES = "[float('nan'), float('inf'), -float('inf'), 0.0, -0.0, 1e38, -1e-38, 3.0, 65504.0, -2.5]"
JUNK = ["None", "object()", "{}", "{'a': 1}", "lambda *a: None", "b'bytes'", "1j", "range(3)", "'abc'", "''",
        "'\\x00'", "Ellipsis", "slice(None, None, -1)", "loom.device('cpu')", "[]", "()", "[[1, 2], [3]]",
        "np.zeros(3)", "np.float32(1.5)", "np.int64(2)", "np.arange(6).reshape(2, 3)[:, ::2]", "np.array(['a'])",
        "np.zeros((2, 2), np.complex64)", "np.arange(5)[::-1]", "np.bool_(True)", "2**1000", "float('nan')"]
STRINGS = ["'mean'", "'sum'", "'none'", "'batchmean'", "'constant'", "'reflect'", "'replicate'", "'circular'",
           "'tanh'", "'relu'", "'fan_in'", "'fan_out'", "'cpu'", "'cuda'", "'cuda:99'", "'float32'", "''",
           "'ij'", "'xy'", "'ij,jk->ik'", "'i,i->'", "'...,i->...'", "'\\x00'", "'bogus'"]

# Argument kinds by parameter name (when the annotation says nothing more precise than `object`).
NAME_KINDS = {
    "tensor": {"input", "self", "other", "weight", "bias", "target", "tensor", "x", "mat1", "mat2", "vec",
               "mask", "index", "src", "query", "key", "value", "indices", "exponent", "input1", "input2",
               "anchor", "positive", "negative", "var", "running_mean", "running_var", "condition", "end_tensor",
               "attn_mask", "gradient", "grad_tensors", "tensors_", "y", "log_target"},
    "tensors": {"tensors", "operands", "inputs", "outputs", "grad_outputs"},
    "dim": {"dim", "dims", "axis", "dim0", "dim1", "source", "destination", "start_dim", "end_dim", "dimension"},
    "size": {"size", "shape", "sizes", "kernel_size", "stride", "padding", "dilation", "output_size",
             "output_padding", "split_size_or_sections", "normalized_shape", "repeats", "pad", "storage_offset",
             "chunks", "k", "n", "m", "num_classes", "groups", "diagonal", "shifts", "start", "length", "end", "step",
             "low", "high", "steps", "num_groups", "divisor_override", "ignore_index", "generator", "seed",
             "padding_idx", "max_norm", "reps", "dims_", "sections"},
    "float": {"p", "eps", "alpha", "beta", "momentum", "negative_slope", "min", "max", "margin", "delta",
              "scale", "dropout_p", "fill_value", "mean", "std", "label_smoothing", "a", "b", "lambd", "gain",
              "threshold", "min_val", "max_val", "rtol", "atol", "full", "epsilon", "swap"},
    "bool": {"keepdim", "training", "ceil_mode", "count_include_pad", "inplace", "is_causal", "unbiased",
             "sorted", "largest", "descending", "stable", "return_indices", "requires_grad", "retain_graph",
             "create_graph", "allow_unused", "log_input", "non_blocking", "copy", "right", "return_counts"},
    "dtype": {"dtype"},
    "str": {"reduction", "mode", "approximate", "padding_mode", "equation", "nonlinearity", "indexing",
            "device", "memory_format"},
}


# ------------------------------------------------------------------ argument generators (each returns source)


def shape_source(shape):
    """`shape` as source, runs of ones written as (1,) * n so that rank-65 calls stay readable."""
    if len(shape) > 6 and all(s == 1 for s in shape[1:]):
        return f"({shape[0]},) + (1,) * {len(shape) - 1}" if shape[0] != 1 else f"(1,) * {len(shape)}"
    return repr(tuple(shape))


class Gen:
    """Random sources for one call; `rng` is seeded from (seed, index)."""

    def __init__(self, rng):
        self.rng = rng

    def pick(self, items):
        return self.rng.choice(items)

    def chance(self, p):
        return self.rng.random() < p

    def int_(self):
        r = self.rng.random()
        if r < 0.55:
            return self.pick(SMALL_INTS)
        if r < 0.85:
            return self.pick(HUGE_INTS)
        if r < 0.95:  # a 0-d tensor where an int is expected
            return f"loom.tensor({self.pick(SMALL_INTS + HUGE_INTS[:8])})"
        return self.pick(["True", "np.int64(2)", "np.int32(-1)", "2.0", "float('nan')"])

    def dim(self):
        return self.pick(SMALL_INTS[:8]) if self.chance(0.8) else self.int_()

    def size(self):
        r = self.rng.random()
        if r < 0.45:
            return self.int_()
        if r < 0.9:
            items = [self.int_() for _ in range(self.rng.randrange(5))]
            return "(" + "".join(f"{i}, " for i in items) + ")" if self.chance(0.7) else "[" + ", ".join(items) + "]"
        return self.pick(["(1,) * 64", "(1,) * 65", "(1,) * 200", "(2**31, 2**31)", "(2**32, 2**32, 2**32)",
                          "(loom.tensor(2), loom.tensor(3))", "(-1, -1)", "()"])

    def float_(self):
        return self.pick(FLOATS) if self.chance(0.8) else self.pick(SMALL_INTS + HUGE_INTS[:6] + ["loom.tensor(0.5)"])

    def dtype(self):
        return "loom." + self.pick(DTYPES) if self.chance(0.9) else self.pick(["'float32'", "None", "np.float32"])

    def tensor(self):
        """A tensor expression: a base (ones, arange, special values, high rank, 0-d) and sometimes a view."""
        rng = self.rng
        dtype = self.pick(DTYPES)
        shape = self.pick(SHAPES)
        n = 1
        for s in shape:
            n *= s
        r = rng.random()
        if r < 0.35:
            src = f"loom.ones({shape_source(shape)}, dtype=loom.{dtype})"
        elif r < 0.6:  # varied values (-1, 0, 1, ... also valid indices) in any dtype
            src = f"(loom.arange({n}) % 5 - 1).reshape({shape_source(shape)}).to(loom.{dtype})"
        elif r < 0.72:
            k = rng.randrange(1, 11)
            shape = (k,)
            src = f"loom.tensor({SPECIAL_VALUES}[:{k}], dtype=loom.{self.pick(FLOAT_DTYPES)})"
        elif r < 0.8:
            shape = ()
            src = f"loom.tensor({self.pick(SMALL_INTS + FLOATS)})"
        elif r < 0.84:  # ranks at and past 64
            rank = self.pick([8, 63, 64, 65, 100])
            shape = (1,) * rank
            src = f"loom.ones({shape_source(shape)})"
        else:
            src = f"loom.randn({shape_source(shape)}).to(loom.{dtype})"
        if dtype in FLOAT_DTYPES and self.chance(0.15):
            src = f"{src}.requires_grad_()"
        if self.chance(0.4):
            src, shape = self.view(src, shape)
        return src

    def view(self, src, shape):
        """A view of `src`: transposed, expanded (stride 0), offset, strided or self-overlapping."""
        nd = len(shape)
        options = ["expand", "overlap", "stride0"]
        if nd >= 2:
            options += ["t", "permute"]
        if nd >= 1 and shape[-1] > 1:
            options += ["offset", "step"]
        kind = self.pick(options)
        if kind == "t":
            return f"{src}.transpose(0, -1)", shape[::-1]
        if kind == "permute":
            return f"{src}.permute({tuple(reversed(range(nd)))})", shape[::-1]
        if kind == "expand":
            return f"{src}.expand({shape_source((2,) + shape)})", (2,) + shape
        if kind == "offset":
            return f"{src}[..., 1:]", shape[:-1] + (shape[-1] - 1,)
        if kind == "step":
            return f"{src}[..., ::2]", shape[:-1] + ((shape[-1] + 1) // 2,)
        numel = 1
        for s in shape:
            numel *= s
        base = f"{src}.flatten()" if numel >= 5 else "loom.arange(9.0)"
        if kind == "overlap":  # rows that share elements: a self-overlapping view
            return f"loom.as_strided({base}, (3, 3), (1, 1), 0)", (3, 3)
        return f"loom.as_strided({base}, (4, 2), (0, 1), 2)", (4, 2)

    def tensors(self):
        items = [self.tensor() if self.chance(0.85) else self.any_() for _ in range(self.rng.randrange(4))]
        if self.chance(0.15):  # a list of 0-d tensors
            items = ["loom.tensor(1.0)", "loom.tensor(2)", "loom.tensor(float('nan'))"][: self.rng.randrange(1, 4)]
        return ("[" + ", ".join(items) + "]") if self.chance(0.7) else ("(" + "".join(f"{i}, " for i in items) + ")")

    def index(self):
        """Something to subscript a tensor with."""
        r = self.rng.random()
        if r < 0.25:
            return self.int_()
        if r < 0.45:
            parts = [self.pick(["None", "-1", "0", "2**63-1", "-2**63", "loom.tensor(1)"]) for _ in range(3)]
            return f"slice({', '.join(parts)})"
        if r < 0.6:
            return self.tensor()
        if r < 0.7:
            return self.pick(["[0, -1]", "[True, False]", "[loom.tensor(0), loom.tensor(1)]", "[[0, 1], [1, 0]]",
                              "[2**63-1]", "[]"])
        items = ["0", "-1", "None", "Ellipsis", "slice(None, None, 2)", "slice(1, None)", "loom.tensor([0, 1])",
                 "loom.tensor(True)", "2**62"]
        parts = [self.pick(items) for _ in range(self.rng.randrange(1, 5))]
        return "(" + ", ".join(parts) + ",)"

    def any_(self):
        kind = self.pick(["tensor", "tensor", "tensor", "int", "size", "float", "bool", "dtype", "str", "junk",
                          "tensors", "index"])
        return self.of_kind(kind)

    def of_kind(self, kind):
        if kind == "tensor":
            return self.tensor()
        if kind == "tensors":
            return self.tensors()
        if kind in ("int", "dim"):
            return self.dim() if kind == "dim" else self.int_()
        if kind == "size":
            return self.size()
        if kind == "float":
            return self.float_()
        if kind == "bool":
            return self.pick(["True", "False"]) if self.chance(0.85) else self.pick(["loom.tensor(True)", "2", "None"])
        if kind == "dtype":
            return self.dtype()
        if kind == "str":
            return self.pick(STRINGS)
        if kind == "index":
            return self.index()
        return self.pick(JUNK)

    def argument(self, param):
        """A value for `param` (a Param): mostly of its kind, sometimes anything at all."""
        if self.chance(0.75):
            return self.of_kind(param.kind)
        return self.any_()


# ------------------------------------------------------------------ targets and their signatures


class Param:
    def __init__(self, name, kind, required, keyword_only=False, variadic=False, positional_only=False):
        self.name, self.kind, self.required = name, kind, required
        self.keyword_only, self.variadic, self.positional_only = keyword_only, variadic, positional_only


ANNOTATION_KINDS = [("Sequence[int]", "size"), ("Tensor", "tensor"), ("dtype", "dtype"), ("bool", "bool"),
                    ("float", "float"), ("int", "int"), ("str", "str")]


def param_kind(name, annotation):
    for needle, kind in ANNOTATION_KINDS:
        if annotation and needle in annotation and "object" not in annotation:
            return kind
    for kind, names in NAME_KINDS.items():
        if name in names:
            return kind
    return "any"


def split_params(text):
    """Splits a signature's parameter text at top-level commas."""
    depth, part, parts = 0, "", []
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(part.strip())
            part = ""
        else:
            part += ch
    if part.strip():
        parts.append(part.strip())
    return parts


def parse_signature(target, drop_self):
    """Params of a Python function (inspect) or a nanobind one (the first line of its docstring)."""
    try:
        sig = inspect.signature(target)
        params = []
        for p in sig.parameters.values():
            variadic = p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            if p.kind == p.VAR_KEYWORD:
                continue
            params.append(Param(p.name, param_kind(p.name, None), p.default is p.empty and not variadic,
                                p.kind == p.KEYWORD_ONLY, variadic, p.kind == p.POSITIONAL_ONLY))
        return params[1:] if drop_self and params and params[0].name == "self" else params
    except (TypeError, ValueError):
        pass
    doc = getattr(target, "__doc__", None) or ""
    m = re.match(r"\s*\w+\((.*?)\)\s*(->|$)", doc.split("\n")[0])
    if not m:
        return None  # unknown: the caller passes random positional arguments
    params, keyword_only = [], False
    for part in split_params(m.group(1)):
        if part == "*":
            keyword_only = True
            continue
        if part == "/":  # the parameters so far are positional-only
            for p in params:
                p.positional_only = True
            continue
        if part.startswith("**"):
            continue
        variadic = part.startswith("*")
        name, _, rest = part.lstrip("*").partition(":")
        annotation, _, default = rest.partition("=")
        name = name.split("=")[0].strip()
        if name == "self":
            continue
        required = not default and not variadic and "=" not in part
        params.append(Param(name, param_kind(name, annotation.strip()), required, keyword_only, variadic))
        keyword_only = keyword_only or variadic
    return params


def discover_targets():
    """(label, how to reach it in the call line, params or None, is_property) for every public callable."""
    import loom
    import loom.autograd
    import loom.nn.functional
    import loom.nn.init

    targets = []
    for prefix, module in (("loom", loom), ("F", loom.nn.functional), ("init", loom.nn.init),
                           ("loom.autograd", loom.autograd)):
        for name in sorted(dir(module)):
            obj = getattr(module, name)
            full = f"{'loom.nn.functional' if prefix == 'F' else 'loom.nn.init' if prefix == 'init' else prefix}.{name}"
            if name.startswith("_") or not callable(obj) or isinstance(obj, type) or full in EXCLUDED:
                continue
            if getattr(obj, "__module__", "") in ("math", "numpy", "functools", "warnings"):
                continue  # modules imported by loom's own files
            if prefix != "loom" and getattr(loom, name, None) is obj:
                continue  # re-exported: fuzzed once, as loom.<name>
            targets.append((full, f"{prefix}.{name}", parse_signature(obj, False), False))
    for name in sorted(dir(loom.Tensor)):
        if name.startswith("_") and name not in TENSOR_DUNDERS:
            continue
        if f"Tensor.{name}" in EXCLUDED:
            continue
        attr = inspect.getattr_static(loom.Tensor, name)
        is_property = isinstance(attr, property) or type(attr).__name__ == "nb_property"
        params = None if is_property else parse_signature(getattr(loom.Tensor, name), True)
        targets.append((f"Tensor.{name}", name, params, is_property))
    return targets


# Tensor dunders worth calling (the rest are Python object plumbing).
TENSOR_DUNDERS = {"__getitem__", "__setitem__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                  "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
                  "__rpow__", "__matmul__", "__rmatmul__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
                  "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__invert__", "__neg__", "__pos__",
                  "__abs__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                  "__ipow__", "__iand__", "__ior__", "__ixor__", "__len__", "__bool__", "__float__", "__int__",
                  "__index__", "__repr__", "__format__", "__dlpack__", "__dlpack_device__", "__hash__", "__deepcopy__",
                  "__reduce_ex__", "__iter__", "__contains__", "__array__"}


def call_line(targets, seed, index):
    """The source of call `index` of `seed`, and the label of its target."""
    import random

    rng = random.Random((seed << 40) ^ index)
    gen = Gen(rng)
    label, access, params, is_property = rng.choice(targets)
    if label.startswith("Tensor."):
        receiver = gen.tensor()
        if is_property:
            if rng.random() < 0.4:  # assign: grad, data, requires_grad ... (read-only ones raise)
                return f"t = {receiver}; t.{access} = {gen.any_()}; r = t", label
            return f"r = ({receiver}).{access}", label
        head = f"({receiver}).{access}("
    else:
        head = f"{access}("
    if access.endswith("__getitem__") or access.endswith("__setitem__"):
        args = [gen.index()] + ([gen.tensor() if rng.random() < 0.5 else gen.any_()] if "set" in access else [])
        return f"r = {head}{', '.join(args)})", label
    args, kwargs = [], []
    if params is None:
        args = [gen.any_() for _ in range(rng.choice([0, 1, 1, 2, 2, 3]))]
    else:
        positional_open = True
        for p in params:
            if p.variadic:
                args += [gen.argument(p) for _ in range(rng.choice([0, 1, 1, 2, 3]))] if positional_open else []
                continue
            if rng.random() > (0.97 if p.required else 0.35):
                positional_open = False  # left out: the later arguments go by keyword
                continue
            if keyword.iskeyword(p.name) and not positional_open:
                continue  # `from=` cannot be written: such a parameter can only be passed by position
            if p.keyword_only or not positional_open or (rng.random() < 0.2 and not p.positional_only
                                                         and not keyword.iskeyword(p.name)):
                positional_open = False
                kwargs.append(f"{p.name}={gen.argument(p)}")
            else:
                args.append(gen.argument(p))
        if rng.random() < 0.03:
            args.append(gen.any_())  # one too many
        if rng.random() < 0.03:
            kwargs.append(f"bogus={gen.any_()}")
    return f"r = {head}{', '.join(args + kwargs)})", label


# ------------------------------------------------------------------ the child: runs calls, reports counts


def touch(r, loom):
    """Uses a result the way user code would: print it, read it back, and backpropagate through it."""
    if isinstance(r, (tuple, list)):
        for item in r[:4]:
            touch(item, loom)
        return
    if not isinstance(r, loom.Tensor):
        return
    repr(r)
    nested = 1  # tolist() builds a list per row even when a tensor is empty: (2**31, 0) means 2**31 lists
    for d in r.shape:
        nested *= max(d, 1)
    if nested <= 4096:
        r.tolist()
    if r.requires_grad and r.dtype.is_floating_point and r.numel() <= 4096:
        r.sum().backward()


def child(seed, start, count, progress_path):
    import warnings

    import loom

    warnings.simplefilter("ignore")
    if "asan" not in os.environ.get("LD_PRELOAD", ""):  # ASan reserves terabytes of address space
        import resource
        limit = 6 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    targets = discover_targets()
    fd = os.open(progress_path, os.O_RDWR)
    progress = mmap.mmap(fd, PROGRESS.size)
    namespace = {}
    exec(PRELUDE, namespace)
    raised = collections.Counter()
    returned = 0
    abort_at = int(os.environ.get("LOOM_FUZZ_ABORT_AT", "-1"))  # for the test that the parent notices a crash
    for index in range(start, start + count):
        PROGRESS.pack_into(progress, 0, index, returned)  # read by the parent if this process dies
        if index == abort_at:
            os.abort()
        line, label = call_line(targets, seed, index)
        scope = dict(namespace)
        try:
            exec(line, scope)
            touch(scope.get("r"), loom)
            returned += 1
        except ALLOWED as e:
            raised[type(e).__name__] += 1
        except BaseException as e:  # noqa: BLE001 -- anything else is a finding, reported at once
            print("UNEXPECTED " + json.dumps({"index": index, "line": line, "error": f"{type(e).__name__}: {e}"[:300]}),
                  flush=True)
        finally:
            loom.set_grad_enabled(True)
    PROGRESS.pack_into(progress, 0, start + count, returned)
    print("RAISED " + json.dumps(raised), flush=True)


# ------------------------------------------------------------------ the parent: restarts the child after a crash


REFUSED_ALLOCATION = re.compile(r"AddressSanitizer: (out-of-memory|allocation-size-too-big|requested allocation size)")


def crash_summary(returncode, stderr):
    """A short description of how the child died: the sanitizer's summary line or the signal."""
    for pattern in (r"SUMMARY: \w+Sanitizer: .*", r"\S*: runtime error: .*", r"Critical nanobind error.*",
                    r"terminate called .*", r"Fatal Python error: .*"):
        m = re.search(pattern, stderr)
        if m:
            return m.group(0)[:200]
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


# The page the child writes before each call: (index of the call, calls so far that returned).
PROGRESS = struct.Struct("<qq")


def run_child(seed, start, count, timeout):
    """Runs calls [start, start+count) in a child; returns (next index, result, death or None)."""
    with tempfile.NamedTemporaryFile(prefix="loom-fuzz-") as progress, tempfile.TemporaryFile("w+") as err:
        progress.write(PROGRESS.pack(start, 0))
        progress.flush()
        cmd = [sys.executable, "-m", "tests.fuzz.api", "--child", progress.name, "--seed", str(seed),
               "--start", str(start), "--calls", str(count)]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=root)
        view = mmap.mmap(progress.fileno(), PROGRESS.size, access=mmap.ACCESS_READ)
        last, last_change = start, time.monotonic()
        hung = False
        while proc.poll() is None:
            time.sleep(0.2)
            now_at = PROGRESS.unpack_from(view, 0)[0]
            if now_at != last:
                last, last_change = now_at, time.monotonic()
            elif time.monotonic() - last_change > timeout:
                proc.kill()
                hung = True
        out = proc.stdout.read()
        proc.wait()
        at, returned = PROGRESS.unpack_from(view, 0)
        err.seek(0)
        stderr = err.read()
    lines = out.splitlines()
    result = {"returned": returned, "unexpected": [json.loads(x[11:]) for x in lines if x.startswith("UNEXPECTED ")],
              "raised": next((json.loads(x[7:]) for x in lines if x.startswith("RAISED ")), {})}
    if proc.returncode == 0 and at == start + count:
        return start + count, result, None
    how = f"hang: no progress for {timeout} s" if hung else crash_summary(proc.returncode, stderr)
    return at + 1, result, {"index": at, "how": how, "stderr": stderr[-4000:]}


def campaign(seed, start, count, timeout, log=print):
    """Runs `count` calls from `start`, resuming after each crash; returns the summary dict."""
    targets = discover_targets()
    totals, raised, unexpected, crashes = collections.Counter(), collections.Counter(), [], []
    index, end, began = start, start + count, time.monotonic()
    chunk = 20000  # a fresh child now and then keeps one leak or corrupted state from spreading
    while index < end:
        n = min(chunk, end - index)
        next_index, result, death = run_child(seed, index, n, timeout)
        totals["returned"] += result["returned"]
        raised.update(result["raised"])  # by type; lost for a child that died
        unexpected += result["unexpected"]
        if death is not None and REFUSED_ALLOCATION.search(death["how"]):
            # ASan's operator new cannot throw bad_alloc, so a refused huge allocation (MemoryError in the
            # release build, an allowed outcome) ends the process: counted, not a crash.
            totals["refused_allocations"] += 1
        elif death is not None:
            line, label = call_line(targets, seed, death["index"])
            # Does the call crash on its own, in a fresh process? (It may need the calls before it.)
            alone = run_child(seed, death["index"], 1, timeout)[2] is not None
            crashes.append(dict(death, line=line, target=label, alone=alone))
            totals["crashed"] += 1
            log(f"CRASH at call {death['index']} ({death['how']}){'' if alone else ' [not alone]'}:\n    {line}")
            if len(crashes) >= 200:
                break
        index = next_index
        totals["calls"] = index - start
    totals["seconds"] = round(time.monotonic() - began, 1)
    return {"seed": seed, "start": start, "totals": dict(totals), "raised": dict(raised), "crashes": crashes,
            "unexpected": unexpected}


def report(summary):
    totals = summary["totals"]
    refused = totals.get("refused_allocations", 0)
    lines = [f"seed {summary['seed']}: {totals.get('calls', 0)} calls in {totals['seconds']} s: "
             f"{totals.get('returned', 0)} returned, {totals.get('crashed', 0)} crashed, "
             f"{len(summary['unexpected'])} unexpected exception types"
             + (f", {refused} allocations refused by ASan" if refused else "")]
    raised = sorted(summary["raised"].items(), key=lambda kv: -kv[1])
    lines.append("  raised (children that finished): " + ", ".join(f"{k} {v}" for k, v in raised))
    distinct = collections.OrderedDict()
    for c in summary["crashes"]:
        distinct.setdefault((c["target"], c["how"]), []).append(c)
    for (target, how), group in distinct.items():
        c = group[0]
        alone = "" if c["alone"] else "  (needs earlier calls)"
        lines.append(f"CRASH x{len(group)} {target}: {how}\n    reproduce: python -m tests.fuzz.api --seed "
                     f"{summary['seed']} --start {c['index']} --calls 1{alone}\n    {c['line']}")
    for u in summary["unexpected"][:20]:
        lines.append(f"UNEXPECTED {u['error']}\n    {u['line']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--calls", type=int, help="how many calls (default 10000; 1 with --show)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without progress that count as a hang")
    parser.add_argument("--show", action="store_true", help="print the calls instead of running them")
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.seed, args.start, args.calls, args.child)
        return 0
    if args.show:
        targets = discover_targets()
        for i in range(args.start, args.start + (args.calls or 1)):
            print(call_line(targets, args.seed, i)[0])
        return 0
    summary = campaign(args.seed, args.start, args.calls or 10000, args.timeout)
    print(report(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if summary["crashes"] or summary["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
