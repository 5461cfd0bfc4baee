"""One typed configuration object, built from `config/*.yaml` and validated against the schema.

The schema (`workflow/schemas/config.schema.yaml`) is the single source of defaults; Snakemake validates the
same file with `snakemake.utils.validate`. Python code never reads raw dicts beyond this module: it receives an
`ExperimentConfig` or a `RunConfig` (one dataset x model x seed).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.core.contract import ArchitectureConfig, ConfigError, build_dataclass
from harness.core.paths import REPO_ROOT

__all__ = ["ArchitectureConfig", "ConfigError", "REPO_ROOT"]  # re-exported: drivers and tests take them from here

SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"  # the embedded default, the base of a file naming none


# --------------------------------------------------------------------------- schema validation


def _validator_with_defaults():
    """A jsonschema validator that fills in `default` values while validating (as snakemake.utils.validate).

    jsonschema is imported here, not at the top: code that only rebuilds an already validated `RunConfig` (a
    training or evaluation process, the GPU campaign on an image without jsonschema) does not need it.
    """
    import jsonschema

    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    def fill_additional(validator, additional, instance, schema):
        # defaults inside `additionalProperties` sub-schemas (per-dataset / per-model entries)
        yield from base.VALIDATORS["additionalProperties"](validator, additional, instance, schema)
        if isinstance(instance, dict) and isinstance(additional, dict):
            known = set(schema.get("properties", {}))
            for key, value in instance.items():
                if key not in known:
                    yield from validator.descend(value, additional, path=key)

    return jsonschema.validators.extend(
        base, {"properties": set_defaults, "additionalProperties": fill_additional}
    )


def load_schema() -> dict:
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def _folder_name_problem(name: str) -> str | None:
    """Why `name` is not one folder name that stays inside the folder it is joined to, or None."""
    if not name:
        return "it is empty"
    if set(name) == {"."}:
        return "a name made only of dots is no folder of its own"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if "\0" in name:
        return "it holds a NUL character"
    return None


def check_path_names(raw: Mapping[str, Any]) -> None:
    """Config values that become paths stay inside their folder: the experiment (results/<experiment>/, logs/), the
    dataset keys (`datasets`, `data_options`: data/processed/<dataset>/, results/<experiment>/<dataset>/) and the
    model keys (`models`, `model_defs`: results/<experiment>/<dataset>/<model>/) are each one folder name, and
    `plugins` are module names. Values of another type are left to the schema. (`data_mirror`, `paper_values`
    and `word_vectors` are paths that are only read, outside the repository as often as not: not checked here.)"""
    def refuse(key: str, name: str, where: str, what: str = "") -> None:
        problem = _folder_name_problem(name)
        if problem:
            raise ConfigError(f"{key}: {what}{name!r} must be one folder name inside {where} ({problem})")

    if isinstance(raw.get("experiment"), str):
        refuse("experiment", raw["experiment"], "results/")
    for key, where in (("datasets", "data/ and results/<experiment>/"), ("models", "results/<experiment>/<dataset>/")):
        if isinstance(raw.get(key), list):
            for name in raw[key]:
                if isinstance(name, str):
                    refuse(key, name, where)
    for key, where in (("data_options", "data/ and results/<experiment>/"),
                       ("model_defs", "results/<experiment>/<dataset>/")):
        if isinstance(raw.get(key), Mapping):
            for name in raw[key]:
                if isinstance(name, str):
                    refuse(key, name, where, what="the key ")
    if isinstance(raw.get("plugins"), list):
        for name in raw["plugins"]:
            if isinstance(name, str) and not all(part.isidentifier() for part in name.split(".")):
                raise ConfigError(f"plugins: {name!r} is not a module name (dotted Python identifiers, e.g. "
                                  "my_methods.free_bits)")


def validate_config(raw: Mapping[str, Any]) -> dict:
    """Validate `raw` against the schema and return a copy with every default filled in. Names that become
    paths are checked first (`check_path_names`), so that such an error reads as one line naming its key."""
    check_path_names(raw)
    config = copy.deepcopy(dict(raw))
    validator = _validator_with_defaults()(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return config


def _read_yaml_mapping(path: Path) -> dict:
    try:
        with open(path) as handle:
            raw = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return raw


def overlay(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict:
    """`top` over `base`: mappings merge key by key (a model entry, one dataset's options, the `train` block),
    anything else -- lists such as `models` or `seeds`, numbers, null -- replaces what the base has."""
    merged = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _base_path(base: str, of: Path) -> Path:
    """A `base:` path, relative to the file that names it, else to the working directory (the repository root)."""
    for candidate in (of.parent / base, Path(base)):
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(f"{of}: base {base!r} not found (looked in {of.parent} and {Path.cwd()})")


def layered_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The raw (not yet validated) config of a file over its base.

    A file's `base:` names the file it overlays (`overlay`); a file without one overlays the embedded default
    (config/config.yaml); `base: null` stands alone (unset keys take the schema's defaults). A file that names no
    `experiment` is the experiment of its file name, so that it never writes into another experiment's results.
    """
    path = Path(path).resolve()
    if path in _chain:
        raise ConfigError(f"config files name each other as base: {' -> '.join(map(str, (*_chain, path)))}")
    raw = _read_yaml_mapping(path)
    base = raw.pop("base", None if path == DEFAULT_CONFIG_PATH.resolve() else str(DEFAULT_CONFIG_PATH))
    merged = overlay(layered_config(_base_path(base, path), (*_chain, path)) if base else {}, raw)
    if not _chain and "experiment" not in raw:
        merged["experiment"] = path.stem
    return merged


def layered_configs(paths: list[str | Path]) -> dict:
    """Several config files given in order (`snakemake --configfile a.yaml b.yaml`): the first over its base
    (`layered_config`), each later one over the result; only the first may name a `base`."""
    merged = layered_config(paths[0])
    for path in paths[1:]:
        raw = _read_yaml_mapping(Path(path))
        if "base" in raw:
            raise ConfigError(f"{path}: only the first config file may name a base (it overlays the files before it)")
        merged = overlay(merged, raw)
    return merged


def load_config_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict:
    """Read a YAML config file over its base (`layered_config`), apply top-level overrides, validate and fill
    defaults."""
    raw = layered_config(path)
    raw.update(overrides or {})
    try:
        return validate_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- typed sections


@dataclass(frozen=True)
class DataOptions:
    max_vocab: int | None = None
    max_train_sentences: int | None = None
    max_valid_sentences: int | None = None
    max_test_sentences: int | None = None
    max_length: int | None = None
    # which released file each split is built from; anything but identity makes a "reduced" experiment
    source_splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "valid": "valid", "test": "test"})
    # released (whitespace) | twr-vae-code (as the original TWR-VAE code reads the corpus; harness.data.tokenization)
    tokenization: str = "released"

    def remapped(self) -> dict[str, str]:
        """The splits built from another released file, e.g. {"train": "valid"}."""
        return {out: src for out, src in sorted(self.source_splits.items()) if out != src}

    def processed_name(self, dataset: str) -> str:
        """Folder name under data/processed: the dataset, plus e.g. `.train-from-valid` for remapped splits and
        `.twr-vae-code-tokens` for another tokenization."""
        tokens = "" if self.tokenization == "released" else f".{self.tokenization}-tokens"
        return dataset + "".join(f".{out}-from-{src}" for out, src in self.remapped().items()) + tokens


@dataclass(frozen=True)
class LrDecayConfig:
    """Learning-rate decay on a validation plateau (`train.lr_decay`); the recipes and the exact rules of each mode
    are in harness.train.lr_schedule. Epochs are counted from 1, as in train_log.json. Unlike the other sections, its
    defaults live here, not in the schema: Snakemake's validator would write them into a null `lr_decay`."""

    mode: str  # plateau (He et al. 2019 text.py) | every-epoch-after-plateau (Kim et al. 2018 train_text.py)
    #            | cosine-per-cycle (Fu et al. 2019 language_model/train_text_cyc_ptb.py)
    factor: float = 0.5  # lr <- lr * factor at each decay
    patience: int = 1  # consecutive validations without improvement that trigger a (first) decay
    start_epoch: int = 1  # no decay is triggered by an epoch before this one
    max_decays: int | None = None  # training stops after this many decays
    min_lr: float | None = None  # training stops once a decay takes lr below this
    reload_best: bool = False  # a decay reloads the weights of the best validated epoch so far
    restart_optimizer: bool = False  # a decay starts a fresh optimizer (no Adam moments / momentum carried over)
    cycle_epochs: int | None = None  # cosine-per-cycle: the lr falls along a half cosine over each cycle of N epochs

    MODES = ("plateau", "every-epoch-after-plateau", "cosine-per-cycle")

    def __post_init__(self):
        problems = []
        if self.mode not in self.MODES:
            problems.append(f"mode '{self.mode}' is not one of {list(self.MODES)}")
        if not 0 < self.factor < 1:
            problems.append(f"factor {self.factor} must lie in (0, 1)")
        for key in ("patience", "start_epoch") + (("max_decays",) if self.max_decays is not None else ()):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                problems.append(f"{key} {getattr(self, key)!r} must be an integer >= 1")
        if self.min_lr is not None and not self.min_lr > 0:
            problems.append(f"min_lr {self.min_lr} must be > 0")
        if self.mode == "cosine-per-cycle":
            if not isinstance(self.cycle_epochs, int) or self.cycle_epochs < 1:
                problems.append(f"mode cosine-per-cycle needs cycle_epochs, an integer >= 1, not {self.cycle_epochs!r}")
            unused = [key for key in ("max_decays", "min_lr") if getattr(self, key) is not None] + [
                key for key in ("reload_best", "restart_optimizer") if getattr(self, key)]
            if unused:
                problems.append(f"mode cosine-per-cycle follows the epoch alone: {', '.join(unused)} would not act")
        elif self.cycle_epochs is not None:
            problems.append(f"cycle_epochs is for mode cosine-per-cycle, not {self.mode}")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Early stopping on validation patience (`train.early_stopping`), Zhao et al. 2017's rule (NeuralDialog-CVAE
    kgcvae_swda.py); the exact rule is in harness.train.early_stopping. Patience is counted in validations (one every
    `validate_every` epochs), from 1. The defaults are Zhao et al.'s and live here, not in the schema, as
    LrDecayConfig's: Snakemake's validator would write them into a null `early_stopping`."""

    patience: int = 10  # the initial patience: training runs at least this many validations
    patience_increase: float = 2.0  # a significant improvement at validation k: patience = max(patience, k * this)
    improvement_threshold: float = 0.996  # significant: a new best <= this x the loss of the last significant one

    def __post_init__(self):
        problems = []
        if not isinstance(self.patience, int) or isinstance(self.patience, bool) or self.patience < 1:
            problems.append(f"patience {self.patience!r} must be an integer >= 1")
        if not self.patience_increase >= 1:
            problems.append(f"patience_increase {self.patience_increase!r} must be >= 1 (below 1 a significant "
                            "improvement would never move the deadline past the validation that made it)")
        if not 0 < self.improvement_threshold <= 1:
            problems.append(f"improvement_threshold {self.improvement_threshold!r} must lie in (0, 1] (a factor on "
                            "the loss of the last significant improvement; 1: any new best is significant)")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-5
    adam_eps: float = 1e-6
    grad_clip: float | None = None
    optimizer: str = "adam"  # adam | sgd
    loss_reduction: str = "sum"
    shuffle: bool = True
    select_by: str = "valid_loss"
    validate_every: int = 1  # epochs 1, 1 + N, 1 + 2N, ... are validated (the original TWR-VAE code: N = 10)
    precision: str = "float32"  # float32 | bfloat16 (harness.core.precision)
    lr_decay: LrDecayConfig | None = None  # None: constant lr (harness.train.lr_schedule)
    early_stopping: EarlyStoppingConfig | None = None  # None: train `epochs` epochs (harness.train.early_stopping)

    def __post_init__(self):
        if isinstance(self.lr_decay, Mapping):  # as read from a config file or a run config's JSON
            object.__setattr__(self, "lr_decay", build_dataclass(LrDecayConfig, self.lr_decay, "lr_decay"))
        if isinstance(self.early_stopping, Mapping):
            object.__setattr__(self, "early_stopping",
                               build_dataclass(EarlyStoppingConfig, self.early_stopping, "early_stopping"))
        if self.early_stopping is not None and self.select_by != "valid_loss":
            raise ConfigError("early_stopping keeps the weights of the best validation (Zhao et al. restore their "
                              f"best save): it needs select_by: valid_loss, not {self.select_by}")
        if self.lr_decay is not None:
            if self.validate_every != 1:
                raise ConfigError(f"lr_decay needs a validation after every epoch (validate_every 1, not "
                                  f"{self.validate_every}): its patience counts epochs, as the reference code does")
            if self.lr_decay.reload_best and self.select_by != "valid_loss":
                raise ConfigError("lr_decay.reload_best needs select_by: valid_loss (the kept best weights)")


@dataclass(frozen=True)
class EvaluateConfig:
    iw_samples: int = 500
    iw_chunk: int = 50
    batch_size: int = 32
    au_threshold: float = 0.01
    mi_samples: int = 10
    precision: str = "float32"  # float32 | bfloat16 (harness.core.precision)
    paper_batch_size: int = 64
    responses_per_context: int = 10  # dialogue: sampled responses per test context (Zhao et al. 2017)
    max_response_length: int = 40  # dialogue: greedy decoding stops after this many tokens (the reference's maxlen)


@dataclass(frozen=True)
class InterpolateConfig:
    """Latent-space interpolation (harness.evaluate.interpolate): how many pairs, steps and words."""

    models: tuple[str, ...] | None = None  # None: every language-modelling model of the experiment
    pairs: int | None = None  # None: all test sentences, paired at random
    steps: int = 10
    max_length: int = 40
    batch_size: int = 64
    examples: int = 3

    @property
    def alphas(self) -> list[float]:
        return [step / self.steps for step in range(self.steps + 1)]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    method: str
    paper_name: str | None = None
    label: str | None = None  # our tables' row name where the paper has none (paper_name wins; else the key)
    paper_tables: tuple[str, ...] = ("2",)
    options: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None  # restrict this entry to these datasets (None: every dataset)
    train: Mapping[str, Any] = field(default_factory=dict)  # overrides of the experiment's `train` settings
    architecture: Mapping[str, Any] = field(default_factory=dict)  # overrides of the experiment's sizes (own recipes)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training + evaluation run needs; serialised into every result file."""

    experiment: str
    dataset: str
    seed: int
    device: str
    data: DataOptions
    architecture: ArchitectureConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    model: ModelEntry
    plugins: tuple[str, ...] = ()  # extra modules that register methods (see docs/adding_a_method.md)

    def to_dict(self) -> dict:
        payload = dataclasses.asdict(self)
        if payload["model"].get("label") is None:  # unset: left out, so fingerprints stay those of older configs
            payload["model"].pop("label", None)
        if not payload["model"].get("architecture"):  # likewise (the run's sizes are in payload["architecture"])
            payload["model"].pop("architecture", None)
        if payload["train"]["lr_decay"] is None:
            # unset, the key is left out: run configs, and so training fingerprints (checkpoint resume) and the
            # workflow's job parameters, stay those of configs written before the option existed
            del payload["train"]["lr_decay"]
        if payload["train"]["early_stopping"] is None:  # likewise
            del payload["train"]["early_stopping"]
        return payload

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "RunConfig":
        try:
            return cls(
                experiment=raw["experiment"],
                dataset=raw["dataset"],
                seed=int(raw["seed"]),
                device=raw["device"],
                data=build_dataclass(DataOptions, raw["data"], "data"),
                architecture=build_dataclass(ArchitectureConfig, raw["architecture"], "architecture"),
                train=build_dataclass(TrainConfig, raw["train"], "train"),
                evaluate=build_dataclass(EvaluateConfig, raw.get("evaluate", {}), "evaluate"),
                model=build_dataclass(ModelEntry, raw["model"], "model"),  # YAML/JSON lists become tuples
                plugins=tuple(raw.get("plugins", ())),
            )
        except KeyError as exc:
            raise ConfigError(f"run config lacks key {exc}") from None

    def training_fingerprint(self) -> str:
        """Hash of what determines the trained weights (not the evaluation settings)."""
        payload = self.to_dict()
        payload.pop("evaluate")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExperimentConfig:
    """The validated top-level config, with helpers to enumerate runs."""

    raw: Mapping[str, Any]

    @classmethod
    def from_file(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> "ExperimentConfig":
        return cls.from_mapping(load_config_file(path, overrides))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "ExperimentConfig":
        experiment = cls(validate_config(raw))
        experiment.check()
        return experiment

    @property
    def experiment(self) -> str:
        return self.raw["experiment"]

    @property
    def on_code_change(self) -> str:
        """What train jobs do with a checkpoint of other method code (harness.train.training.train_run)."""
        return self.raw["on_code_change"]

    def model_entry(self, name: str) -> ModelEntry:
        defs = self.raw["model_defs"]
        if name not in defs:
            raise ConfigError(f"models: '{name}' has no entry in model_defs (known: {sorted(defs)})")
        return build_dataclass(ModelEntry, {"name": name, **defs[name]}, f"model_defs.{name}")

    def run_config(self, dataset: str, model: str, seed: int) -> RunConfig:
        raw = self.raw
        data_options = raw["data_options"].get(dataset, {})
        return RunConfig(
            experiment=raw["experiment"],
            dataset=dataset,
            seed=int(seed),
            device=raw["device"],
            data=build_dataclass(DataOptions, data_options, f"data_options.{dataset}"),
            architecture=self.architecture_config(model),
            train=self.train_config(model),
            evaluate=build_dataclass(EvaluateConfig, raw["evaluate"], "evaluate"),
            model=self.model_entry(model),
            plugins=tuple(raw["plugins"]),
        )

    def architecture_config(self, model: str) -> ArchitectureConfig:
        """The experiment's sizes with the model entry's overrides (a baseline's own paper's sizes)."""
        overrides = self.model_entry(model).architecture
        where = f"model_defs.{model}.architecture" if overrides else "architecture"
        return build_dataclass(ArchitectureConfig, {**self.raw["architecture"], **overrides}, where)

    def train_config(self, model: str) -> TrainConfig:
        """The experiment's train settings with the model entry's overrides (unknown keys name the entry)."""
        return build_dataclass(TrainConfig, {**self.raw["train"], **self.model_entry(model).train}, f"model_defs.{model}.train")

    def interpolate_config(self) -> InterpolateConfig:
        return build_dataclass(InterpolateConfig, self.raw["interpolate"], "interpolate")

    def interpolation_models(self, dataset: str) -> list[str]:
        """The configured models that are interpolated on `dataset` (language-modelling models only)."""
        from harness.methods.lookup import get_method

        chosen = self.interpolate_config().models
        return [model for model in self.raw["models"]
                if (chosen is None or model in chosen) and self.applies(model, dataset)
                and get_method(self.model_entry(model).method).task == "lm"]

    def applies(self, model: str, dataset: str) -> bool:
        """Whether `model` runs on `dataset`: its entry's `datasets` allow it and its method's task (language
        modelling or dialogue) is the dataset's."""
        from harness.data.registry import DATASETS
        from harness.methods.lookup import get_method

        entry = self.model_entry(model)
        if entry.datasets is not None and dataset not in entry.datasets:
            return False
        return get_method(entry.method).task == DATASETS[dataset].kind

    def own_recipes(self, dataset: str, paper_row: str) -> list[str]:
        """The model entries that train `paper_row` on `dataset` with the recipe of the paper its number is quoted from
        (config key `own_recipes`), in the config's order."""
        return [model for model, row in self.raw["own_recipes"].get(dataset, {}).items() if row == paper_row]

    def runs(self) -> list[RunConfig]:
        return [
            self.run_config(dataset, model, seed)
            for dataset in self.raw["datasets"]
            for model in self.raw["models"]
            if self.applies(model, dataset)
            for seed in self.raw["seeds"]
        ]

    def check(self) -> None:
        """Fail early: every selected model exists, its method is registered and its options are valid."""
        from harness.data.registry import DATASETS
        from harness.methods.lookup import get_method, load_plugins

        load_plugins(self.raw["plugins"])
        def check_entry(name: str) -> ModelEntry:
            """The entry of `name`, its options, train settings and sizes checked (errors name the key)."""
            entry = self.model_entry(name)
            get_method(entry.method).parse_options(entry.options, where=f"model_defs.{name}.options")
            self.train_config(name)
            self.architecture_config(name)
            return entry

        for name in self.raw["models"]:
            check_entry(name)
        for name in self.interpolate_config().models or ():
            if name not in self.raw["models"]:
                raise ConfigError(f"interpolate.models: '{name}' is not one of models {list(self.raw['models'])}")
        reference = self.raw.get("significance", {}).get("reference", "TWR-VAE")
        names = {name for model in self.raw["models"] for name in (
            model, self.model_entry(model).label, self.model_entry(model).paper_name) if name}
        if reference != "TWR-VAE" and reference not in names:  # the default may be absent (a baselines-only run)
            raise ConfigError(f"significance.reference: {reference!r} is no model of this experiment (models, their "
                              f"labels and paper names: {sorted(names)})")
        paper_rows = {entry["paper_name"] for entry in self.raw["model_defs"].values() if entry.get("paper_name")}
        for dataset, entries in self.raw["own_recipes"].items():
            if dataset not in DATASETS:
                raise ConfigError(f"own_recipes: unknown dataset '{dataset}' (known: {sorted(DATASETS)})")
            for model, row in entries.items():
                entry = check_entry(model)  # an unknown model key or bad settings: ConfigError naming it
                if row not in paper_rows:
                    raise ConfigError(f"own_recipes.{dataset}.{model}: {row!r} is no paper_name of model_defs "
                                      f"(known: {sorted(paper_rows)})")
                if entry.paper_name:  # it would be taken for the row's shared-size entry (or another row's)
                    raise ConfigError(f"own_recipes.{dataset}.{model}: the entry has paper_name {entry.paper_name!r}; "
                                      "an own-recipe entry is named by its `label` and trains beside the row's entry")
        known = set(DATASETS)
        for dataset, options in self.raw["data_options"].items():
            if dataset not in known:
                raise ConfigError(f"data_options: unknown dataset '{dataset}' (known: {sorted(known)})")
            if options.get("tokenization", "released") != "released" and DATASETS[dataset].kind != "lm":
                raise ConfigError(f"data_options.{dataset}.tokenization: only language-modelling corpora can be "
                                  "re-tokenised (dialogue data are tokenised as the reference dialogue code does)")
            for split, source in (options.get("source_splits") or {}).items():
                if source not in DATASETS[dataset].files:
                    raise ConfigError(f"data_options.{dataset}.source_splits.{split}: {dataset!r} has no file "
                                      f"{source!r} (its files: {sorted(DATASETS[dataset].files)})")


def command_line_booleans(values: Mapping[str, Any], schema_path: Path) -> dict[str, bool]:
    """The top-level keys the schema types as boolean whose value is the text 'true' or 'false' (any case), as
    booleans: Snakemake's `--config key=false` passes a string, which the schema would reject."""
    properties = yaml.safe_load(Path(schema_path).read_text()).get("properties", {})
    return {key: value.lower() == "true" for key, value in values.items()
            if properties.get(key, {}).get("type") == "boolean" and isinstance(value, str)
            and value.lower() in ("true", "false")}
