"""Strict configs, dotted overrides, config files, and registries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from seqlab.config import apply_overrides, from_dict, load_file, parse_override, to_dict
from seqlab.errors import ConfigError, UnknownNameError
from seqlab.mixers import LSTMConfig
from seqlab.models import MODELS, ModelConfig
from seqlab.registry import Registry
from seqlab.tasks import TASKS
from seqlab.training import ExperimentConfig


@dataclass
class Inner:
    width: int = 4
    rate: float = 0.5


@dataclass
class Outer:
    name: str = "x"
    kind: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    inner: Inner = field(default_factory=Inner)
    maybe: float | None = None


def test_unknown_key_names_it_and_the_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'inner.widht'; allowed keys: width, rate"):
        from_dict(Outer, {"inner": {"widht": 3}})


@pytest.mark.parametrize(
    "data,message",
    [
        ({"inner": {"width": "3"}}, "inner.width: expected int, got str '3'"),
        ({"inner": {"width": True}}, "inner.width: expected int, got bool True"),
        ({"sizes": [1, "two"]}, r"sizes\[1\]: expected int, got str 'two'"),
        ({"kind": "c"}, "kind: expected one of 'a', 'b', got str 'c'"),
        ({"inner": 3}, "inner: expected a mapping for Inner"),
        ({"name": 5}, "name: expected str, got int 5"),
    ],
)
def test_wrong_type_names_the_expected_type(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_int_is_accepted_for_float_and_optional():
    c = from_dict(Outer, {"inner": {"rate": 1}, "maybe": 2})
    assert c.inner.rate == 1.0 and isinstance(c.inner.rate, float) and c.maybe == 2.0


def test_round_trip():
    c = Outer(name="y", kind="b", sizes=[3], inner=Inner(7, 0.1), maybe=0.2)
    assert from_dict(Outer, to_dict(c)) == c


def test_value_checks_name_the_full_path():
    with pytest.raises(ConfigError, match="model.d_model: expected a positive number, got -3"):
        ExperimentConfig.from_dict({"task": {"name": "parity"}, "model": {"d_model": -3}})
    with pytest.raises(ConfigError, match="recurrent_dropout"):
        LSTMConfig(recurrent_dropout=1.5)


def test_experiment_config_round_trip_with_task_and_mixer_sections():
    data = {
        "task": {"name": "copy", "max_len": 5},
        "model": {"d_model": 16, "layer_types": ["lstm", "gru"], "mixers": {"lstm": {"layer_norm": True}}},
        "train": {"steps": 3},
    }
    cfg = ExperimentConfig.from_dict(data)
    assert cfg.task.options.max_len == 5
    assert isinstance(cfg.model.mixers["lstm"], LSTMConfig) and cfg.model.mixers["lstm"].layer_norm
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg


def test_experiment_config_errors():
    with pytest.raises(ConfigError, match="unknown key 'task.max_lenn'"):
        ExperimentConfig.from_dict({"task": {"name": "copy", "max_lenn": 5}})
    with pytest.raises(
        UnknownNameError,
        match=r"unknown task 'cpy'; choose from: adding, .*charlm, .*copy, .*parity, reverse, .*sort",
    ):
        ExperimentConfig.from_dict({"task": {"name": "cpy"}})
    with pytest.raises(ConfigError, match="unknown key 'model.mixers.lstm.layernorm'"):
        ExperimentConfig.from_dict(
            {"task": {"name": "copy"}, "model": {"mixers": {"lstm": {"layernorm": 1}}}}
        )
    with pytest.raises(UnknownNameError, match="unknown mixer 'lstn'"):
        ModelConfig(layer_types=["lstn"])


def test_overrides_parse_yaml_values_and_nest():
    assert parse_override("model.d_model=128") == (["model", "d_model"], 128)
    assert parse_override("model.layer_types=[lstm, gru]") == (["model", "layer_types"], ["lstm", "gru"])
    assert parse_override("train.lr=3e-4")[1] == 3e-4
    data = apply_overrides(
        {"model": {"d_model": 8}}, ["model.d_model=16", "model.mixers.lstm.layer_norm=true"]
    )
    assert data == {"model": {"d_model": 16, "mixers": {"lstm": {"layer_norm": True}}}}
    with pytest.raises(ConfigError, match="must look like key.subkey=value"):
        parse_override("model.d_model")
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"model": {"d_model": 8}}, ["model.d_model.x=1"])


def test_config_file_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task:\n  name: parity\n  min_len: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_file(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n "task": {\n}\n,}')
    with pytest.raises(ConfigError, match=r"bad.json:4: invalid JSON"):
        load_file(bad_json)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_file(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_file(scalar)


def test_registry():
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.names() == ["a", "b"] and reg.get("a") == 1 and "b" in reg and len(reg) == 2
    with pytest.raises(UnknownNameError) as err:
        reg.get("c")
    assert str(err.value) == "unknown thing 'c'; choose from: a, b"
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(3)


def test_registries_are_populated():
    assert {"rnn", "lstm", "gru"} <= set(MODELS.names())
    assert {"parity", "copy", "adding", "charlm"} <= set(TASKS.names())
