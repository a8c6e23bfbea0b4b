"""Serve models over HTTP: `create_app(models)` is an ASGI app (FastAPI) with a JSON API and a web page."""

from seq2seq.utils.lazy import homes, lazy_getattr

__all__ = ["ApiError", "Limits", "Settings", "create_app", "load_models"]
__getattr__ = lazy_getattr(__name__, {**homes("seq2seq.serve.app", ["ApiError", "create_app"]),
                                      **homes("seq2seq.serve.settings", ["Limits", "Settings"]),
                                      **homes("seq2seq.serve.models", ["load_models"])})
