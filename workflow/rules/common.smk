# Helpers shared by the rules: which runs exist, where their data live, and the run config each job receives.
import json
import shutil

from harness.data.fetch import unavailable_reason
from harness.data.registry import DATASETS
from harness.methods.lookup import get_method
from harness.core.provenance import method_source_files

LM_DATASETS = sorted(name for name, spec in DATASETS.items() if spec.kind == "lm")
# wildcard patterns: a dataset name, or a processed variant of it ("yahoo.train-from-valid")
LM_DATASET_PATTERN = "|".join(LM_DATASETS)
# every experiment's tables and figures in its own folder: one experiment's run never overwrites another's
TABLES = f"results/{config['experiment']}/tables"
FIGURES = f"results/{config['experiment']}/figures"


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


def processed_dir_of(dataset):
    return f"data/processed/{_data_options(dataset).processed_name(dataset)}"


def processed_dir(wildcards):
    return processed_dir_of(wildcards.dataset)


def processed_files(wildcards):
    """The preprocess rule's outputs: its stats.json is written after the split files (and marks them complete)."""
    folder = processed_dir(wildcards)
    return {"stats": f"{folder}/stats.json", "vocab": f"{folder}/vocab.txt"}


def evaluation_inputs(wildcards):
    """Processed data and the trained model; for dialogue the word vectors of the BOW metrics."""
    files = {**processed_files(wildcards),
             "model": f"results/{wildcards.experiment}/{wildcards.dataset}/{wildcards.model}/seed{wildcards.seed}/model.pt"}
    if DATASETS[wildcards.dataset].kind == "dialogue":
        files["vectors"] = word_vectors_file(wildcards)
    return files


def training_inputs(wildcards):
    """Processed data, the method's source files (editing a method retrains it; harness.core.provenance), and for
    dialogue the word vectors that initialise the embedding."""
    files = processed_files(wildcards)
    run = EXPERIMENT.run_config(wildcards.dataset, wildcards.model, int(wildcards.seed))
    files["method_sources"] = [str(path) for path in method_source_files(get_method(run.model.method), run.plugins)]
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


def interpolation_files(dataset):
    """interpolation.json of every available run that Figures 2-3 draw for `dataset`."""
    models = set(EXPERIMENT.interpolation_models(dataset))
    return [
        f"results/{run.experiment}/{run.dataset}/{run.model.name}/seed{run.seed}/interpolation.json"
        for run in runs()
        if run.dataset == dataset and run.model.name in models
    ]


def table_files():
    """The LaTeX tables this experiment writes: Table 1 (its datasets), and 2, 3, 5 where it has their rows."""
    return ([f"{TABLES}/table1.tex"] if AVAILABLE_DATASETS else []) + [
        f"{TABLES}/table{table}.tex" for table in ("2", "3", "5") if metrics_files(table)]


def pdf_target():
    """tables.pdf where pdflatex is installed; otherwise nothing, said once."""
    if shutil.which("pdflatex"):
        return [f"{TABLES}/tables.pdf"] if table_files() else []
    print(f"pdflatex not found: {TABLES}/tables.pdf (all tables and figures in one PDF) is not built; the .tex "
          "tables are (docs/workflow.md, 'Tables as PDF').", file=sys.stderr)
    return []


def figure_files():
    """The interpolation figures and examples of every available dataset with at least one model to draw."""
    return [
        path
        for dataset in AVAILABLE_DATASETS
        if interpolation_files(dataset)
        for path in (f"{FIGURES}/fig2_{dataset}.png", f"{FIGURES}/fig2_{dataset}.pdf", f"{TABLES}/table4_{dataset}.txt")
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
