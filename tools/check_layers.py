#!/usr/bin/env python3
"""Fails on an include that goes up the layers of src/loom, or from outside libloom into its internal headers.

Run by `make lint`; docs/design.md ("Layers") describes the layers. Usage: python tools/check_layers.py [repo root]
"""
import re
import sys
from pathlib import Path

# The layers of src/loom, lowest first. A file may include its own folder and any folder of a lower rank; folders of
# one rank are peers and include none of each other. The top level (loom.h, init.cpp) wires everything together.
#   core      tensors, dtypes, devices, storage, errors: depends on nothing else of loom
#   ops       the registry, dispatcher, grad-mode flag, mode/hook seams and every op's definition
#   backends, autograd, autocast   plug into the ops seams (kernels; the recorder and in-place hooks; the composite
#             hook and a dispatcher mode), installed by init.cpp
#   nn, optim, data, serialize, distributed   libtorch-like libraries over ops and autograd
#   models    built from nn
LAYERS = {
    "core": 0,
    "ops": 1,
    "backends": 2,
    "autograd": 2,
    "autocast": 2,
    "nn": 3,
    "optim": 3,
    "data": 3,
    "serialize": 3,
    "distributed": 3,
    "models": 4,
    "": 5,  # src/loom/loom.h, src/loom/init.cpp
}

# Known exceptions, each with the reason it stands: (including file, included header).
ALLOWED = {
    # _set_cpu_capability and the GEMM engine switch (test and benchmark hooks) reach into the CPU backend; they
    # belong behind a public backend-options API in backends/.
    ("python/src/tensor.cpp", "loom/backends/cpu/gemm/engine.h"),
    ("python/src/tensor.cpp", "loom/backends/cpu/simd/cpu_features.h"),
}

# Code built against the installed (public) headers only, like a program or a plugin would be.
OUTSIDE = ("python/src", "backends", "examples", "tests/package")
INCLUDE = re.compile(r'^\s*#\s*include\s+"(loom/[^"]+)"', re.M)
SOURCES = ("*.h", "*.cpp", "*.cu", "*.cuh")


def layer_of(header: str) -> str:
    parts = header.split("/")  # loom/<folder>/... or loom/<file>
    return parts[1] if len(parts) > 2 else ""


def internal_regex(root: Path) -> re.Pattern:
    """CMakeLists.txt's LOOM_INTERNAL_HEADERS_REGEX: the headers that are not installed."""
    text = (root / "CMakeLists.txt").read_text()
    found = re.search(r'set\(LOOM_INTERNAL_HEADERS_REGEX "([^"]+)"\)', text)
    if not found:
        sys.exit("check_layers: LOOM_INTERNAL_HEADERS_REGEX not found in CMakeLists.txt")
    return re.compile(found.group(1).replace("\\\\", "\\"))


def files_under(root: Path, folder: str):
    for pattern in SOURCES:
        yield from sorted((root / folder).rglob(pattern))


def check(root: Path) -> list:
    errors = []
    internal = internal_regex(root)
    for path in files_under(root, "src/loom"):
        rel = path.relative_to(root).as_posix()
        parts = path.relative_to(root / "src/loom").parts
        own = parts[0] if len(parts) > 1 else ""
        if own not in LAYERS:
            errors.append(f"{rel}: folder '{own}' has no layer in tools/check_layers.py (add it to LAYERS)")
            continue
        for header in INCLUDE.findall(path.read_text(errors="replace")):
            other = layer_of(header)
            if other == own or (rel, header) in ALLOWED:
                continue
            if other not in LAYERS:
                errors.append(f"{rel}: includes {header} from an unknown layer '{other}'")
            elif LAYERS[other] >= LAYERS[own]:
                kind = "a peer" if LAYERS[other] == LAYERS[own] else "an upper"
                errors.append(f"{rel}: includes {header}, {kind} layer ({own or 'top'} -> {other})")
    for folder in OUTSIDE:
        for path in files_under(root, folder):
            rel = path.relative_to(root).as_posix()
            for header in INCLUDE.findall(path.read_text(errors="replace")):
                if internal.match(header) and (rel, header) not in ALLOWED:
                    errors.append(f"{rel}: includes {header}, an internal header of libloom (not installed)")
    return errors


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    errors = check(root)
    for line in errors:
        print(line)
    if errors:
        print(f"check_layers: {len(errors)} include(s) against the layering (docs/design.md, 'Layers')")
        return 1
    print("check_layers: includes follow the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
