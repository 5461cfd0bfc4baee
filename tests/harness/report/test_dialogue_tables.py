"""Tests of harness.report.dialogue_tables: Table 5 with both BLEU protocols beside the paper's values."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import write_metrics
from harness.report.dialogue_tables import render_dialogue_table
from harness.report.results import collect_results, load_paper_values, summarise

PAPER_CSV = """table,dataset,model,metric,value
5,DailyDialog,TWR-VAE,BLEU-R,0.407
5,DailyDialog,TWR-VAE,BOW-A,0.952
5,DailyDialog,CVAE,BLEU-R,0.265
5,DailyDialog,SeqGAN,BLEU-R,0.270
"""
UNIFORM = {"BLEU-R": 0.31, "BLEU-P": 0.22, "BLEU-F1": 0.26, "BOW-A": 0.90, "BOW-E": 0.55, "BOW-G": 0.78,
           "Intra-dist1": 0.9, "Intra-dist2": 0.85, "Inter-dist1": 0.4, "Inter-dist2": 0.55, "avg_length": 9.1,
           "responses_per_context": 10}
PAPER_PROTOCOL = {"BLEU-R": 0.41, "BLEU-P": 0.30, "BLEU-F1": 0.35}


def write_run(tmp: Path, model: str, paper_name: str, metrics: dict, seed: int = 1) -> Path:
    return write_metrics(tmp / "results", model, seed, metrics, paper_name=paper_name, dataset="dailydialog",
                         paper_tables=("5",), task="dialogue")


def shifted(metrics: dict, by: float) -> dict:
    return {k: v + by for k, v in metrics.items()}


def render(tmp: Path) -> str:
    (tmp / "tables.csv").write_text(PAPER_CSV)
    runs = [write_run(tmp, "twr-cvae", "TWR-VAE", {"uniform": UNIFORM, "paper": PAPER_PROTOCOL}),
            write_run(tmp, "twr-cvae", "TWR-VAE", {"uniform": shifted(UNIFORM, 0.02),
                                                   "paper": shifted(PAPER_PROTOCOL, 0.02)}, seed=2),
            write_run(tmp, "cvae", "CVAE", {"uniform": UNIFORM})]  # written before the paper protocol existed
    return render_dialogue_table(summarise(collect_results(runs)), load_paper_values(tmp / "tables.csv"),
                                 ["word2vec 200d"])


def rows(tex: str) -> list[list[str]]:
    return [line.removesuffix(r" \\").split(" & ") for line in tex.splitlines() if line.count(" & ") == 11]


def test_a_metric_per_column_and_per_model_rows_ours_ours_under_the_paper_protocol_and_the_papers(tmp_path):
    tex = render(tmp_path)
    table = rows(tex)
    header = table[0]
    assert header == ["Model", "", "R", "P", "F1", "A", "E", "G", "1", "2", "1", "2"]
    assert (r"\multicolumn{3}{c}{BLEU} & \multicolumn{3}{c}{BOW} & \multicolumn{2}{c}{Intra-dist} & "
            r"\multicolumn{2}{c}{Inter-dist}") in tex and r"\cmidrule(lr){11-12}" in tex
    body = {(r[0] or previous, r[1]): r for previous, r in _with_model(table[1:])}
    spread = r"\\[-2pt]{\tiny$\pm$.014}\end{tabular}"  # seeds 1-2: 0.31 and 0.33
    # no bold: CVAE ran one seed, and the paper protocol's row has no runner-up (clear_best, as Table 2)
    assert body["TWR-VAE", "ours"][2] == r"\begin{tabular}[c]{@{}r@{}}0.320" + spread
    assert [cell.removesuffix(spread) for cell in body["TWR-VAE", "ours$^\\dagger$"][2:6]] == [
        r"\begin{tabular}[c]{@{}r@{}}" + value for value in ("0.420", "0.310", "0.360")] + [""]
    assert "\\textbf" not in "".join(cell for row in table[1:] for cell in row)
    assert body["TWR-VAE", "paper"][2] == "0.407" and body["TWR-VAE", "paper"][5] == "0.952"
    assert body["CVAE", "ours"][2] == "0.310" and ("CVAE", "ours$^\\dagger$") not in body  # no dash row
    assert body["CVAE", "paper"][2:4] == ["0.265", "--"]
    assert body["SeqGAN$^\\ast$", "paper"][2] == "0.270"
    assert r"\texttt{</s>}" in tex


@pytest.mark.parametrize("gap, bolded", [(0.05, True), (0.005, False)])
def test_a_best_value_is_bold_only_where_it_leads_by_more_than_the_seed_spread(tmp_path, gap, bolded):
    """Two seeds each (spread 0.014 for both): a lead of 0.05 is bold, one of 0.005 is not."""
    (tmp_path / "tables.csv").write_text(PAPER_CSV)
    runs = [write_run(tmp_path, "twr-cvae", "TWR-VAE", {"uniform": shifted(UNIFORM, gap)}),
            write_run(tmp_path, "twr-cvae", "TWR-VAE", {"uniform": shifted(UNIFORM, gap + 0.02)}, seed=2),
            write_run(tmp_path, "cvae", "CVAE", {"uniform": UNIFORM}),
            write_run(tmp_path, "cvae", "CVAE", {"uniform": shifted(UNIFORM, 0.02)}, seed=2)]
    tex = render_dialogue_table(summarise(collect_results(runs)), load_paper_values(tmp_path / "tables.csv"),
                                ["word2vec 200d"])
    body = {(model, r[1]): r for model, r in _with_model(rows(tex)[1:])}
    assert ("\\textbf" in body["TWR-VAE", "ours"][2]) is bolded
    assert "\\textbf" not in "".join(body["CVAE", "ours"])
    assert "more than the larger of their two stds" in tex


def _with_model(table):
    model = ""
    for r in table:
        model = r[0] or model
        yield model, r


def test_table5_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: Table 5's LaTeX was not compiled")
    body = render(tmp_path)
    (tmp_path / "t.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + body
                                    + "\\end{document}\n")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "Overfull \\hbox" not in out.stdout, "Table 5 is wider than the page"


def test_the_caption_states_the_responses_per_context_and_why_seqgan_repeats_one(tmp_path):
    (tmp_path / "tables.csv").write_text(PAPER_CSV)
    runs = [write_run(tmp_path, "twr-cvae", "TWR-VAE", {"uniform": {**UNIFORM, "responses_per_context": 5}})]
    without = render_dialogue_table(summarise(collect_results(runs)), load_paper_values(tmp_path / "tables.csv"), [])
    assert "5 greedy responses per context" in without and "SeqGAN has no latent" not in without
    runs.append(write_run(tmp_path, "seqgan", "SeqGAN", {"uniform": {**UNIFORM, "responses_per_context": 5}}))
    with_seqgan = render_dialogue_table(summarise(collect_results(runs)), load_paper_values(tmp_path / "tables.csv"),
                                        [])
    assert "SeqGAN has no latent variable" in with_seqgan
