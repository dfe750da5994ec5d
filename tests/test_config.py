from pathlib import Path

import pytest

from search.config import ConfigError, ExperimentConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.hash() == load_config(path).hash()


def test_overrides_are_typed_and_nested(tmp_path):
    cfg = load_config(None, ["train.lr=0.3", "net.channels=4", "data.train_subset=100", "name=x"])
    assert cfg.train.lr == 0.3 and cfg.net.channels == 4 and cfg.data.train_subset == 100 and cfg.name == "x"
    assert cfg.hash() != load_config(None).hash()
    # ints are accepted where floats are expected, never the other way round
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        ("train:\n  lr: -1\n", "train.lr: must be > 0"),
        ("train:\n  lrr: 0.1\n", "train.lrr: unknown key"),
        ("net:\n  channels: four\n", "net.channels: expected int"),
        ("data:\n  dataset: imagenet\n", "data.dataset: 'imagenet' is not one of"),
        ("bogus: 1\n", "bogus: unknown key"),
        ("train: 3\n", "train: expected a mapping"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("train: [\n", "not valid YAML"),
    ],
)
def test_bad_configs_name_file_and_key(tmp_path, text, needle):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_bad_override_names_key():
    with pytest.raises(ConfigError, match=r"gtn\.inner_steps: must be >= 1"):
        load_config(None, ["gtn.inner_steps=0"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.lr"])


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_exponent_floats_are_floats(tmp_path):
    p = _write(tmp_path, "gtn:\n  meta_lr: 1e-3\n")
    assert load_config(p).gtn.meta_lr == 0.001
    assert load_config(None, ["train.lr=2e-2"]).train.lr == 0.02
    with pytest.raises(ConfigError, match="expected float"):
        load_config(None, ["train.lr=fast"])
