"""What each model is trained to minimise: (model, batch) -> (summed loss over the real target tokens, their count).

The Trainer takes these as functions and knows no model class; each stays beside the models it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn
from torch.nn import functional

from seq2seq.config import TrainConfig
from seq2seq.data.labels import LABEL_OFFSET
from seq2seq.data.pairs import Batch
from seq2seq.data.vocab import PAD_ID
from seq2seq.models.classifier import Classifier
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.loss import coverage_loss
from seq2seq.models.seq2seq import Seq2Seq

LossFunction = Callable[[nn.Module, Batch], tuple[Tensor, int]]  # = seq2seq.training.objective.LossFunction


def sequence_loss(model: Seq2Seq, batch: Batch, label_smoothing: float = 0.0, teacher_forcing: float = 1.0,
                  coverage_weight: float = 0.0) -> tuple[Tensor, int]:
    """Summed cross-entropy of a Seq2Seq over the real (non-pad) target tokens, and their count.

    Only real positions go through the output projection, the largest matrix product of the model. A model with
    coverage adds coverage_weight times its coverage loss; a speech model with a CTC head mixes in its CTC loss
    (model.ctc_weight of the total).
    """
    mask = batch.tgt_out != PAD_ID
    targets = batch.tgt_out[mask]
    run = model.run(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing)
    if model.config.copy:
        assert run.attention is not None and run.memory.source is not None
        source = run.memory.source.unsqueeze(1).expand(-1, mask.size(1), -1)[mask]  # (N, S)
        loss = -model.copy_target_log_probs(run.features[mask], run.attention[mask], source, targets).sum()
    else:
        loss = model.output_loss(run.features[mask], targets, label_smoothing)
    if coverage_weight and model.config.coverage:
        assert run.attention is not None
        loss = loss + coverage_weight * coverage_loss(run.attention, mask)
    if getattr(model, "ctc", None) is not None:  # a speech model's CTC head: the transcript without </s>
        ctc = model.ctc_loss(run.memory, batch.tgt_out, mask.sum(dim=1) - 1)  # type: ignore[attr-defined]
        loss = (1.0 - model.ctc_weight) * loss + model.ctc_weight * ctc  # type: ignore[attr-defined]
    return loss, len(targets)


def language_model_loss(model: LanguageModel, batch: Batch, label_smoothing: float = 0.0) -> tuple[Tensor, int]:
    """Summed cross-entropy of a LanguageModel predicting batch.tgt_out from batch.tgt_in, and the token count."""
    mask = batch.tgt_out != PAD_ID
    targets = batch.tgt_out[mask]
    return model.output_loss(model(batch.tgt_in)[mask], targets, label_smoothing), len(targets)


def classification_loss(model: Classifier, batch: Batch, label_smoothing: float = 0.0,
                        class_weights: Tensor | None = None) -> tuple[Tensor, int]:
    """Summed cross-entropy of a Classifier over the batch's texts (weighted per class when class_weights (C,) are
    given), and how many texts there are. A text's label id is batch.tgt_out[:, 0] (`labels.encode_label`)."""
    targets = batch.tgt_out[:, 0] - LABEL_OFFSET  # (B,)
    weights = class_weights.to(batch.src.device) if class_weights is not None else None
    loss = functional.cross_entropy(model(batch.src, batch.src_lengths).float(), targets, weights,
                                    reduction="sum", label_smoothing=label_smoothing)
    return loss, len(targets)


def sequence_losses(train: TrainConfig) -> tuple[LossFunction, LossFunction]:
    """A Seq2Seq's loss for training steps (with train.* regularisers: label smoothing, scheduled sampling,
    coverage) and for dev evaluation (plain)."""
    return (partial(sequence_loss, label_smoothing=train.label_smoothing,  # type: ignore[return-value]
                    teacher_forcing=train.teacher_forcing, coverage_weight=train.coverage_weight), sequence_loss)


def language_model_losses(train: TrainConfig) -> tuple[LossFunction, LossFunction]:
    """A LanguageModel's loss for training steps (label smoothing) and for dev evaluation (plain)."""
    return partial(language_model_loss, label_smoothing=train.label_smoothing), language_model_loss  # type: ignore[return-value]


def classification_losses(train: TrainConfig, class_weights: Tensor | None = None
                          ) -> tuple[LossFunction, LossFunction]:
    """A Classifier's loss for training steps (label smoothing, class_weights (C,) when given) and for dev
    evaluation (plain)."""
    return (partial(classification_loss, label_smoothing=train.label_smoothing,  # type: ignore[return-value]
                    class_weights=class_weights), classification_loss)  # type: ignore[return-value]
