"""The Python API over a saved model: decoding options as an object or as keywords, batching, precision."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.cli import commands, flags
from seq2seq.cli.experiments import temperature_sweep
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import ConfigError

MODEL = Path(__file__).parent / "fixtures" / "v1" / "attention.safetensors"
TEXTS = ["a b c", "j i h g f", "d", "e e e e e e e", "b a", "c h i"]


@pytest.fixture(scope="module")
def translator() -> api.Translator:
    loaded = api.load(MODEL, device="cpu")
    assert isinstance(loaded, api.Translator)
    return loaded


def test_keywords_build_the_same_options_as_the_object(translator: api.Translator) -> None:
    options = DecodingOptions("beam", beam_size=4, n_best=2, length_penalty=0.5)
    assert translator.translate(TEXTS, strategy="beam", beam_size=4, n_best=2, length_penalty=0.5) == \
        translator.translate(TEXTS, options)
    assert all(len(found) == 2 for found in translator.translate(TEXTS, options))
    one_each = translator.translate(TEXTS, options, n_best=1)  # a keyword overrides the object's value
    assert one_each == [found[0] for found in translator.translate(TEXTS, options)]


def test_unknown_or_misplaced_knobs_are_config_errors(translator: api.Translator) -> None:
    with pytest.raises(ConfigError, match="unknown decoding option 'beamsize'"):
        translator.translate(TEXTS, beamsize=3)
    with pytest.raises(ConfigError, match="beam_size applies only to strategy 'beam'"):
        translator.translate(TEXTS, beam_size=3)
    with pytest.raises(TypeError, match="list of strings"):
        translator.translate("a b c")


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batched_equals_one_by_one_in_fp32(translator: api.Translator, strategy: str) -> None:
    options = DecodingOptions(strategy)
    batched = translator.translate_detailed(TEXTS, options, batch_size=64)
    for text, found in zip(TEXTS, batched, strict=True):
        alone = translator.translate_detailed([text], options, batch_size=1)[0]
        assert [t.text for t in alone] == [t.text for t in found]
        assert [t.log_prob for t in alone] == pytest.approx([t.log_prob for t in found], rel=1e-5)


def test_inference_precision_is_its_own_setting() -> None:
    """The model was trained in fp32; decoding under bf16 autocast changes the scores, fp32 does not."""
    fp32, bf16 = (api.load_translator(MODEL, device="cpu", precision=p) for p in ("fp32", "bf16"))
    trained = api.load_translator(MODEL, device="cpu")
    scores = [[t[0].log_prob for t in model.translate_detailed(TEXTS)] for model in (trained, fp32, bf16)]
    assert scores[0] == scores[1]
    assert scores[2] != scores[0]


def test_every_decoding_option_has_a_cli_flag_with_the_same_effect() -> None:
    """The flags are made from DecodingOptions' fields: each one given on the command line lands in the options."""
    parser = commands.build_parser()
    values = {"strategy": "sample", "max_length": 9, "min_length": 2, "no_repeat_ngram_size": 3, "ban_unk": True,
              "temperature": 0.7, "top_k": 5, "top_p": 0.9, "num_samples": 2, "seed": 4}
    given = [f"--{name.replace('_', '-')}" if value is True else f"--{name.replace('_', '-')}={value}"
             for name, value in values.items()]
    args = parser.parse_args(["translate", "--model", "m", *given])
    assert flags.decoding_options(args) == DecodingOptions(**values)  # type: ignore[arg-type]
    beam = flags.decoding_options(parser.parse_args(["translate", "--model", "m", "--strategy", "beam",
                                                   "--beam-size", "3", "--length-penalty", "0", "--n-best", "2",
                                                   "--ctc-weight", "0.4"]))
    assert beam == DecodingOptions("beam", beam_size=3, length_penalty=0.0, n_best=2, ctc_weight=0.4)
    untouched = {f.name for f in dataclasses.fields(DecodingOptions)} - set(values) - {"beam_size", "length_penalty",
                                                                                       "n_best", "ctc_weight"}
    assert not untouched, f"fields without a flag test: {untouched}"


def test_generate_defaults_to_sampling_and_takes_the_same_flag_names() -> None:
    parser = commands.build_parser()
    args = parser.parse_args(["generate", "--model", "m", "--num-samples", "3", "--temperature", "0.5"])
    [(header, options)] = temperature_sweep(args.decoding_defaults, flags.decoding_knobs(args))
    assert (options.strategy, options.num_samples, options.temperature, options.max_length) == ("sample", 3, 0.5, 200)
    assert header == ""  # one temperature: no sweep headers
    assert flags.decoding_knobs(parser.parse_args(["generate", "--model", "m", "--num", "2"])) == {"num_samples": 2}
    assert isinstance(args, argparse.Namespace)


def test_outputs_stop_at_twice_the_longest_training_target_unless_max_length_says_otherwise() -> None:
    """A model that never ends (here: </s> banned by min_length) stops at the cap instead of 1.5 x source + 20."""
    translator = api.load_translator(MODEL, device="cpu")
    translator.target_lengths = {"mean": 2.0, "p99": 3.0, "max": 3.0}
    capped = translator.translate_detailed(["a b c"], DecodingOptions(min_length=50))[0][0]
    assert len(capped.tokens) == 2 * 3 + 1
    asked = translator.translate_detailed(["a b c"], DecodingOptions(min_length=29, max_length=30))[0][0]
    assert len(asked.tokens) == 30
