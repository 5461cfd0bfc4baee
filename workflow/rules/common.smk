# Helpers shared by the rules: which runs exist, and the run config each job receives.
import json


def run_config_json(wildcards, for_training=False):
    """The resolved RunConfig of one job as JSON. Training gets it without the evaluation settings, so that
    changing e.g. the number of importance samples re-runs evaluation only."""
    run = EXPERIMENT.run_config(wildcards.dataset, wildcards.model, int(wildcards.seed)).to_dict()
    if for_training:
        run.pop("evaluate")
    return json.dumps(run, sort_keys=True)


def metrics_files(table):
    """metrics.json of every (dataset, model, seed) whose model entry belongs to paper table `table`."""
    return [
        f"results/{run.experiment}/{run.dataset}/{run.model.name}/seed{run.seed}/metrics.json"
        for run in EXPERIMENT.runs()
        if table in run.model.paper_tables
    ]


def mirror_argument():
    return f"--mirror {config['data_mirror']}" if config["data_mirror"] else ""


def download_arguments():
    flags = [] if config["allow_download"] else ["--no-download"]
    if config["allow_unverified_downloads"]:
        flags.append("--allow-unverified")
    return " ".join(flags)


def max_vocab_argument(wildcards):
    size = config["data_options"].get(wildcards.dataset, {}).get("max_vocab")
    return f"--max-vocab {size}" if size else ""


def training_budget_caption():
    """One sentence for table captions: the budget every run of this experiment was trained with."""
    train = config["train"]
    arch = config["architecture"]
    return (f"Training budget of experiment {config['experiment']}: {train['epochs']} epochs, batch {train['batch_size']}, "
            f"Adam lr {train['lr']}, emb/hidden/z {arch['emb_dim']}/{arch['hidden_dim']}/{arch['z_dim']}, "
            f"seeds {', '.join(map(str, config['seeds']))}.")
