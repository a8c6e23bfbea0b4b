"""Data preparation shared by the tasks, the losses the Trainer is given, and the device helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seq2seq.config import Config, apply_overrides
from seq2seq.data.pairs import Pair, collate
from seq2seq.data.preparation import length_statistics, prepare_pairs, prepare_text
from seq2seq.data.vocab import PAD_ID
from seq2seq.errors import DataError
from seq2seq.models.encoder import Encoder
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.objectives import language_model_loss, sequence_loss, sequence_losses
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.utils.device import autocast_dtype, resolve_device

PAIRS = [Pair("a b c", "x y"), Pair("a a", "y y y"), Pair("c b a b c a b c", "x"), Pair("b", "z x y")]


def word_config(*overrides: str) -> Config:
    return apply_overrides(Config(), ["data.src.kind=word", "data.tgt.kind=word", "model.hidden_size=16",
                                      "model.embedding_size=8", *overrides])


def test_pairs_over_the_length_limits_are_dropped_and_the_statistics_count_the_rest() -> None:
    prepared = prepare_pairs(word_config("data.max_src_length=4"), PAIRS, [Pair("a", "x")])
    assert len(prepared.examples) == 3 and len(prepared.dev_examples) == 1
    assert prepared.metadata.target_lengths == {"mean": pytest.approx(8 / 3), "p99": 3, "max": 3}
    assert length_statistics(prepared.examples) == prepared.metadata.target_lengths
    with pytest.raises(DataError, match="no training pairs left after length filtering"):
        prepare_pairs(word_config("data.max_src_length=1", "data.max_tgt_length=1"), PAIRS, [])


def test_copy_models_share_one_vocabulary_and_others_do_not() -> None:
    separate = prepare_pairs(word_config(), PAIRS, []).metadata.vocabs
    shared = prepare_pairs(word_config("model.copy=true", "model.arch=attention"), PAIRS, []).metadata.vocabs
    assert shared[0] is shared[1] and {"a", "x"} <= set(shared[0].itos)
    assert "x" not in separate[0].itos and "a" not in separate[1].itos


def test_a_resumed_run_keeps_its_tokenizers_and_vocabularies() -> None:
    saved = prepare_pairs(word_config(), PAIRS, []).metadata
    resumed = prepare_pairs(word_config(), [Pair("new words", "never seen")], [], saved)
    assert resumed.metadata.vocabs == saved.vocabs and resumed.metadata.tokenizers == saved.tokenizers
    assert resumed.examples[0].src == [saved.vocabs[0].stoi["<unk>"]] * 2


def test_text_becomes_windows_with_held_out_ones() -> None:
    config = apply_overrides(Config(), ["task=lm", "data.window=4", "data.dev_size=1"])
    prepared = prepare_text(config, ["abcdef", "ghij"], [])
    assert prepared.metadata.task == "lm" and len(prepared.metadata.tokenizers) == 1
    assert len(prepared.examples) + len(prepared.dev_examples) == math.ceil((8 + 4 + 2 - 1) / 4)
    assert len(prepared.dev_examples) == 1
    with pytest.raises(DataError, match="no training text"):
        prepare_text(config, [], [])


@torch.no_grad()
def test_sequence_loss_is_the_summed_cross_entropy_of_the_projected_features() -> None:
    torch.manual_seed(0)
    config = word_config()
    prepared = prepare_pairs(config, PAIRS, [])
    model = Seq2Seq(config.model, len(prepared.metadata.vocabs[0]), len(prepared.metadata.vocabs[1])).eval()
    batch = collate(prepared.examples)
    loss, count = sequence_loss(model, batch)
    logits = model.project(model(batch.src, batch.src_lengths, batch.tgt_in))  # (B, T, V)
    expected = nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                                           reduction="sum")
    assert count == int((batch.tgt_out != PAD_ID).sum())
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    smoothed, _ = sequence_losses(apply_overrides(config, ["train.label_smoothing=0.1"]).train)[0](
        model, batch)
    assert float(smoothed) > float(loss)


@torch.no_grad()
def test_language_model_loss_reads_the_input_and_scores_the_shifted_text() -> None:
    torch.manual_seed(0)
    config = apply_overrides(Config(), ["task=lm", "data.window=5", "model.hidden_size=16"])
    prepared = prepare_text(config, ["abcabc", "bca"], [])
    model = LanguageModel(config.model, len(prepared.metadata.vocabs[0])).eval()
    batch = collate(prepared.examples)
    loss, count = language_model_loss(model, batch)
    logits = model.generator(model(batch.tgt_in))
    expected = nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                                           reduction="sum")
    assert float(loss) == pytest.approx(float(expected), rel=1e-5) and count > 0


def test_device_and_precision_choices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16 and autocast_dtype("fp16", cpu) is torch.float16
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert autocast_dtype("auto", cpu) is (torch.bfloat16 if native else None)


@pytest.mark.parametrize(("rnn", "bidirectional"), [("lstm", True), ("lstm", False), ("gru", True)])
def test_the_encoder_reads_under_cpu_bf16_autocast_without_gradients(rnn: str, bidirectional: bool) -> None:
    """oneDNN's bf16 RNN fails on CPUs without native bf16 in inference: the encoder's RNN then leaves autocast,
    and its outputs equal the fp32 ones."""
    torch.manual_seed(0)
    encoder = Encoder(12, 6, 8, 2, rnn, bidirectional, 0.0).eval()
    src, lengths = torch.randint(4, 12, (3, 5)), torch.tensor([5, 3, 1])
    with torch.no_grad():
        fp32, _ = encoder(src, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed, _ = encoder(src, lengths)
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        torch.testing.assert_close(mixed, fp32)
    else:
        torch.testing.assert_close(mixed.float(), fp32, atol=0.05, rtol=0.05)


def test_the_frame_encoder_reads_bf16_frames_under_cpu_autocast() -> None:
    """Speech frames come out of a Linear in bf16 under autocast; the encoder reads them as the fp32 encoder would."""
    torch.manual_seed(0)
    encoder = Encoder(0, 6, 8, 1, "lstm", True, 0.0).eval()
    frames, lengths = torch.randn(3, 5, 6).bfloat16(), torch.tensor([5, 3, 1])
    with torch.no_grad():
        fp32, _ = encoder(frames.float(), lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed, _ = encoder(frames, lengths)
    torch.testing.assert_close(mixed.float(), fp32, atol=0.05, rtol=0.05)
