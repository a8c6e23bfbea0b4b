"""Tests for seq2seq.config: YAML files, key=value overrides, type/choice/range errors and validate()."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.config import (
    Config,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
    validate,
)
from seq2seq.errors import ConfigError
from seq2seq.tasks import registry


def override_error(*items: str) -> str:
    """The one-line ConfigError message apply_overrides raises."""
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), list(items))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_defaults_are_valid() -> None:
    """The default Config passes validate()."""
    validate(Config())


def test_load_yaml(tmp_path: Path) -> None:
    """Nested YAML sections set nested fields; the rest keep their defaults."""
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  src: {kind: word, lowercase: true}\n  batch_size: 8\nmodel:\n  rnn: gru\n"
                    "train:\n  lr: 0.01\n", encoding="utf-8")
    config = load_config(path)
    assert config.data.src.kind == "word" and config.data.src.lowercase
    assert config.data.tgt.kind == "char"
    assert config.data.batch_size == 8 and config.model.rnn == "gru" and config.train.lr == 0.01
    assert config.model.hidden_size == Config().model.hidden_size


def test_save_load_round_trip(tmp_path: Path) -> None:
    """save_config then load_config gives back an equal Config."""
    config = apply_overrides(Config(), ["model.arch=repeat", "train.lr=0.003", "data.tgt.language=fr"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert config_from_dict(config.to_dict()) == config


def test_empty_yaml_is_defaults(tmp_path: Path) -> None:
    """An empty file means all defaults."""
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert load_config(tmp_path / "empty.yaml") == Config()


def test_overrides() -> None:
    """key=value strings are parsed as YAML scalars into the right types."""
    config = apply_overrides(Config(), ["train.lr=0.0005", "model.bidirectional=false", "data.batch_size=3",
                                        "data.src.kind=word", "model.rnn=gru"])
    assert config.train.lr == 0.0005
    assert config.model.bidirectional is False
    assert config.data.batch_size == 3 and config.data.src.kind == "word" and config.model.rnn == "gru"


def test_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    """5e-4 (which YAML 1.1 reads as a string) is accepted for float fields, in overrides and files."""
    assert apply_overrides(Config(), ["train.lr=5e-4"]).train.lr == 0.0005
    (tmp_path / "c.yaml").write_text("train:\n  lr: 1e-3\n", encoding="utf-8")
    assert load_config(tmp_path / "c.yaml").train.lr == 0.001


def test_int_accepted_for_float() -> None:
    """An int for a float field becomes a float."""
    config = apply_overrides(Config(), ["train.max_time=60", "train.lr=1"])
    assert config.train.max_time == 60.0 and isinstance(config.train.max_time, float)
    assert isinstance(config.train.lr, float)


def test_unknown_key_in_override() -> None:
    """Unknown keys at any depth are named."""
    assert "'model.hiden_size'" in override_error("model.hiden_size=3")
    assert "'modle.hidden_size'" in override_error("modle.hidden_size=3")
    assert "'data.src.kind.x'" in override_error("data.src.kind.x=3")
    assert "'model'" in override_error("model=3")


def test_unknown_key_in_yaml(tmp_path: Path) -> None:
    """An unknown key in a file names the file and the dotted key."""
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.1\n  learning_rate: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "'train.learning_rate'" in str(info.value)


def test_override_without_equals() -> None:
    """An override must be key=value."""
    assert "key=value" in override_error("train.lr")


def test_unparsable_override_value() -> None:
    """A value YAML cannot parse is a ConfigError, not a traceback."""
    assert "train.lr={" in override_error("train.lr={")


def test_wrong_type() -> None:
    """Type errors name the key, the expected type and the value."""
    message = override_error("data.batch_size=many")
    assert "data.batch_size" in message and "int" in message and "'many'" in message
    assert "must be int" in override_error("data.batch_size=2.5")
    assert "must be int" in override_error("data.batch_size=true")
    assert "must be bool" in override_error("model.bidirectional=3")
    assert "must be float" in override_error("train.lr=fast")


def test_bad_choice() -> None:
    """A value outside the choices lists them."""
    message = override_error("model.rnn=foo")
    assert "model.rnn" in message and "lstm, gru" in message and "'foo'" in message
    assert "data.tgt.kind" in override_error("data.tgt.kind=bpe")


def test_negative_value() -> None:
    """Negative numbers are rejected."""
    assert "must not be negative" in override_error("train.lr=-0.1")
    assert "train.epochs" in override_error("train.epochs=-1")


def test_bad_yaml_file(tmp_path: Path) -> None:
    """Unparsable YAML, a non-mapping and a missing file are one-line ConfigErrors naming the file."""
    cases = {"broken.yaml": "train: [\n", "list.yaml": "- 1\n- 2\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    for name in [*cases, "missing.yaml"]:
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model.dropout=1.0"], "model.dropout"),
    (["train.teacher_forcing=1.5"], "train.teacher_forcing"),
    (["model.hidden_size=15"], "even"),
    (["model.hidden_size=0", "model.bidirectional=false"], "model.hidden_size"),
    (["model.embedding_size=0"], "model.embedding_size"),
    (["model.num_layers=0"], "model.num_layers"),
    (["data.batch_size=0"], "data.batch_size"),
    (["train.checkpoint_every=0"], "train.checkpoint_every"),
    (["train.lr_decay=1"], "train.lr_decay"),
    (["train.lr=0"], "train.lr must be positive"),
    (["train.clip_norm=0"], "train.clip_norm must be positive"),
])
def test_validate_cross_field(overrides: list[str], expected: str) -> None:
    """validate() and the task's checks reject combinations the single-value checks let through."""
    config = apply_overrides(Config(), overrides)
    with pytest.raises(ConfigError, match=expected):
        registry.validate(config)


def test_validate_odd_hidden_unidirectional_ok() -> None:
    """An odd hidden size is fine when the encoder is unidirectional."""
    registry.validate(apply_overrides(Config(), ["model.hidden_size=15", "model.bidirectional=false"]))
