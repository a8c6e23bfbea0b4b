"""Request bodies of the HTTP API, their decoding knobs built from the fields of DecodingOptions."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from seq2seq.decoding.options import DecodingOptions


class Strict(BaseModel):
    """Unknown fields are errors; "5" is not an int and 1 is not a bool."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _optional(annotation: Any) -> Any:
    """Every knob may be sent as null (its default)."""
    return annotation | None


def _knob_fields(defaults: bool = True) -> dict[str, Any]:
    """The fields of DecodingOptions with their types, and their defaults (or None: the caller's defaults)."""
    hints = typing.get_type_hints(DecodingOptions)
    return {field.name: (_optional(hints[field.name]), field.default if defaults else None)
            for field in dataclasses.fields(DecodingOptions)}


KNOBS = tuple(field.name for field in dataclasses.fields(DecodingOptions))

TranslateRequest = create_model(  # type: ignore[call-overload]
    "TranslateRequest", __base__=Strict, model=(str | None, None), texts=(list[str], ...),
    attention=(bool, False), **_knob_fields())
GenerateRequest = create_model(  # type: ignore[call-overload]
    "GenerateRequest", __base__=Strict, model=(str | None, None), prompt=(str, ""), stream=(bool, False),
    stop_at_end=(bool, False), num=(int | None, None), **_knob_fields(defaults=False))
ChatRequest = create_model(  # type: ignore[call-overload]
    "ChatRequest", __base__=Strict, model=(str | None, None), message=(str, ...),
    history=(list[str], Field(default_factory=list)), **_knob_fields())
ClassifyRequest = create_model(  # type: ignore[call-overload]
    "ClassifyRequest", __base__=Strict, model=(str | None, None), texts=(list[str], ...), top_k=(int, Field(1, ge=1)))


def decoding_options(request: BaseModel) -> DecodingOptions:
    """The request's knobs as DecodingOptions (which raises ConfigError naming a bad knob); null means default."""
    values = {name: getattr(request, name) for name in KNOBS if getattr(request, name) is not None}
    return DecodingOptions(**values)


def generation_knobs(request: BaseModel) -> dict[str, Any]:
    """The knobs the request sets (num and those of DecodingOptions), for TextGenerator.generate; the others take
    the generator's defaults."""
    return {name: getattr(request, name) for name in ("num", *KNOBS) if getattr(request, name) is not None}
