"""The Snakemake DAG: dry run and lint of the shipped configs, and a tiny real run on the dataset mirror."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, SHARED_DATA, needs_mirror
from harness.core.config import ExperimentConfig

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "workflow" / "Snakefile")]


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                            timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def write_config(path: Path, **changes) -> Path:
    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    config.update(data_mirror=str(SHARED_DATA), paper_values=str(REPO_ROOT / ".." / "shared" / "paper" / "tables.csv"))
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", ["config.yaml", "baselines_smoke.yaml", "baselines_longer.yaml", "baselines_fullptb.yaml",
                                  "dialogue_smoke.yaml", "paper.yaml"])
def test_dry_run_lists_every_job(tmp_path, name):
    from harness.data.registry import DATASETS

    result = snakemake(tmp_path, "-n", "--configfile", str(REPO_ROOT / "config" / name))
    config = ExperimentConfig.from_file(REPO_ROOT / "config" / name).raw  # the file over its base
    runs = ExperimentConfig.from_file(REPO_ROOT / "config" / name).runs()  # every (dataset, model, seed)
    out = result.stdout + result.stderr
    tables = {table for name in config["models"] for table in config["model_defs"][name].get("paper_tables", ["2"])}
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / name)
    interpolated = sum(run.model.name in experiment.interpolation_models(run.dataset) for run in runs)
    expected = {"train": len(runs), "evaluate": len(runs),
                "table": len(tables), "interpolate": interpolated,
                "interpolation_figure": len({run.dataset for run in runs if DATASETS[run.dataset].kind == "lm"
                                             and run.model.name in experiment.interpolation_models(run.dataset)})}
    for rule, count in expected.items():
        if count:
            assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), (rule, out[-3000:])
        else:
            assert not any(line.split()[:1] == [rule] for line in out.splitlines()), (rule, out[-3000:])


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", "--configfile", str(REPO_ROOT / "config" / "config.yaml"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_a_config_error_fails_before_any_job(tmp_path):
    config = write_config(tmp_path / "bad.yaml", train={"epochs": 1, "lerning_rate": 0.1})
    result = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0 and "lerning_rate" in result.stdout + result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()
    wrong_type = write_config(tmp_path / "bad_type.yaml", train={"epochs": "four"})
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(wrong_type), check=False)
    assert result.returncode != 0 and "four" in result.stdout + result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("config", ["experiment=..", "experiment=."])
def test_an_experiment_name_outside_results_is_refused_in_one_line(tmp_path, config):
    """`results/../` or `results/` itself: refused before any job, as one line naming the key (no traceback)."""
    result = snakemake(tmp_path, "-n", "--cores", "1", "--config", config, check=False)
    assert result.returncode != 0
    value = config.partition("=")[2]
    assert f"config error: experiment: '{value}' must be one folder name inside results/" in result.stderr
    assert "Traceback" not in result.stderr and "File " not in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_a_wrongly_typed_method_option_is_refused_in_one_line(tmp_path):
    config = write_config(tmp_path / "bad_option.yaml",
                          model_defs={"twr-vae": {"method": "twr-vae", "options": {"kl_warmup_steps": 2.5}}})
    result = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert ("config error: model_defs.twr-vae.options.kl_warmup_steps: expected an integer, got 2.5\n"
            in result.stderr), result.stderr[-2000:]
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_the_train_jobs_policy_for_a_checkpoint_of_other_code_is_a_config_key(tmp_path):
    """`--config on_code_change=restart` reaches every train job's command line (`refuse` by default); a value
    outside the three is refused naming the key, without a traceback, before any job."""
    default = snakemake(tmp_path, "-n", "-p")
    trains = [line for line in (default.stdout + default.stderr).splitlines() if "-m harness.train " in line]
    assert trains and all("--on-code-change refuse" in line for line in trains)
    restart = snakemake(tmp_path, "-n", "-p", "--config", "on_code_change=restart")
    trains = [line for line in (restart.stdout + restart.stderr).splitlines() if "-m harness.train " in line]
    assert trains and all("--on-code-change restart" in line for line in trains)
    wrong = snakemake(tmp_path, "-n", "--config", "on_code_change=ignore", check=False)
    assert wrong.returncode != 0 and "on_code_change: 'ignore' is not one of" in wrong.stderr, wrong.stderr[-2000:]
    assert wrong.stderr.startswith("config error:") and "Traceback" not in wrong.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def compile_every_table(folder: Path) -> None:
    """Every .tex the workflow wrote, compiled by pdflatex with -halt-on-error inside an article page (skipped, saying
    so, where pdflatex is not installed: call it last in a test)."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: the workflow's LaTeX tables were not compiled")
    for table in sorted(folder.glob("*.tex")):
        document = folder / f"compile_{table.stem}.tex"
        document.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{array}\n\\usepackage{graphicx}\n"
                            "\\begin{document}\n\\input{" + table.name + "}\n\\end{document}\n")
        compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
                                  cwd=folder, capture_output=True, text=True, timeout=120)
        assert compiled.returncode == 0, (table.name, compiled.stdout[-2000:])


TINY = dict(
    experiment="tiny",
    data_options={"ptb": {"max_train_sentences": 200, "max_valid_sentences": 40, "max_test_sentences": 40}},
    architecture={"emb_dim": 16, "hidden_dim": 16, "z_dim": 4},
    train={"epochs": 1, "batch_size": 20, "lr": 0.001},
    evaluate={"iw_samples": 5, "iw_chunk": 5, "batch_size": 20},
)


@needs_mirror
def test_the_dag_runs_end_to_end_on_real_ptb(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", **TINY)
    snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    table = (tmp_path / "results" / "tiny" / "tables" / "table2.tex").read_text()
    assert "TWR-VAE" in table and "Reduced data" in table and "86.6" in table  # ours beside the paper's
    metrics = json.loads((tmp_path / "results/tiny/ptb/twr-vae/seed1/metrics.json").read_text())
    assert metrics["data"]["reduced"] and metrics["metrics"]["uniform"]["iw_samples"] == 5
    assert metrics["config"]["model"]["method"] == "twr-vae" and metrics["code_version"]
    # nothing left to do: the table is a function of results/ only
    again = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr
    # Figure 2 and the Table 4-style examples: drawn from the interpolation results; deleting the figure
    # rebuilds only the figure, nothing re-trains or re-evaluates
    figure = tmp_path / "results" / "tiny" / "figures" / "fig2_ptb.png"
    assert figure.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "results/tiny/figures/fig2_ptb.pdf").exists()
    assert "s1: " in (tmp_path / "results" / "tiny" / "tables" / "table4_ptb.txt").read_text()
    interpolation = json.loads((tmp_path / "results/tiny/ptb/twr-vae/seed1/interpolation.json").read_text())
    assert interpolation["settings"]["pairs"] == 20 and len(interpolation["curves"]["rougeL"]["source"]) == 11
    figure.unlink()
    plan = snakemake(tmp_path, "-n", "--configfile", str(config)).stdout
    stats = plan.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]  # below the header and the ---- line
    redrawn = {"interpolation_figure", "all", "total"} | ({"tables_pdf"} if shutil.which("pdflatex") else set())
    assert {line.split()[0] for line in stats} == redrawn, plan[-2000:]  # the PDF holds the figure
    snakemake(tmp_path, "--cores", "1", "--configfile", str(config))
    assert figure.exists()
    # the HTML report gathers tables and figures with captions naming config, protocol and data
    snakemake(tmp_path, "--configfile", str(config), "--report", str(tmp_path / "report.html"))
    report = (tmp_path / "report.html").read_text()
    assert "fig2_ptb.png" in report and "table2.csv" in report and "experiment tiny" in report
    # changing an evaluation setting re-evaluates without re-training
    changed = write_config(tmp_path / "tiny2.yaml", **{**TINY, "evaluate": {**TINY["evaluate"], "iw_samples": 6}})
    plan = snakemake(tmp_path, "-n", "--configfile", str(changed)).stdout
    assert "evaluate" in plan and not any(line.split()[:1] == ["train"] for line in plan.splitlines())
    compile_every_table(tmp_path / "results" / "tiny" / "tables")  # last: it skips where pdflatex is missing
    assert (tmp_path / "results" / "tiny" / "tables" / "tables.pdf").read_bytes()[:4] == b"%PDF"


@needs_mirror
def test_a_corrupt_mirror_file_stops_the_dag_and_writes_nothing_downstream(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(SHARED_DATA / "ptb", mirror / "ptb")
    with open(mirror / "ptb" / "ptb.valid.txt", "r+b") as handle:
        handle.seek(100)
        handle.write(b"X")
    config = write_config(tmp_path / "corrupt.yaml", **TINY, data_mirror=str(mirror), allow_download=False)
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert "ptb.valid.txt" in result.stdout + result.stderr
    assert not (tmp_path / "data" / "raw" / "ptb" / "manifest.json").exists()
    assert not (tmp_path / "data" / "processed").exists() or not any((tmp_path / "data" / "processed").rglob("*.txt"))
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


@needs_mirror
def test_a_method_added_through_a_plugin_runs_through_the_dag(tmp_path):
    """docs/adding_a_method.md: `python -m harness.methods.new_method` writes one method file and a config overlay; a
    tiny overlay of that overlay runs it through the workflow beside TWR-VAE, with no change to the workflow, and
    the table names it with its options."""
    from harness.methods.new_method import write_method

    plugin_dir = tmp_path / "plugins"
    generated = write_method("half-kl", "my_methods", root=plugin_dir)
    tiny = {**TINY, "data_mirror": str(SHARED_DATA), "base": str(generated["config"])}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    env = {**__import__("os").environ, "PYTHONPATH": str(plugin_dir)}
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", "--configfile",
                             str(tmp_path / "tiny.yaml")], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "half-kl (half-kl): ptb data train 200, valid 40, test 40; 1 epochs" in result.stderr  # the budget
    metrics = json.loads((tmp_path / "results/tiny/ptb/half-kl/seed1/metrics.json").read_text())
    assert metrics["method"] == "half-kl" and metrics["config"]["model"]["options"] == {"beta": 0.25}
    table = (tmp_path / "results" / "tiny" / "tables" / "table2.tex").read_text()
    assert "half-kl" in table and "beta 0.25" in table and "TWR-VAE" in table
    assert str(generated["method"].resolve()) in metrics["training"]["method_sources"]
    # editing the method's source retrains that method (its file is an input of its jobs), and only that one
    method_file = generated["method"]
    method_file.write_text(method_file.read_text().replace("beta: float = 0.5", "beta: float = 0.4"))
    again = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--configfile", str(tmp_path / "tiny.yaml")],
                           capture_output=True, text=True, timeout=900, env=env)
    planned = re.findall(r"^rule train:\n(?:\s+.*\n)*?\s+wildcards: .*model=([\w-]+)", again.stdout, flags=re.MULTILINE)
    assert planned == ["half-kl"], again.stdout[-3000:]


@needs_mirror
def test_datasets_the_mirror_lacks_are_skipped_with_a_message_and_reduced_runs_are_planned(tmp_path):
    models = {"twr-vae": {"method": "twr-vae", "paper_name": "TWR-VAE"}}
    offline = write_config(tmp_path / "offline.yaml", **TINY, datasets=["ptb", "yahoo"], allow_download=False,
                           models=["twr-vae"], model_defs=models)
    result = snakemake(tmp_path, "-n", "--configfile", str(offline))
    out = result.stdout + result.stderr
    assert "Skipping dataset yahoo" in out and "yahoo/twr-vae/yahoo_train.txt" in out
    assert "results/tiny/ptb/twr-vae/seed1/metrics.json" in out and "results/tiny/yahoo/" not in out
    reduced = write_config(tmp_path / "reduced.yaml", **{**TINY, "datasets": ["ptb", "yahoo"], "allow_download": False,
                           "models": ["twr-vae"], "model_defs": models,
                           "data_options": {**TINY["data_options"], "yahoo": {"source_splits": {
                               "train": "he2019-valid", "valid": "he2019-valid", "test": "he2019-test"}}}})
    out = snakemake(tmp_path, "-n", "--configfile", str(reduced)).stdout
    processed = "yahoo.test-from-he2019-test.train-from-he2019-valid.valid-from-he2019-valid"
    assert f"data/processed/{processed}/stats.json" in out and "results/tiny/yahoo/twr-vae/seed1/metrics.json" in out


TINY_DIALOGUE = dict(
    experiment="tiny-dialogue",
    datasets=["dailydialog"],
    models=["cvae", "twr-cvae"],
    data_options={"dailydialog": {"max_train_sentences": 150, "max_valid_sentences": 30, "max_test_sentences": 12}},
    train={"epochs": 1, "batch_size": 25, "lr": 0.001},
    evaluate={"batch_size": 6, "responses_per_context": 3, "max_response_length": 8},
    model_defs={
        "cvae": {"method": "cvae", "paper_name": "CVAE", "paper_tables": ["5"],
                 "options": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4, "kl_warmup_steps": 3}},
        "twr-cvae": {"method": "twr-cvae", "paper_name": "TWR-VAE", "paper_tables": ["5"],
                     "options": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4, "kl_warmup_steps": 3}},
    },
)


@needs_mirror
def test_the_dialogue_dag_runs_end_to_end_on_real_dailydialog(tmp_path):
    config = write_config(tmp_path / "dialogue.yaml", **TINY_DIALOGUE)
    snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    table = (tmp_path / "results" / "tiny-dialogue" / "tables" / "table5.tex").read_text()
    assert "TWR-VAE" in table and "CVAE" in table and "0.407" in table  # ours beside the paper's BLEU-R
    assert "word2vec 200d trained on" in table and "iVAE$^\\ast$" in table and "Reduced data" in table
    assert "ours$^\\dagger$" in table  # the BLEU of the original code's protocol, in its own row
    run = tmp_path / "results/tiny-dialogue/dailydialog/twr-cvae/seed1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["test_sentences"] == 12 and metrics["metrics"]["uniform"]["responses_per_context"] == 3
    assert set(metrics["metrics"]["paper"]) == {"BLEU-R", "BLEU-P", "BLEU-F1"}
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and all(len(s["samples"]) == 3 and s["reference"] for s in samples)
    assert all(len(s["ended"]) == 3 for s in samples)
    assert "reference:" in (tmp_path / "results" / "tiny-dialogue" / "tables" / "table6.txt").read_text()
    again = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_given_config_file_is_not_merged_into_the_embedded_default(tmp_path):
    # Snakemake merges --configfile into the Snakefile's own configfile key by key: paper.yaml (no train cap) must
    # not inherit config.yaml's 6000-sentence cap, nor its models.
    import re
    import shutil

    shutil.copytree(REPO_ROOT / "config", tmp_path / "config")  # as in a checkout: the default is at config/config.yaml
    out = snakemake(tmp_path, "-n", "-p", "--configfile", str(REPO_ROOT / "config" / "paper.yaml"))
    text = out.stdout + out.stderr
    commands = [line for line in text.splitlines() if "-m harness.train " in line]
    assert commands and not any(re.search(r"max_train_sentences\W+6000", line) for line in commands)
    assert not any("vae-lstm-noanneal" in line for line in commands)
    default = snakemake(tmp_path, "-n", "-p")
    assert re.search(r"max_train_sentences\W+6000", default.stdout + default.stderr)


def test_a_tokenization_option_gets_its_own_preprocessing_job(tmp_path):
    config = write_config(tmp_path / "config.yaml", data_options={"ptb": {"tokenization": "twr-vae-code",
                                                                           "max_train_sentences": 100}})
    out = snakemake(tmp_path, "-n", "-p", "--configfile", str(config))
    text = out.stdout + out.stderr
    assert "data/processed/ptb.twr-vae-code-tokens/stats.json" in text
    assert any("harness.data.preprocess" in line and "--tokenization twr-vae-code" in line for line in text.splitlines())


def test_the_offline_instruction_of_paper_yaml_works_as_typed(tmp_path):
    # config/paper.yaml's comment: add `--config allow_download=false`; Snakemake passes 'false' as a string
    assert "--config allow_download=false" in (REPO_ROOT / "config" / "paper.yaml").read_text()
    out = snakemake(tmp_path, "-n", "--configfile", str(REPO_ROOT / "config" / "paper.yaml"),
                    "--config", "allow_download=false", "data_mirror=no-mirror-here")
    assert "downloads are off (allow_download: false)" in out.stdout + out.stderr


def test_the_top_level_snakefile_is_the_one_entry_point():
    """`snakemake --cores 2` from the repository root finds ./Snakefile, which includes workflow/Snakefile, and plans
    the whole default experiment (its rule `default` stands for workflow/Snakefile's `all`)."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--forceall"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert f"Snakefile: {REPO_ROOT / 'Snakefile'}" in out
    assert any(line.split()[:2] == ["train", "2"] for line in out.splitlines()), out[-3000:]
