"""ray_config.yaml passes Ray's own cluster-launcher schema, offline, through public names only:
``ray.autoscaler.sdk.fillout_defaults`` and the ``ray-schema.json`` Ray ships (what Ray's private
``validate_config`` checks, plus its three extra rules restated here)."""

import copy
import importlib.resources
import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler.sdk import fillout_defaults

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return yaml.safe_load((ROOT / "ray_config.yaml").read_text())


def _validate(cfg: dict) -> dict:
    full = fillout_defaults(copy.deepcopy(cfg))
    jsonschema.validate(full, json.loads((importlib.resources.files("ray.autoscaler") / "ray-schema.json").read_text()))
    types = full["available_node_types"]
    assert "cluster_synced_files" in full and full["head_node_type"] in types
    assert sum(t.get("min_workers", 0) for t in types.values()) <= full["max_workers"]
    return full


def test_cluster_config_is_valid_for_ray():
    cfg = _validate(_load())
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}  # the head runs no trials
    assert any(t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot" for t in types.values())
    assert "/home/ubuntu/gtn-nas" in cfg["file_mounts"]
    setup = " ".join(cfg["setup_commands"])

    assert f"ray[tune,default]=={ray.__version__}" in setup and "pip install -q -e /home/ubuntu/gtn-nas" in setup
    assert "--dashboard-host=127.0.0.1" in " ".join(cfg["head_start_ray_commands"])


def test_every_node_runs_with_token_authentication_and_the_token_is_never_in_the_file():
    cfg = _validate(_load())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cfg[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token ray start" in c for c in starts), key
    assert cfg["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"  # copied from the user's machine
    setup = cfg["setup_commands"]
    assert "chmod 600 ~/.ray/auth_token" in setup[0] and "export RAY_AUTH_MODE=token" in setup[1]
    text = (ROOT / "ray_config.yaml").read_text()
    assert not re.search(r"\b[0-9a-f]{32,}\b", text) and "RAY_AUTH_TOKEN=" not in text  # no token written here


def test_schema_check_catches_mistakes():
    bad = _load()
    bad["available_node_types"]["head"]["bogus_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)
