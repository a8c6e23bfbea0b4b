"""Exported models on ONNX Runtime without PyTorch: `load(EXPORT_DIR).translate(texts, strategy="beam")`."""

from seq2seq.onnx.translator import OnnxTranslator, Translation, is_export, load

__all__ = ["OnnxTranslator", "Translation", "is_export", "load"]
