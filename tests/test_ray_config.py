"""ray_config.yaml passes Ray's own cluster-launcher schema check, offline."""

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return yaml.safe_load((ROOT / "ray_config.yaml").read_text())


def test_cluster_config_is_valid_for_ray():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(copy.deepcopy(_load()))
    validate_config(cfg)
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}  # the head runs no trials
    assert any(t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot" for t in types.values())
    assert "/home/ubuntu/gtn-nas" in cfg["file_mounts"]
    setup = " ".join(cfg["setup_commands"])
    import ray

    assert f"ray[tune,default]=={ray.__version__}" in setup and "pip install -q -e /home/ubuntu/gtn-nas" in setup
    assert "--dashboard-host=127.0.0.1" in " ".join(cfg["head_start_ray_commands"])


def test_schema_check_catches_mistakes():
    import jsonschema
    import pytest
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = _load()
    bad["available_node_types"]["head"]["bogus_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))
