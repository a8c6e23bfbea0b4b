"""`seq2seq export`: a translation model's encoder and decoder step (an ensemble's: each member's), a language
model's prompt reading and step, a speech model's convolutional front end and encoder (with its CTC head) and decoder
step, or a classifier's scores, as ONNX graphs, checked against PyTorch."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from seq2seq.data.metadata import ModelMetadata, check_ensemble_members, vocabulary_signature
from seq2seq.data.vocab import EOS_ID, PAD_ID
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.errors import CheckpointError, ConfigError, RunDirectoryError
from seq2seq.models.classifier import Classifier
from seq2seq.models.decoder import Memory
from seq2seq.models.language_model import PROMPT_OUTPUT, LanguageModel
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.speech_encoder import SpeechSeq2Seq
from seq2seq.models.state import BATCH, SOURCE, Axes, DecoderState
from seq2seq.onnx import graphs
from seq2seq.onnx.classifier import ClassifierGraph
from seq2seq.onnx.ensemble import open_model
from seq2seq.onnx.model import OnnxModel, file_sha256
from seq2seq.tasks import registry
from seq2seq.training import checkpoint
from seq2seq.utils.files import atomic_directory, write_text_atomically

logger = logging.getLogger(__name__)

OPSET = 17
TOLERANCE = 1e-4  # largest absolute difference allowed between PyTorch's and ONNX Runtime's fp32 outputs
CHECK_STEPS = 6  # decoder steps compared per checked batch
CHECK_LENGTHS = ([7, 4, 1], [1], [12, 12, 3, 9])  # the rows' lengths of each checked batch
FRAMES_PER_LENGTH = 8  # a speech model's sample batches: frames per unit of those lengths (two per encoder output)
Decoding = Seq2Seq | LanguageModel  # the models exported as an encoder graph and a step graph
Model = Decoding | Classifier


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which of Memory's tensors a model has, by their graph names (`onnx.graphs`), and the state's tensors that the
    step graph reads and returns, in order, with their axes as the state declares them (`Axes.to_dict`); prompt: a
    language model, whose encoder graph reads the prompt and also returns the logits of the first new token; ctc:
    a speech model with a CTC head, whose encoder graph also returns the head's log-probabilities."""

    memory: list[str]
    state: list[str]
    copy: bool
    prompt: bool = False
    state_axes: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    ctc: bool = False

    @classmethod
    def of(cls, model: Decoding, memory: Memory, state: DecoderState) -> Layout:
        """The layout of model's graphs, from a memory, the initial state and the state its first step returns (a
        language model's first step spends a tensor that the step graph never sees)."""
        prompt = PROMPT_OUTPUT in state  # a language model, whose steps read no memory
        present = [] if prompt else [name for name in graphs.MEMORY_NAMES if getattr(memory, name) is not None]
        stepped = model.step(torch.full((memory.mask.size(0),), EOS_ID + 1), state, memory)[1]
        clashes = set(stepped.tensors) & {*graphs.MEMORY_NAMES, graphs.TOKENS, graphs.LOGITS, graphs.EXTENSION}
        if clashes:  # a graph's inputs and outputs are named after both
            raise CheckpointError(f"the decoder state's {', '.join(sorted(clashes))} take the name of a graph tensor")
        return cls(present, list(stepped.tensors), memory.source is not None, prompt,
                   {name: axes.to_dict() for name, axes in stepped.axes.items()},
                   ctc=getattr(model, "ctc", None) is not None)

    def axes(self, name: str) -> dict[int, str]:
        """The dynamic axes of the state tensor name."""
        return Axes.from_dict(self.state_axes[name]).dynamic()

    def state_tensors(self, state: DecoderState) -> tuple[Tensor, ...]:
        return tuple(state[name] for name in self.state)

    def state_from(self, tensors: tuple[Tensor, ...]) -> DecoderState:
        return DecoderState(dict(zip(self.state, tensors, strict=True)),
                            {name: Axes.from_dict(self.state_axes[name]) for name in self.state})


class EncoderGraph(nn.Module):
    """src (B, S) (a speech model's frames (B, S, F)), src_lengths (B,) -> the memory's tensors, then the initial
    decoder state's (and with a prompt, the logits of the first step, which reads no token; with a CTC head, its
    log-probabilities)."""

    def __init__(self, model: Decoding, layout: Layout) -> None:
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encode(src, src_lengths)
        state = self.model.init_state(memory)
        first = (self.model.step(src[:, 0], state, memory)[0],) if self.layout.prompt else ()
        ctc = (self.model.ctc_log_probs(memory),) if self.layout.ctc else ()  # type: ignore[union-attr]
        return (*(getattr(memory, name) for name in self.layout.memory), *self.layout.state_tensors(state), *first,
                *ctc)


class ScoresGraph(nn.Module):
    """src (B, S), src_lengths (B,) -> a classifier's logits (B, C) (and its attention pooling's weights (B, S))."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_lengths: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        logits, weights = self.model.scores(src, src_lengths)
        return logits if weights is None else (logits, weights)


class StepGraph(nn.Module):
    """tokens (B,), the state's tensors, the memory's (and a copying model's extension (E,)) -> logits, state."""

    def __init__(self, model: Decoding, layout: Layout) -> None:
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, tokens: Tensor, *inputs: Tensor) -> tuple[Tensor, ...]:
        count = len(self.layout.state)
        state = self.layout.state_from(inputs[:count])
        memory = dict(zip(self.layout.memory, inputs[count:], strict=False))
        width = self.model.tgt_vocab_size + inputs[-1].size(0) if self.layout.copy else 0  # traced: dynamic
        read = Memory(**memory, final=(), width=width) if memory else None  # a language model reads none
        logits, state = self.model.step(tokens, state, read)  # type: ignore[arg-type]
        return (logits, *self.layout.state_tensors(state))


def export(model_path: str | Path | Sequence[str | Path], out_dir: str | Path, int8: bool = False,
           force: bool = False) -> dict[str, Any]:
    """Write the graphs, model.json and manifest.json of the translation model, language model, classifier or speech
    model at model_path into the directory out_dir; returns the manifest. Several paths are an ensemble of
    translation models sharing their vocabularies: each member's graphs go into members/I, model.json (the first's)
    and the manifest are written once.

    The export is built in a folder beside out_dir and renamed to it only once its graphs, run with ONNX Runtime on
    a few batches, match PyTorch: a difference above TOLERANCE is a CheckpointError, and a failed or interrupted
    export leaves out_dir as it was. An existing non-empty out_dir is a ConfigError unless force, which replaces an
    earlier export (never a directory without its manifest).
    """
    out = Path(out_dir)
    _check_out(out, force)
    paths = [model_path] if isinstance(model_path, str | Path) else list(model_path)
    loaded = [_load(path) for path in paths]
    model = _ensemble(paths, loaded)
    runtime = _runtime(loaded[0][0], loaded[0][1])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_directory(out, replace=force) as building:
            return _build(model, loaded[0][1], runtime, [file for file, _, _ in loaded], building, out, int8)
    except OSError as error:
        raise RunDirectoryError(f"{out}: cannot write the export: {error.strerror or error}") from None


def _check_out(out: Path, force: bool) -> None:
    """Before any work: --out must be new, empty, or with force an earlier export."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file, not a directory (choose another --out)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ConfigError(f"{out}: exists and is not empty (choose another --out, or --force to replace an export)")
    if not (out / graphs.MANIFEST).is_file():
        raise ConfigError(f"{out}: not an export (no {graphs.MANIFEST}); --force replaces only an earlier export")


def _load(path: str | Path) -> tuple[Path, ModelMetadata, Model]:
    """The checkpoint file of a run directory (or the file itself), its metadata and its trained model."""
    file = checkpoint.resolve_checkpoint(path)
    tensors, values = checkpoint.load_checkpoint(file)
    metadata = ModelMetadata.from_dict(values, str(file))
    registry.of_metadata(metadata, file)
    model = _model(metadata, file)
    checkpoint.load_model_weights(model, tensors, file)
    return file, metadata, model.eval()


def _runtime(file: Path, metadata: ModelMetadata) -> str:
    """The runtime of the export of the checkpoint's model (`registry.export_runtime`); a model that does not
    export is a CheckpointError naming the file, before anything is written."""
    try:
        return registry.export_runtime(registry.get(metadata.task), metadata.config)
    except ConfigError as error:
        raise CheckpointError(f"{file}: {error}") from None


def _ensemble(paths: list[str | Path], loaded: list[tuple[Path, ModelMetadata, Model]]) -> Model | Ensemble:
    """The one model, or the Ensemble of translation models that share tokenizers, vocabularies and copy setting
    (as `api.load_ensemble` requires)."""
    if len(loaded) == 1:
        return loaded[0][2]
    for file, metadata, _ in loaded:
        if _runtime(file, metadata) != graphs.TRANSLATOR:
            raise CheckpointError(f"{file}: an ensemble exports translation models only, not "
                                  f"{registry.get(metadata.task).kind}")
    check_ensemble_members(paths, [vocabulary_signature(metadata.config.model.copy, metadata.tokenizers,
                                                        metadata.vocabs) for _, metadata, _ in loaded])
    return Ensemble([cast(Seq2Seq, model) for _, _, model in loaded])  # each a Seq2Seq: checked above


def _model(metadata: ModelMetadata, file: Path) -> Model:
    """The untrained model of the checkpoint's task (`Task.build`), once its export is known to run
    (`_runtime`)."""
    _runtime(file, metadata)
    return registry.get(metadata.task).build(metadata)  # type: ignore[no-any-return]


def _build(model: Model | Ensemble, metadata: ModelMetadata, runtime: str, files: list[Path], directory: Path,
           out: Path, int8: bool) -> dict[str, Any]:
    """Export and check the graphs in directory (to become out), then write the metadata and manifest."""
    manifest = {**_write(model, metadata, files, directory), "runtime": runtime}
    largest = check(model, directory, manifest)
    if largest > TOLERANCE:
        raise CheckpointError(f"{out}: the exported graphs differ from PyTorch by {largest:.2e} (> {TOLERANCE:.0e}); "
                              "nothing was exported")
    manifest["check"] = {"tolerance": TOLERANCE, "fp32_max_difference": largest}
    if int8:
        manifest = _quantize(directory, model, manifest)
    write_text_atomically(directory / graphs.METADATA, json.dumps(metadata.to_dict()))
    write_text_atomically(directory / graphs.MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def _write(model: Model | Ensemble, metadata: ModelMetadata, files: list[Path], directory: Path) -> dict[str, Any]:
    """Export the graphs into directory (an ensemble's: member I's into members/I); the manifest listing them."""
    if not isinstance(model, Ensemble):
        return _manifest(metadata, _graphs_entry(model, files[0], directory, metadata))
    members = []
    for index, (member, file) in enumerate(zip(model.members, files, strict=True)):
        folder = f"{graphs.MEMBERS}/{index}"
        (directory / folder).mkdir(parents=True)
        members.append({"directory": folder, **_graphs_entry(member, file, directory / folder, metadata)})
    return _manifest(metadata, {"members": members})


def _graphs_entry(model: Model, file: Path, folder: Path, metadata: ModelMetadata) -> dict[str, Any]:
    """Export one model's graphs into folder; their source checkpoint, hashes and layout."""
    source = {"file": file.name, "sha256": file_sha256(file)}
    if not isinstance(model, Classifier):
        return {"checkpoint": source, **write_graphs(model, folder, *sample_batch(model, [5, 3]),
                                                      len(metadata.vocabs[-1]))}
    layout = _write_classifier(model, folder)
    return {"checkpoint": source, "graphs": _hashes(folder), "layout": layout}


def _hashes(folder: Path) -> dict[str, str]:
    """The SHA-256 of each graph in folder, by file name."""
    return {path.name: file_sha256(path) for path in sorted(folder.glob("*.onnx"))}


def _manifest(metadata: ModelMetadata, entries: dict[str, Any]) -> dict[str, Any]:
    """The manifest around the graphs' entries (one model's checkpoint, graphs and layout, or an ensemble's
    members)."""
    decoding = registry.get(metadata.task).decoding
    return {"format": graphs.ENSEMBLE_FORMAT if "members" in entries else graphs.FORMAT, "task": metadata.task,
            "opset": OPSET, "precision": "fp32", **entries,
            **({"decoding": dataclasses.asdict(decoding)} if decoding else {}), "metadata": graphs.METADATA,
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}}


def sample_batch(model: Model, lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random source ids (B, S), padded, of the given lengths; a copying model's include ids past the vocabulary; a
    speech model's: normal frames (B, S, F), zero-padded, FRAMES_PER_LENGTH times as long."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, SpeechSeq2Seq):
        frames = torch.tensor(lengths) * FRAMES_PER_LENGTH
        src = torch.randn(len(lengths), int(frames.max()), model.encoder.audio.n_mels, generator=generator)
        return src * (torch.arange(src.size(1)) < frames.unsqueeze(1)).unsqueeze(2), frames
    vocabulary = (model.src_vocab_size if isinstance(model, Seq2Seq) else model.encoder.embedding.num_embeddings
                  if isinstance(model, Classifier) else model.generator.out_features)
    high = vocabulary + (3 if model.config.copy else 0)
    src = torch.randint(EOS_ID + 1, high, (len(lengths), max(lengths)), generator=generator)
    src = src.masked_fill(torch.arange(max(lengths)) >= torch.tensor(lengths).unsqueeze(1), PAD_ID)
    return src, torch.tensor(lengths)


def _memory_axes(name: str) -> dict[int, str]:
    """The dynamic axes of a memory tensor (B, S, ...) or of a copying model's extension (E,)."""
    return {0: graphs.EXTENSION} if name == graphs.EXTENSION else {0: BATCH, 1: SOURCE}


def _write_classifier(model: Classifier, out: Path) -> dict[str, Any]:
    """Export the classifier's graph (dynamic batch and length) into out; its layout: classes, attention."""
    attention = model.pooling.kind == "attention"
    axes = {"src": {0: BATCH, 1: SOURCE}, "src_lengths": {0: BATCH}, graphs.LOGITS: {0: BATCH},
            graphs.WEIGHTS: {0: BATCH, 1: SOURCE}}
    outputs = [graphs.LOGITS, *([graphs.WEIGHTS] if attention else [])]
    _export(ScoresGraph(model).eval(), sample_batch(model, [5, 3]), out / graphs.CLASSIFIER, ["src", "src_lengths"],
            outputs, {name: axes[name] for name in ["src", "src_lengths", *outputs]})
    return {"classes": model.output.out_features, "attention": attention}


def write_graphs(model: Decoding, out: Path, src: Tensor, src_lengths: Tensor,
                 target_vocab_size: int) -> dict[str, Any]:
    """Export the encoder and step graphs of any model of the step interface whose memory is a `Memory` into out,
    traced on the batch src (B, S) of lengths (B,); their manifest entry: the graphs' hashes and their layout."""
    layout = _write_graphs(model, out, src, src_lengths)
    return {"graphs": _hashes(out), "layout": {**dataclasses.asdict(layout), "target_vocab_size": target_vocab_size,
                                               "carries_state": getattr(model, "carries_state", True),
                                               "ctc_weight": getattr(model, "ctc_weight", 0.0)}}


def _write_graphs(model: Decoding, out: Path, src: Tensor, src_lengths: Tensor) -> Layout:
    """Export the encoder and step graphs into out, their inputs, outputs and dynamic axes named by the state."""
    with torch.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.init_state(memory)
        layout = Layout.of(model, memory, state)
    encoder_axes = {**{name: _memory_axes(name) for name in layout.memory},
                    **{name: layout.axes(name) for name in layout.state}}
    encoder_outputs = {**encoder_axes, **({graphs.LOGITS: {0: BATCH}} if layout.prompt else {}),
                       **({graphs.CTC: {0: BATCH, 1: SOURCE}} if layout.ctc else {})}
    source_axes = {0: BATCH, 1: graphs.FRAMES if src.dim() == 3 else SOURCE}  # frames are subsampled to SOURCE
    _export(EncoderGraph(model, layout).eval(), (src, src_lengths), out / graphs.ENCODER, ["src", "src_lengths"],
            list(encoder_outputs), {"src": source_axes, "src_lengths": {0: BATCH}, **encoder_outputs})
    extension = [graphs.EXTENSION] if layout.copy else []
    step_inputs = [graphs.TOKENS, *layout.state, *layout.memory, *extension]
    step_outputs = [graphs.LOGITS, *(graphs.NEXT + name for name in layout.state)]
    tokens = torch.full((src.size(0),), EOS_ID + 1)
    inputs = (tokens, *layout.state_tensors(state), *(getattr(memory, name) for name in layout.memory))
    if layout.copy:
        inputs = (*inputs, torch.zeros(3))
    _export(StepGraph(model, layout).eval(), inputs, out / graphs.STEP, step_inputs, step_outputs,
            {graphs.TOKENS: {0: BATCH}, graphs.LOGITS: {0: BATCH, **({1: "width"} if layout.copy else {})},
             **encoder_axes, **{name: _memory_axes(name) for name in extension},
             **{graphs.NEXT + name: layout.axes(name) for name in layout.state}})
    return layout


def _export(module: nn.Module, inputs: tuple[Tensor, ...], path: Path, input_names: list[str],
            output_names: list[str], dynamic_axes: dict[str, dict[int, str]]) -> None:
    """torch.onnx's TorchScript exporter (it maps packed sequences onto ONNX's LSTM / GRU with sequence lengths).

    The module must be in eval mode: the exporter puts it back in the mode it found, and a new wrapper module starts
    in training mode, which would leave the wrapped model's dropout on for the check against PyTorch."""
    with torch.no_grad(), warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what the exporter's C++ side writes to file descriptor 2 (shape inference notes)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@torch.no_grad()
def check(model: Model | Ensemble, out: Path, manifest: dict[str, Any]) -> float:
    """The largest absolute difference between PyTorch and the exported graphs in out over the encoder's outputs
    and CHECK_STEPS decoder steps on a few random batches (an ensemble's: its log-probabilities, its members'
    memories and states; a classifier's: its logits and attention weights)."""
    first = model.members[0] if isinstance(model, Ensemble) else model
    batches = [sample_batch(first, lengths, seed) for seed, lengths in enumerate(CHECK_LENGTHS)]
    if isinstance(model, Classifier):
        graph = ClassifierGraph(out, manifest, threads=1)
        return max(_scores_difference(model, graph, *batch) for batch in batches)
    onnx_model = open_model(out, manifest, threads=1)
    return max(_difference(model, onnx_model, *batch) for batch in batches)


def _scores_difference(model: Classifier, graph: ClassifierGraph, src: Tensor, src_lengths: Tensor) -> float:
    """Largest absolute difference of a classifier's logits and attention weights."""
    logits, weights = model.scores(src, src_lengths)
    onnx_logits, onnx_weights = graph.scores(src.numpy(), src_lengths.numpy())
    if weights is None or onnx_weights is None:
        return _largest(logits, onnx_logits)
    return max(_largest(logits, onnx_logits), _largest(weights, onnx_weights))


def _difference(model: Decoding | Ensemble, onnx_model: OnnxModel | Ensemble, src: Tensor,
                src_lengths: Tensor) -> float:
    """Largest absolute difference of the memories, the states and the logits over CHECK_STEPS steps."""
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    onnx_memory = onnx_model.encode(src.numpy(), src_lengths.numpy())
    onnx_state = onnx_model.init_state(onnx_memory)
    layouts = [Layout.of(*parts) for parts in _members(model, memory, state)]
    memories = list(zip(layouts, _members(model, memory, onnx_memory), strict=True))
    differences = [_largest(getattr(mine, name), theirs.values[name])
                   for layout, (_, mine, theirs) in memories for name in layout.memory if name in theirs.values]
    differences += [_largest(member.ctc_log_probs(mine), theirs.values[graphs.CTC])
                    for layout, (member, mine, theirs) in memories if layout.ctc]
    tokens = torch.full((src.size(0),), EOS_ID + 1)
    for _ in range(CHECK_STEPS):
        logits, state = model.step(tokens, state, memory)
        onnx_logits, onnx_state = onnx_model.step(tokens.numpy(), onnx_state, onnx_memory)
        differences.append(_largest(logits, onnx_logits))
        differences += [_largest(mine, theirs[name])
                        for layout, (_, part, theirs) in zip(layouts, _members(model, state, onnx_state), strict=True)
                        for name, mine in zip(layout.state, layout.state_tensors(part), strict=True)]
        tokens = logits[:, EOS_ID + 1:].argmax(dim=1) + EOS_ID + 1  # keep stepping on ordinary tokens
    return max(differences)


def _members(model: Model | Ensemble, *values: Any) -> list[tuple[Any, ...]]:
    """(member, its part of each value) for every member of an ensemble, whose memories and states hold parts;
    (model, *values) for one model."""
    if isinstance(model, Ensemble):
        return list(zip(model.members, *(value.parts for value in values), strict=True))
    return [(model, *values)]


def _largest(mine: Tensor, theirs: np.ndarray) -> float:
    return float(np.abs(mine.float().numpy() - theirs.astype(np.float32)).max(initial=0.0))


def _quantize(out: Path, model: Model | Ensemble, manifest: dict[str, Any]) -> dict[str, Any]:
    """Replace the graphs (every member's) by ONNX Runtime's dynamic int8 quantization of their weights; returns the
    updated manifest, with the largest difference from PyTorch measured (not bounded: int8 changes the numbers)."""
    if "members" in manifest:
        quantized = {**manifest, "members": [{**member, "graphs": _quantize_graphs(out / member["directory"],
                                                                                   member["graphs"])}
                                             for member in manifest["members"]]}
    else:
        quantized = {**manifest, "graphs": _quantize_graphs(out, manifest["graphs"])}
    quantized["precision"] = "int8"
    quantized["check"] = {**manifest["check"], "int8_max_difference": check(model, out, quantized)}
    return quantized


def _quantize_graphs(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """Quantize the named graphs in folder in place; their new hashes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in names:
        quantized = folder / f"int8-{name}"
        with _quiet_stderr():
            quantize_dynamic(folder / name, quantized, weight_type=QuantType.QInt8)
        os.replace(quantized, folder / name)
    return _hashes(folder)
