"""Exported models on ONNX Runtime without PyTorch: `load(EXPORT_DIR).translate(texts, strategy="beam")`, for a
language model `load(EXPORT_DIR).generate("prompt", temperature=0.7)`, for a classifier
`load(EXPORT_DIR).classify(texts)`, for a speech model `load(EXPORT_DIR).transcribe(wav_paths)`.
`seq2seq.onnx.export` writes them (and imports torch); importing the package imports neither."""

from seq2seq.utils.lazy import homes, lazy_getattr

__all__ = ["OnnxClassifier", "OnnxGenerator", "OnnxTranscriber", "OnnxTranslator", "Translation", "is_export", "load"]
__getattr__ = lazy_getattr(__name__, {**homes("seq2seq.onnx.classifier", ["OnnxClassifier"]),
                                      **homes("seq2seq.onnx.generator", ["OnnxGenerator"]),
                                      **homes("seq2seq.onnx.loading", ["is_export", "load"]),
                                      **homes("seq2seq.onnx.transcriber", ["OnnxTranscriber"]),
                                      **homes("seq2seq.onnx.translator", ["OnnxTranslator"]),
                                      **homes("seq2seq.tasks.translating", ["Translation"])})
