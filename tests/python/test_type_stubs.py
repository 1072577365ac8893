"""loom/_C.pyi, the extension's type stubs that the build writes with nanobind's stubgen: installed beside the
extension, valid Python, and describing the bound API (checked against the module itself, not a fixed list)."""
import ast
import os

import loom

STUB = os.path.join(os.path.dirname(loom._C.__file__), "_C.pyi")


def _stub_tree():
    assert os.path.exists(STUB), f"{STUB} is missing: the build should write it (CMakeLists.txt, nanobind_add_stub)"
    with open(STUB) as f:
        return ast.parse(f.read(), filename=STUB)


def test_stub_is_installed_and_parses():
    tree = _stub_tree()
    names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert {"zeros", "matmul", "Tensor"} <= names


def test_stub_names_every_public_function_of_the_module():
    # A stub written from an older build, or a broken stubgen run, would miss the module's current functions.
    tree = _stub_tree()
    stubbed = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    # Aliases (absolute = abs) are written as assignments.
    stubbed |= {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    public = {name for name in dir(loom._C) if not name.startswith("_") and callable(getattr(loom._C, name))}
    missing = sorted(public - stubbed)
    assert not missing, f"_C.pyi lacks {len(missing)} public names of loom._C, e.g. {missing[:10]}"


def test_stub_gives_tensor_methods_signatures():
    tree = _stub_tree()
    tensor = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Tensor")
    methods = {node.name for node in tensor.body if isinstance(node, ast.FunctionDef)}
    assert {"backward", "sum", "reshape"} <= methods
