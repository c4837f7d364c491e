from __future__ import annotations

import pytest
import yaml

from bakeoff.config import apply_overrides
from bakeoff.errors import BakeoffError
from bakeoff.tasks import load_study, validate_study
from tests.conftest import write_study


def test_defaults_are_filled_and_round_trip(tiny_raw):
    cfg = validate_study(tiny_raw)
    assert cfg.protocol.precision == "32-true"
    assert cfg.data.normalize == "minmax"
    again = validate_study(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert again.fingerprint() == cfg.fingerprint()


def test_unknown_key_names_its_path(tmp_path, tiny_raw):
    tiny_raw["protocol"]["epocs"] = 3
    with pytest.raises(BakeoffError) as e:
        load_study(write_study(tmp_path / "s.yaml", tiny_raw))
    msg = str(e.value)
    assert "s.yaml" in msg and "protocol.epocs: unknown key" in msg
    assert "\n" not in msg


def test_wrong_type_names_path_and_value(tiny_raw):
    tiny_raw["protocol"]["optimizer"]["lr"] = "fast"
    with pytest.raises(BakeoffError, match=r"protocol\.optimizer\.lr: .*got 'fast'"):
        validate_study(tiny_raw)


def test_bad_literal_lists_choices(tiny_raw):
    tiny_raw["protocol"]["optimizer"]["name"] = "adamx"
    with pytest.raises(BakeoffError, match=r"protocol\.optimizer\.name: expected 'adam', 'adamw' or 'sgd'"):
        validate_study(tiny_raw)


def test_baseline_must_be_a_contender(tiny_raw):
    tiny_raw["evaluation"]["baseline"] = "nope"
    with pytest.raises(BakeoffError, match="baseline 'nope' is not a contender"):
        validate_study(tiny_raw)


def test_selection_on_test_is_impossible(tiny_raw):
    tiny_raw["protocol"]["select"]["monitor"] = "test/auroc"
    with pytest.raises(BakeoffError, match="protocol.select.monitor"):
        validate_study(tiny_raw)


def test_set_overrides_parse_yaml_values(tiny_raw):
    raw = apply_overrides(tiny_raw, ["protocol.epochs=7", "protocol.seeds=[3, 4]", "data.params.snr=2.5",
                                     "evaluation.min_effect=0.01"])
    cfg = validate_study(raw)
    assert cfg.protocol.epochs == 7 and cfg.protocol.seeds == [3, 4]
    assert cfg.data.params["snr"] == 2.5 and cfg.evaluation.min_effect == 0.01
    assert tiny_raw["protocol"]["epochs"] == 2  # the input is not mutated
    with pytest.raises(BakeoffError, match="KEY.PATH=VALUE"):
        apply_overrides(tiny_raw, ["protocol.epochs"])


def test_contender_protocol_override_is_validated_and_applied(tiny_raw):
    tiny_raw["contenders"]["se"]["protocol"] = {"optimizer": {"lr": 0.01}}
    cfg = validate_study(tiny_raw)
    assert cfg.protocol_for("se").optimizer.lr == 0.01
    assert cfg.protocol_for("se").optimizer.name == "adam"
    assert cfg.protocol_for("cnn").optimizer.lr == 0.003
    tiny_raw["contenders"]["se"]["protocol"] = {"optimizer": {"lr": -1}}
    with pytest.raises(BakeoffError, match=r"contenders\.se\.protocol: optimizer\.lr"):
        validate_study(tiny_raw)


def test_fingerprint_ignores_execution_but_not_protocol(tiny_raw):
    a = validate_study(tiny_raw)
    tiny_raw["execution"] = {"keep_checkpoints": False}
    assert validate_study(tiny_raw).fingerprint() == a.fingerprint()
    tiny_raw["evaluation"]["min_effect"] = 0.1  # re-evaluation reuses the runs
    assert validate_study(tiny_raw).fingerprint() == a.fingerprint()
    tiny_raw["evaluation"]["speed"] = False  # but what a run measures is part of it
    assert validate_study(tiny_raw).fingerprint() != a.fingerprint()
    tiny_raw["evaluation"]["speed"] = True
    tiny_raw["protocol"]["epochs"] = 3
    assert validate_study(tiny_raw).fingerprint() != a.fingerprint()


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(BakeoffError, match="study file not found"):
        load_study(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(BakeoffError, match="not valid YAML"):
        load_study(bad)


def test_device_and_precision_are_checked_before_training(tiny_raw, monkeypatch):
    import torch

    from bakeoff.runs.context import StudyContext

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tiny_raw["protocol"]["precision"] = "16-mixed"
    with pytest.raises(BakeoffError, match="protocol.precision: '16-mixed' needs a GPU"):
        StudyContext(validate_study(tiny_raw)).validate()
    tiny_raw["protocol"]["precision"] = "32-true"
    tiny_raw["contenders"]["se"]["protocol"] = {"accelerator": "gpu"}
    with pytest.raises(BakeoffError, match="contenders.se.protocol.accelerator: 'gpu' requested"):
        StudyContext(validate_study(tiny_raw)).validate()


def test_unknown_metric_names_are_rejected(tiny_raw):
    from bakeoff.runs.context import StudyContext

    tiny_raw["evaluation"]["primary"] = "aucroc"
    with pytest.raises(BakeoffError, match="evaluation.primary: unknown metric 'aucroc'"):
        StudyContext(validate_study(tiny_raw)).validate()
    tiny_raw["evaluation"]["primary"] = "auroc"
    tiny_raw["protocol"]["select"]["monitor"] = "val/acc"
    with pytest.raises(BakeoffError, match="protocol.select.monitor: unknown metric 'acc'"):
        StudyContext(validate_study(tiny_raw)).validate()


def test_task_and_executor_are_open_names_refused_with_close_matches_when_unknown(tiny_raw):
    """The schema lists no task and no executor: both are registries, checked by name with a suggestion."""
    from bakeoff.api import Study
    from bakeoff.errors import BakeoffError

    with pytest.raises(BakeoffError, match=r"task: unknown task 'regresion' \(did you mean 'regression'\?\); "
                                           r"expected one of \[.*'regression'"):
        validate_study({**tiny_raw, "task": "regresion"})
    raw = {**tiny_raw, "execution": {"backend": "slrum"}}
    with pytest.raises(BakeoffError, match=r"execution.backend: 'slrum' is not a registered executor \(did you "
                                           r"mean 'slurm'\?\); expected one of \['local', 'ray', 'slurm'\]"):
        Study(validate_study(raw)).plan()


def test_an_unset_weight_decay_is_pytorchs_default_for_the_optimizer_named():
    import inspect

    import torch

    from bakeoff.config import OptimizerConfig

    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        default = inspect.signature(cls.__init__).parameters["weight_decay"].default
        assert OptimizerConfig(name=name).weight_decay == default, name
    assert OptimizerConfig(name="adamw", weight_decay=0.0).weight_decay == 0.0  # set: kept
    assert OptimizerConfig(name="adamw").model_dump()["weight_decay"] == 0.01  # stated in the resolved study


def test_seed_streams_default_leaves_every_hash_as_it_was_and_per_contender_streams_differ():
    """``protocol.seed_streams`` arrived after studies were written: left at its default it is in neither
    a run's settings nor the study fingerprint; per-contender streams are, and give each contender a seed
    of its own drawn from (seed, name), the same on every call."""
    from bakeoff.config import ProtocolConfig, StudyConfig

    shared, own = ProtocolConfig(), ProtocolConfig(seed_streams="per_contender")
    assert "seed_streams" not in shared.run_settings() and own.run_settings()["seed_streams"] == "per_contender"
    assert shared.stream_seed(7, "cnn") == 7 == shared.stream_seed(7, "se")
    a, b = own.stream_seed(7, "cnn"), own.stream_seed(7, "se")
    assert a != b and a == own.stream_seed(7, "cnn") and 0 <= a < 2 ** 31 and a != own.stream_seed(8, "cnn")
    raw = {"name": "s", "contenders": {"cnn": {"model": "bakeoff:simple_cnn3d"}}}
    base = StudyConfig.model_validate(raw)
    per = StudyConfig.model_validate({**raw, "protocol": {"seed_streams": "per_contender"}})
    assert base.fingerprint() != per.fingerprint()
    assert base.fingerprint() == StudyConfig.model_validate({**raw, "protocol": {"seed_streams": "shared"}}).fingerprint()
