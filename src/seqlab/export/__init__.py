"""Export trained models: ONNX (verified in onnxruntime), TorchScript, safetensors, and
Hugging-Face-style ``save_pretrained`` / ``from_pretrained`` directories.

The ONNX and TorchScript exports need no seqlab at inference; a pretrained directory
(``config.json`` + ``model.safetensors`` + ``tokenizer.json``) is one call away from reuse::

    from seqlab.export import from_pretrained, load_pretrained
    model = from_pretrained("runs/lm/export/pretrained")
    pretrained = load_pretrained("runs/lm/export/pretrained")  # model, tokenizer, config
"""

from seqlab.export.onnx import export_onnx
from seqlab.export.pretrained import (
    Pretrained,
    export_safetensors,
    from_pretrained,
    load_pretrained,
    save_pretrained,
)
from seqlab.export.torchscript import export_torchscript
from seqlab.export.wrapper import (
    ExportError,
    LastTokenOutputs,
    SequenceOutputs,
    readout_for_task,
    wrap,
)

__all__ = [
    "ExportError",
    "LastTokenOutputs",
    "Pretrained",
    "SequenceOutputs",
    "export_onnx",
    "export_safetensors",
    "export_torchscript",
    "from_pretrained",
    "load_pretrained",
    "readout_for_task",
    "save_pretrained",
    "wrap",
]
