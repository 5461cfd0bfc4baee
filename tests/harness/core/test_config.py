import pytest

from harness.core.config import ConfigError, ExperimentConfig, RunConfig, load_config_file, validate_config

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
    from harness.core.config import REPO_ROOT, command_line_booleans

    schema = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
    given = {"allow_download": "false", "allow_unverified_downloads": "True", "experiment": "false", "device": "cpu"}
    assert command_line_booleans(given, schema) == {"allow_download": False, "allow_unverified_downloads": True}
    assert command_line_booleans({"allow_download": "no"}, schema) == {}  # not a boolean word: the schema says so


def test_dataset_names_are_defined_once_the_schema_enum_is_the_registry():
    """The schema's dataset enum and the config's known datasets are harness.data.registry.DATASETS."""
    from harness.core.config import load_schema
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


# ------------------------------------------------------------------------------------------------ layered configs
def _write(path, text):
    path.write_text(text)
    return path


def test_a_users_file_overlays_the_embedded_default_and_is_its_own_experiment(tmp_path):
    """A file without `base:` keeps every setting of config/config.yaml it does not change (data caps, batch,
    evaluation), merges mappings key by key, replaces lists, and names the experiment after itself."""
    mine = _write(tmp_path / "free_bits.yaml", "models: [twr-vae]\ntrain: {epochs: 2}\n"
                  "model_defs: {twr-vae: {options: {z_mode: sum}}}\n")
    experiment = ExperimentConfig.from_file(mine)
    default = ExperimentConfig.from_file(REPO / "config" / "config.yaml")
    assert experiment.experiment == "free_bits" and experiment.raw["models"] == ["twr-vae"]
    run, base_run = experiment.runs()[0], default.run_config("ptb", "twr-vae", 1)
    assert run.train.epochs == 2 and run.train.batch_size == base_run.train.batch_size == 32
    assert run.data == base_run.data and run.data.max_train_sentences == 6000
    assert run.evaluate == base_run.evaluate
    assert run.model.options == {**default.raw["model_defs"]["twr-vae"]["options"], "z_mode": "sum"}


def test_a_named_base_is_found_beside_the_file_and_null_stands_alone(tmp_path):
    (tmp_path / "configs").mkdir()
    _write(tmp_path / "configs" / "parent.yaml", "base: null\nexperiment: parent\nmodels: [twr-vae]\n"
           "model_defs: {twr-vae: {method: twr-vae}}\ntrain: {epochs: 3}\n")
    child = _write(tmp_path / "configs" / "child.yaml", "base: parent.yaml\nseeds: [4, 5]\n")
    experiment = ExperimentConfig.from_file(child)
    assert experiment.experiment == "child" and experiment.raw["seeds"] == [4, 5]
    assert experiment.runs()[0].train.epochs == 3
    assert experiment.runs()[0].data.max_train_sentences is None  # the schema's default, not config.yaml's cap


def test_bad_bases_are_refused_naming_the_files(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="name each other as base"):
        ExperimentConfig.from_file(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: base 'nowhere\.yaml' not found"):
        ExperimentConfig.from_file(tmp_path / "c.yaml")


def test_several_config_files_overlay_in_order_and_only_the_first_names_a_base(tmp_path):
    from harness.core.config import layered_configs

    first = _write(tmp_path / "first.yaml", "train: {epochs: 2}\n")
    second = _write(tmp_path / "second.yaml", "train: {batch_size: 8}\n")
    merged = layered_configs([first, second])
    assert merged["train"]["epochs"] == 2 and merged["train"]["batch_size"] == 8 and merged["experiment"] == "first"
    with pytest.raises(ConfigError, match="only the first config file may name a base"):
        layered_configs([first, _write(tmp_path / "third.yaml", "base: null\n")])


def test_the_baselines_overlay_shares_the_default_runs():
    """config/baselines_smoke.yaml is config/config.yaml plus the baselines: its TWR-VAE and collapse-reference
    runs are the default's, so the workflow reuses their results."""
    default = ExperimentConfig.from_file(REPO / "config" / "config.yaml")
    baselines = ExperimentConfig.from_file(REPO / "config" / "baselines_smoke.yaml")
    for model in default.raw["models"]:
        assert baselines.run_config("ptb", model, 1) == default.run_config("ptb", model, 1)
    assert len(baselines.raw["models"]) == 7


def test_the_budget_names_every_model_and_the_output_folder():
    from harness.train.budget import experiment_budget

    lines = experiment_budget(ExperimentConfig.from_file(REPO / "config" / "config.yaml"))
    assert lines[0].startswith("experiment 'smoke' -> results/smoke/")
    assert any("twr-vae (twr-vae): ptb data train 6000, valid 300, test 300; 4 epochs, batch 32, adam lr 0.001"
               in line for line in lines)


def test_the_train_jobs_budget_line_names_no_evaluation_samples():
    """harness.train.training gets the run config without `evaluate` (the workflow drops it), so the K it would print is the
    default's, not the evaluation's: its line leaves the evaluation out; the workflow's budget names the real K."""
    from harness.train.budget import experiment_budget, run_budget

    experiment = ExperimentConfig.from_file(REPO / "config" / "config.yaml")
    run = experiment.run_config("ptb", "twr-vae", 1)
    assert f"IW-NLL K={run.evaluate.iw_samples};" in run_budget(run)
    assert any(f"IW-NLL K={run.evaluate.iw_samples};" in line for line in experiment_budget(experiment))
    training = run.to_dict()
    training.pop("evaluate")  # as workflow/rules/common.smk run_config_json(for_training=True)
    line = run_budget(RunConfig.from_dict(training), evaluation=False)
    assert "K=" not in line and line == run_budget(run, evaluation=False) and line.endswith("; device cpu")


def test_a_model_entry_overrides_the_sizes_and_the_caption_says_so():
    """The baselines' own recipes (config/paper.yaml `*-own`): their papers' sizes beside TWR-VAE's, named in the
    caption; an unknown size key names the entry."""
    from harness.report.captions import training_caption

    paper = ExperimentConfig.from_file(REPO / "config" / "paper.yaml")
    own, shared = paper.run_config("yahoo", "vae-lstm-own", 1), paper.run_config("yahoo", "vae-lstm", 1)
    assert (own.architecture.hidden_dim, own.train.batch_size, shared.architecture.hidden_dim) == (1024, 32, 256)
    assert "architecture" not in shared.to_dict()["model"]  # entries without sizes keep their old fingerprints
    records = [{"config": run.to_dict(), "seed": 1} for run in (own, shared)]
    assert "vae-lstm-own: emb/hidden/z 512/1024/32." in training_caption(records, "2")
    raw = load_config_file(REPO / "config" / "config.yaml")
    raw["model_defs"]["twr-vae"]["architecture"] = {"hidden": 3}
    with pytest.raises(ConfigError, match=r"model_defs\.twr-vae\.architecture: unknown key\(s\) \['hidden'\]"):
        ExperimentConfig.from_mapping(raw)


@pytest.mark.parametrize("raw, message", [
    ({"experiment": ".."}, "experiment: '..' must be one folder name inside results/"),
    ({"experiment": "."}, "experiment: '.' must be one folder name inside results/"),
    ({"experiment": "a/b"}, "experiment: 'a/b' must be one folder name inside results/"),
    ({"models": ["../x"], "model_defs": {"../x": {"method": "twr-vae"}}}, "models: '../x' must be one folder name"),
    ({"model_defs": {"../x": {"method": "twr-vae"}}}, "model_defs: the key '../x' must be one folder name"),
    ({"model_defs": {"/tmp/x": {"method": "twr-vae"}}}, "model_defs: the key '/tmp/x' must be one folder name"),
    ({"models": [".."], "model_defs": {"..": {"method": "twr-vae"}}}, "models: '..' must be one folder name"),
    ({"data_options": {"..": {}}}, "data_options: the key '..' must be one folder name"),
    ({"data_options": {"ptb/../..": {}}}, "data_options: the key 'ptb/../..' must be one folder name"),
    ({"plugins": ["my_methods..free_bits"]}, "plugins: 'my_methods..free_bits' is not a module name"),
    ({"plugins": ["../my_methods"]}, "plugins: '../my_methods' is not a module name"),
])
def test_names_that_become_paths_stay_one_folder_name(raw, message):
    """The experiment, dataset and model keys become folders under results/ and data/ (`results/<experiment>/
    <dataset>/<model>/`): `..`, `.`, separators and absolute paths are refused before any job, naming the key."""
    with pytest.raises(ConfigError) as caught:
        ExperimentConfig.from_mapping(raw)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_ordinary_names_are_still_accepted():
    experiment = ExperimentConfig.from_mapping({
        "experiment": "my.run_2-b", "models": ["twr-vae", "bn-vae-0.7"], "plugins": [],
        "model_defs": {"twr-vae": {"method": "twr-vae"}, "bn-vae-0.7": {"method": "bn-vae", "options": {"gamma": 0.7}}},
        "data_options": {"ptb": {"max_train_sentences": 10}}})
    assert experiment.experiment == "my.run_2-b"
    assert [run.model.name for run in experiment.runs()] == ["twr-vae", "bn-vae-0.7"]
    assert ExperimentConfig.from_mapping({"plugins": ["harness.methods.registry"]}).raw["plugins"] == ["harness.methods.registry"]


def test_the_schema_refuses_the_same_names_for_snakemakes_own_validator():
    """The Snakefile validates with Snakemake's validator too (after harness.core.config's check, which names the key
    in one line): its patterns refuse the same names."""
    import jsonschema

    from harness.core.config import load_schema

    validator = jsonschema.Draft202012Validator(load_schema())
    for bad in ({"experiment": ".."}, {"experiment": "."}, {"models": ["../x"]}, {"model_defs": {"..": {"method": "m"}}},
                {"plugins": ["a..b"]}, {"plugins": ["a."]}):
        assert list(validator.iter_errors(bad)), bad
    for good in ({"experiment": "smoke"}, {"experiment": "a..b"}, {"models": ["bn-vae-0.7"]},
                 {"model_defs": {"twr-vae": {"method": "twr-vae"}}}, {"plugins": ["my_methods.free_bits"]},
                 {"own_recipes": {"ptb": {"bn-vae-own": "BN-VAE (0.7)"}}}):
        assert not list(validator.iter_errors(good)), good


@pytest.mark.parametrize("own_recipes,message", [
    ({"imdb": {"m": "VAE-LSTM"}}, "own_recipes: unknown dataset 'imdb'"),
    ({"ptb": {"absent": "VAE-LSTM"}}, "'absent' has no entry in model_defs"),
    ({"ptb": {"m": "VAE-LTSM"}}, r"own_recipes\.ptb\.m: 'VAE-LTSM' is no paper_name of model_defs"),
    ({"ptb": {"m": "VAE-LSTM"}}, r"own_recipes\.ptb\.m: the entry has paper_name 'VAE-LSTM'"),
    ({"ptb": {"bad": "VAE-LSTM"}}, r"model_defs\.bad\.train: unknown key"),
])
def test_an_own_recipe_names_a_known_dataset_model_and_paper_row(own_recipes, message):
    """`own_recipes` links a quoted paper row to the entry trained with its source paper's recipe (the status board
    reads it): a typo in any of its three names is refused, naming it."""
    raw = {"models": ["m"], "model_defs": {"m": {"method": "vae-rnn", "paper_name": "VAE-LSTM"},
                                           "n": {"method": "vae-rnn"},
                                           "bad": {"method": "vae-rnn", "train": {"epoch": 3}}}}  # not in models
    config = ExperimentConfig.from_mapping(raw | {"own_recipes": {"ptb": {"n": "VAE-LSTM"}}})
    assert config.own_recipes("ptb", "VAE-LSTM") == ["n"] and config.own_recipes("yahoo", "VAE-LSTM") == []
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_mapping(raw | {"own_recipes": own_recipes})
