"""The scope records `twslake scope --set` writes follow lake-layout/scope.schema.json."""
import json
import os
import subprocess

import jsonschema

from conftest import REPO, twslake_bin


def test_scope_records_follow_the_schema(tmp_path):
    lake = tmp_path / "lake"
    env = {**os.environ, "TWSLAKE_ACTOR": "schema@test"}
    changes = [
        ["--set", "from=2026-11-17", "--set", "equity=1 day/TRADES/1260,5 mins/MIDPOINT/3"],
        ["--set", "strike_band=0.05", "--set", "chain_max_age_minutes=30"],
        ["--unset", "from"],
    ]
    for args in changes:
        subprocess.run(
            [str(twslake_bin()), "scope", "SPY", "--lake", str(lake), "--config", "none.toml", *args],
            check=True, env=env, capture_output=True,
        )
    schema = json.loads((REPO / "lake-layout" / "scope.schema.json").read_text())
    files = sorted((lake / "_manifest" / "symbol=SPY").glob("scope-*.json"))
    assert [f.name for f in files] == [f"scope-{n:010}.json" for n in (1, 2, 3)]
    for f in files:
        record = json.loads(f.read_text())
        jsonschema.validate(record, schema)
        assert record["actor"] == "schema@test"
    last = json.loads(files[-1].read_text())
    assert last["scope"]["from"] is None and last["scope"]["strike_band"] == 0.05
    assert last["changes"] == [{"key": "from", "old": "2026-11-17", "new": None}]
    # A record that breaks the schema is caught by it.
    last["scope"]["strike_band"] = 2
    try:
        jsonschema.validate(last, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a strike band of 2 passed the schema")
