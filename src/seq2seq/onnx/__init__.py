"""Exported models on ONNX Runtime without PyTorch: `load(EXPORT_DIR).translate(texts, strategy="beam")`, or for a
language model `load(EXPORT_DIR).generate("prompt", temperature=0.7)`."""

from seq2seq.onnx.generator import OnnxGenerator
from seq2seq.onnx.loading import is_export, load
from seq2seq.onnx.translator import OnnxTranslator, Translation

__all__ = ["OnnxGenerator", "OnnxTranslator", "Translation", "is_export", "load"]
