# Helpers shared by the rules: which runs exist, where their data live, and the run config each job receives.
import json

from harness.data.fetch import unavailable_reason
from harness.data.registry import DATASETS
from harness.lr_schedule import describe as describe_lr_decay
from harness.tables import latex_escape

LM_DATASETS = sorted(name for name, spec in DATASETS.items() if spec.kind == "lm")
DIALOGUE_DATASETS = sorted(name for name, spec in DATASETS.items() if spec.kind == "dialogue")
# wildcard patterns: a dataset name, or a processed variant of it ("yahoo.train-from-valid")
LM_DATASET_PATTERN = "|".join(LM_DATASETS)
DIALOGUE_DATASET_PATTERN = "|".join(DIALOGUE_DATASETS)


def _data_options(dataset):
    return EXPERIMENT.run_config(dataset, config["models"][0], config["seeds"][0]).data


def needed_files(dataset):
    """The released files (logical names) the configured splits of `dataset` are built from."""
    return sorted(set(_data_options(dataset).source_splits.values()))


def _available_datasets():
    """Datasets whose files the mirror or the network can provide; the others are skipped with a message."""
    available = []
    for dataset in config["datasets"]:
        reason = unavailable_reason(dataset, needed_files(dataset), config["data_mirror"], config["allow_download"],
                                    config["allow_unverified_downloads"])
        if reason:
            print(f"Skipping dataset {dataset} (all its jobs): {reason}", file=sys.stderr)
        else:
            available.append(dataset)
    return available


AVAILABLE_DATASETS = _available_datasets()


def runs():
    return [run for run in EXPERIMENT.runs() if run.dataset in AVAILABLE_DATASETS]


def processed_dir(wildcards):
    return f"data/processed/{_data_options(wildcards.dataset).processed_name(wildcards.dataset)}"


def processed_files(wildcards):
    """The preprocess rule's outputs: its stats.json is written after the split files (and marks them complete)."""
    folder = processed_dir(wildcards)
    return {"stats": f"{folder}/stats.json", "vocab": f"{folder}/vocab.txt"}


def training_inputs(wildcards):
    """Processed data, and for dialogue the word vectors that initialise the embedding."""
    files = processed_files(wildcards)
    if DATASETS[wildcards.dataset].kind == "dialogue":
        files["vectors"] = word_vectors_file(wildcards)
    return files


def word_vectors_file(wildcards):
    """The configured vector file, or word2vec vectors trained on the dataset's training split."""
    return config["word_vectors"] or f"{processed_dir(wildcards)}/word2vec.kv"


def run_config_json(wildcards, for_training=False):
    """The resolved RunConfig of one job as JSON. Training gets it without the evaluation settings, so that
    changing e.g. the number of importance samples re-runs evaluation only."""
    run = EXPERIMENT.run_config(wildcards.dataset, wildcards.model, int(wildcards.seed)).to_dict()
    if for_training:
        run.pop("evaluate")
    return json.dumps(run, sort_keys=True)


def metrics_files(table, first_seed=False):
    """metrics.json of every available (dataset, model, seed) whose model entry belongs to paper table `table`
    (only the first configured seed with `first_seed`)."""
    return [
        f"results/{run.experiment}/{run.dataset}/{run.model.name}/seed{run.seed}/metrics.json"
        for run in runs()
        if table in run.model.paper_tables and (not first_seed or run.seed == config["seeds"][0])
    ]


def fetch_arguments(wildcards):
    flags = [f"--only {' '.join(needed_files(wildcards.dataset))}"]
    if config["data_mirror"]:
        flags.append(f"--mirror {config['data_mirror']}")
    if not config["allow_download"]:
        flags.append("--no-download")
    if config["allow_unverified_downloads"]:
        flags.append("--allow-unverified")
    return " ".join(flags)


def split_dataset_name(processed):
    """'yahoo.train-from-valid' -> ('yahoo', ['--split train=valid']);
    'ptb.twr-vae-code-tokens' -> ('ptb', ['--tokenization twr-vae-code'])."""
    dataset, *parts = processed.split(".")
    return dataset, [f"--tokenization {part.removesuffix('-tokens')}" if part.endswith("-tokens")
                     else f"--split {part.replace('-from-', '=')}" for part in parts]


def preprocess_arguments(wildcards):
    dataset, flags = split_dataset_name(wildcards.processed)
    size = config["data_options"].get(dataset, {}).get("max_vocab")
    if size:
        flags.append(f"--max-vocab {size}")
    return " ".join(flags)


def train_setting(key, value):
    """One train override as a caption lists it: `key value`, the lr decay rule in words."""
    return f"{key} ({describe_lr_decay(value)})" if key == "lr_decay" and value is not None else f"{key} {value}"


DIALOGUE_SIZE_DEFAULTS = {"emb_dim": 200, "hidden_dim": 300, "z_dim": 200}  # the CVAE family's (Appendix F)


def dialogue_model_description(name, options):
    """`name: emb/hidden/z 200/300/200, key value, ...`: every option a config sets is named (KL schedule, init,
    padded KL, ...)."""
    sizes = "/".join(str(options.get(key, default)) for key, default in DIALOGUE_SIZE_DEFAULTS.items())
    others = "".join(f", {key} {value}" for key, value in sorted(options.items()) if key not in DIALOGUE_SIZE_DEFAULTS)
    return f"{name}: emb/hidden/z {sizes}{others}"


def training_budget_caption(table="2"):
    """Table captions' account of how every run of this experiment was trained (LaTeX-escaped plain text)."""
    train = config["train"]
    if str(table) == "5":  # dialogue models carry their layer sizes in their options
        models = "; ".join(dialogue_model_description(name, run.model.options)
                           for name, run in {run.model.name: run for run in runs() if "5" in run.model.paper_tables}.items())
        sizes, models = "sizes and options per model below", f" Models: {models}."
    else:
        arch = config["architecture"]
        sizes, models = f"emb/hidden/z {arch['emb_dim']}/{arch['hidden_dim']}/{arch['z_dim']}", ""
    table_models = {run.model.name: run.model for run in runs() if str(table) in run.model.paper_tables}
    grouped = {}  # identical overrides are listed once, with every model that has them
    for name, model in sorted(table_models.items()):
        if model.train:
            grouped.setdefault(", ".join(train_setting(k, v) for k, v in sorted(model.train.items())), []).append(name)
    changed = "".join(f" {', '.join(names)}: {values}." for values, names in grouped.items())
    padded = sorted(name for name, model in table_models.items() if model.options.get("timesteps") == "padded")
    if padded:
        changed += (f" {', '.join(padded)}: KL and latent read over the batch's padded length, padding included "
                    "(timesteps padded, the original code's arithmetic).")
    precision = "".join(
        f" {stage} precision: {section['precision']} (decoder RNN and output-layer matmuls; the rest float32)."
        for stage, section in (("Training", train), ("Evaluation", config["evaluate"]))
        if section.get("precision", "float32") != "float32")
    order = ("batches in ascending length order every epoch" if train.get("shuffle") is False
             else "length-bucketed batches in random order")
    validation = (f"validated every {train['validate_every']} epochs" if train.get("validate_every", 1) > 1
                  else "validated every epoch")
    kept = "the last epoch's" if train.get("select_by") == "last" else "the validated epoch with the lowest loss"
    decay = f" with decay ({describe_lr_decay(train['lr_decay'])})" if train.get("lr_decay") else ""
    per_model = f" Per model:{changed}" if changed else ""
    return latex_escape(
        f"Training budget of experiment {config['experiment']}: {train['epochs']} epochs, batch {train['batch_size']}, "
        f"{train.get('optimizer', 'adam')} lr {train['lr']}{decay}, {sizes}, {order}, {validation}, "
        f"weights kept: {kept}; "
        f"seeds {', '.join(map(str, config['seeds']))}.{models}{per_model}{precision}")


def interpolation_files(dataset):
    """interpolation.json of every available run that Figures 2-3 draw for `dataset`."""
    models = set(EXPERIMENT.interpolation_models(dataset))
    return [
        f"results/{run.experiment}/{run.dataset}/{run.model.name}/seed{run.seed}/interpolation.json"
        for run in runs()
        if run.dataset == dataset and run.model.name in models
    ]


def figure_files():
    """The interpolation figures and examples of every available dataset with at least one model to draw."""
    return [
        path
        for dataset in AVAILABLE_DATASETS
        if interpolation_files(dataset)
        for path in (f"results/figures/fig2_{dataset}.png", f"results/figures/fig2_{dataset}.pdf",
                     f"results/tables/table4_{dataset}.txt")
    ]


def report_provenance():
    """For report captions: the config file(s), experiment and data caps the results came from."""
    files = [os.path.relpath(path) for path in workflow.configfiles] or ["config/config.yaml"]
    def changed(options):  # what differs from the full released dataset
        return {key: value for key, value in sorted(options.items()) if value is not None and not (
            key == "source_splits" and all(role == source for role, source in value.items()))}

    caps = "; ".join(
        f"{dataset}: " + ", ".join(f"{key} {value}" for key, value in changed(options).items())
        for dataset, options in sorted(config["data_options"].items())
        if dataset in config["datasets"] and changed(options)
    )
    return (f"config {', '.join(files)} (experiment {config['experiment']}, seeds "
            f"{', '.join(map(str, config['seeds']))}); data options: {caps or 'full datasets'}")
