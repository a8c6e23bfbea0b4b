"""The recipes in configs/: each loads and validates, and the small ones train a few steps as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.config import Config, apply_overrides, config_from_dict, load_config, validate
from seq2seq.data.pairs import Pair
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import ConfigError
from seq2seq.tasks.lm import TextGenerator, train_language_model
from seq2seq.training.checkpoint import load_checkpoint
from tests.conftest import toy_pairs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(path.name for path in CONFIGS.glob("*.yaml"))
SHORT_RUN = ["train.max_steps=3", "train.threads=1"]  # the recipe's model and data settings stay as they are
CHAT = [("Hello there!", "Hi, how are you?"), ("What is your name?", "I am a bot."),
        ("How are you?", "I am fine, thanks."), ("Do you like music?", "Yes, I like jazz."),
        ("Good bye.", "See you later!")]
TEXT = ["The cat sat on the mat.", "A dog sat on the log.", "Cats and dogs, mats and logs!"]


def needs_budget(config: Config) -> bool:
    """A linear schedule decays to zero over train.max_steps or train.max_time; without either it cannot run."""
    return config.train.lr_schedule == "linear" and not (config.train.max_steps or config.train.max_time)


def train_commands(name: str) -> list[str]:
    """The `seq2seq train` command lines in the recipe's opening comment (continued lines joined)."""
    header = re.match(r"(?:#.*\n)*", (CONFIGS / name).read_text(encoding="utf-8")).group(0)  # type: ignore[union-attr]
    text = re.sub(r"\\\n#\s*", " ", header)
    return [line for line in text.splitlines() if "seq2seq train" in line]


def test_the_recipes_are_all_there() -> None:
    assert {"copy.yaml", "g2p.yaml", "charlm.yaml", "chat.yaml", "summarize.yaml"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_and_validates(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert config != Config()  # the file set something
    assert config_from_dict(config.to_dict()) == config
    if needs_budget(config):  # the budget comes from the command line (--max-time)
        with pytest.raises(ConfigError, match=r"^train\.lr_schedule=linear needs a budget to decay over: "):
            validate(config)
        config = apply_overrides(config, ["train.max_time=600"])
    validate(config)


BUDGETED = [name for name in RECIPES if needs_budget(load_config(CONFIGS / name))]


@pytest.mark.parametrize("name", BUDGETED)
def test_recipe_needing_a_budget_documents_one(name: str) -> None:
    """The train command a recipe's comment suggests must give the budget its linear schedule needs."""
    commands = train_commands(name)
    assert commands
    for command in commands:
        assert re.search(r"--max-time \d|train\.max_(time|steps)=\d", command), command


def g2p_pairs() -> list[Pair]:
    """Letters in (characters), 'phonemes' out: the letters upper-cased and space-separated."""
    return [Pair(p.src.replace(" ", ""), p.tgt.upper()) for p in toy_pairs("copy", 60, seed=0)]


def chat_pairs() -> list[Pair]:
    return [Pair(message, reply) for message, reply in CHAT * 6]


SEQ2SEQ_RECIPES = [("copy.yaml", lambda: toy_pairs("copy", 60, seed=0), "a b c d"),
                   ("g2p.yaml", g2p_pairs, "abcd"),
                   ("chat.yaml", chat_pairs, "Hello, how are you?"),
                   ("summarize.yaml", lambda: toy_pairs("copy", 60, seed=0), "a b c d e f"),
                   ("eng-fra-peers.yaml", lambda: toy_pairs("reverse", 60, seed=0), "a b c d")]


def assert_trained_as_written(run: Path, recipe: Config) -> Config:
    """The run kept the recipe's settings (but the shortened training) and stopped after its 3 steps."""
    _, values = load_checkpoint(run / "last.safetensors")
    assert values["training"]["state"]["step"] == 3
    saved = config_from_dict(values["config"])
    assert saved.model == recipe.model and saved.data == recipe.data
    return saved


@pytest.mark.parametrize(("name", "make_pairs", "text"), SEQ2SEQ_RECIPES, ids=[r[0] for r in SEQ2SEQ_RECIPES])
def test_seq2seq_recipe_trains_and_its_run_translates(name: str, make_pairs: object, text: str,
                                                      tmp_path: Path) -> None:
    recipe = load_config(CONFIGS / name)
    pairs = make_pairs()  # type: ignore[operator]
    api.train(apply_overrides(load_config(CONFIGS / name), SHORT_RUN), pairs, pairs[:10], tmp_path)
    assert_trained_as_written(tmp_path, recipe)
    translator = api.load(tmp_path)
    assert isinstance(translator, api.Translator)
    assert translator.config.model == recipe.model
    [[found]] = translator.translate_detailed([text], DecodingOptions(min_length=2, max_length=5))
    words = [token for token in found.tokens if token != "</s>"]
    assert 2 <= len(words) <= 5 and found.text.strip()
    assert found.log_prob < 0.0


def test_charlm_recipe_trains_and_its_run_generates(tmp_path: Path) -> None:
    recipe = load_config(CONFIGS / "charlm.yaml")
    train_language_model(apply_overrides(load_config(CONFIGS / "charlm.yaml"), SHORT_RUN), TEXT * 20, TEXT[:1],
                         tmp_path)
    assert_trained_as_written(tmp_path, recipe)
    generator = api.load(tmp_path)
    assert isinstance(generator, TextGenerator)
    assert generator.config.model == recipe.model and generator.config.task == "lm"
    [text] = generator.generate("The c", max_length=20, seed=0)
    assert text.startswith("The c") and len(text) >= len("The c") + 20  # 20 characters (or <unk>s) after it
    assert generator.generate("The c", max_length=20, seed=0) == [text]
