import pytest

from harness.config import ConfigError, ExperimentConfig, RunConfig, load_config_file, validate_config

REPO = __import__("conftest").REPO_ROOT


SHIPPED = sorted(path.name for path in (REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_valid_and_enumerate_runs(name):
    experiment = ExperimentConfig.from_file(REPO / "config" / name)
    runs = experiment.runs()
    assert runs and all(isinstance(run, RunConfig) for run in runs)
    assert RunConfig.from_dict(runs[0].to_dict()) == runs[0]


def test_defaults_come_from_the_schema():
    config = validate_config({})
    assert config["architecture"] == {"emb_dim": 512, "hidden_dim": 256, "z_dim": 32, "num_layers": 1, "dropout": 0.5}
    assert config["train"]["lr"] == 1e-4 and config["evaluate"]["iw_samples"] == 500
    nested = validate_config({"data_options": {"ptb": {"max_train_sentences": 5}}})
    assert nested["data_options"]["ptb"]["source_splits"] == {"train": "train", "valid": "valid", "test": "test"}


@pytest.mark.parametrize("raw,where", [
    ({"trian": {}}, "trian"),
    ({"train": {"epoch": 3}}, "epoch"),
    ({"train": {"epochs": "three"}}, "train.epochs"),
    ({"data_options": {"ptb": {"max_train": 3}}}, "max_train"),
])
def test_unknown_keys_and_wrong_types_name_the_key(raw, where):
    with pytest.raises(ConfigError, match=where):
        validate_config(raw)


def test_model_entries_are_checked_against_the_registry_before_anything_runs():
    base = {"models": ["m"], "model_defs": {"m": {"method": "no-such-method"}}}
    with pytest.raises(KeyError, match="no-such-method"):
        ExperimentConfig.from_mapping(base)
    base["model_defs"]["m"] = {"method": "twr-vae", "options": {"zmode": "mean"}}
    with pytest.raises(ConfigError, match="zmode"):
        ExperimentConfig.from_mapping(base)
    with pytest.raises(ConfigError, match="'absent'"):
        ExperimentConfig.from_mapping({"models": ["absent"]})


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config_file(tmp_path / "nope.yaml")


def test_training_fingerprint_ignores_evaluation_settings():
    experiment = ExperimentConfig.from_file(REPO / "config" / "config.yaml")
    run = experiment.runs()[0]
    other = ExperimentConfig.from_mapping({**experiment.raw, "evaluate": {"iw_samples": 7}}).runs()[0]
    assert run.training_fingerprint() == other.training_fingerprint()
    changed = ExperimentConfig.from_mapping({**experiment.raw, "train": {**experiment.raw["train"], "lr": 0.5}})
    assert changed.runs()[0].training_fingerprint() != run.training_fingerprint()


def test_an_empty_config_is_a_valid_experiment():
    assert [run.model.method for run in ExperimentConfig.from_mapping({}).runs()] == ["twr-vae"]


PAPER_VALUES = REPO / ".." / "shared" / "paper" / "tables.csv"


@pytest.mark.skipif(not PAPER_VALUES.exists(), reason=f"{PAPER_VALUES} (the paper's published numbers) is absent")
def test_paper_config_has_a_run_for_every_row_of_tables_2_and_3():
    import pandas as pd

    paper = pd.read_csv(PAPER_VALUES, dtype=str)
    wanted = {(row.table, row.dataset.lower(), row.model) for row in paper.itertuples() if row.table in ("2", "3")}
    experiment = ExperimentConfig.from_file(REPO / "config" / "paper.yaml")
    runs = experiment.runs()
    have = {(table, run.dataset, run.model.paper_name) for run in runs for table in run.model.paper_tables}
    assert wanted <= have, sorted(wanted - have)
    assert len(wanted) == 3 * 8 + 2 * 8  # Table 2: 8 rows on 3 datasets; Table 3: 8 rows on Yahoo and Yelp15
    for table, dataset, name in wanted:  # three seeds each
        assert sum(1 for run in runs if (run.dataset, run.model.paper_name) == (dataset, name)) == 3


def test_models_only_run_on_datasets_of_their_task():
    experiment = ExperimentConfig.from_mapping({
        "datasets": ["ptb", "dailydialog"], "models": ["twr-vae", "cvae"],
        "model_defs": {"twr-vae": {"method": "twr-vae"}, "cvae": {"method": "cvae", "paper_tables": ["5"]}}})
    assert {(run.dataset, run.model.name) for run in experiment.runs()} == {("ptb", "twr-vae"), ("dailydialog", "cvae")}


def test_training_a_dialogue_method_on_a_language_modelling_dataset_is_a_clear_error():
    from harness.tasks import task_of

    experiment = ExperimentConfig.from_mapping({"models": ["cvae"], "model_defs": {"cvae": {"method": "cvae"}}})
    with pytest.raises(ValueError, match="cvae.*dialogue method.*'ptb'"):
        task_of(experiment.run_config("ptb", "cvae", 1))


def test_a_model_entry_can_override_training_settings():
    experiment = ExperimentConfig.from_mapping({
        "models": ["twr-vae", "bn-vae"], "train": {"lr": 0.001},
        "model_defs": {"twr-vae": {"method": "twr-vae"},
                       "bn-vae": {"method": "bn-vae", "train": {"optimizer": "sgd", "lr": 1.0}}}})
    assert experiment.run_config("ptb", "twr-vae", 1).train.lr == 0.001
    bn = experiment.run_config("ptb", "bn-vae", 1)
    assert (bn.train.optimizer, bn.train.lr, bn.train.epochs) == ("sgd", 1.0, 100)
    assert RunConfig.from_dict(bn.to_dict()) == bn
    with pytest.raises(ConfigError, match="model_defs.bn-vae.train"):
        ExperimentConfig.from_mapping({"models": ["bn-vae"],
                                       "model_defs": {"bn-vae": {"method": "bn-vae", "train": {"lerning_rate": 1}}}})


def test_command_line_booleans_become_booleans_for_boolean_schema_keys_only():
    from harness.config import REPO_ROOT, command_line_booleans

    schema = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
    given = {"allow_download": "false", "allow_unverified_downloads": "True", "experiment": "false", "device": "cpu"}
    assert command_line_booleans(given, schema) == {"allow_download": False, "allow_unverified_downloads": True}
    assert command_line_booleans({"allow_download": "no"}, schema) == {}  # not a boolean word: the schema says so


def test_dataset_names_are_defined_once_the_schema_enum_is_the_registry():
    """The schema's dataset enum and the config's known datasets are harness.data.registry.DATASETS."""
    from harness.config import load_schema
    from harness.data.registry import DATASETS

    enum = load_schema()["properties"]["datasets"]["items"]["enum"]
    assert enum == list(DATASETS)
    with pytest.raises(ConfigError, match="unknown dataset 'imdb'"):
        ExperimentConfig.from_mapping({"data_options": {"imdb": {}}})


def test_a_source_file_the_dataset_lacks_is_refused_naming_its_key():
    raw = load_config_file(REPO / "config" / "config.yaml")
    raw["data_options"]["ptb"]["source_splits"] = {"train": "he2019-valid"}
    with pytest.raises(ConfigError, match=r"data_options\.ptb\.source_splits\.train: 'ptb' has no file 'he2019-valid'"):
        ExperimentConfig.from_mapping(raw)
