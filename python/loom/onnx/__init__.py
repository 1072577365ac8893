"""loom.onnx: importable so scripts that import torch.onnx at module level run; exporting needs the compiler's
graph capture (docs/design.md, compiler layer), which is not built yet, so export raises NotImplementedError."""

__all__ = ["export", "dynamo_export", "is_in_onnx_export"]


def is_in_onnx_export():
    """False: loom never runs a model inside an ONNX export."""
    return False


def export(model, args=(), f=None, *unused, **kwargs):
    """Not available yet: ONNX export arrives with loom's compiler (graph capture)."""
    raise NotImplementedError("loom.onnx.export: ONNX export is not implemented yet (it needs loom's compiler, "
                              "which is not built)")


def dynamo_export(model, *args, **kwargs):
    raise NotImplementedError("loom.onnx.dynamo_export: ONNX export is not implemented yet (it needs loom's "
                              "compiler, which is not built)")
