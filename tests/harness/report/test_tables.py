"""Tests of harness.report.tables and the harness.report.aggregate CLI: LaTeX layout, bolding, paper values, captions."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import compile_on_article_page, write_metrics
from harness.report import aggregate
from harness.report.results import collect_results, load_paper_values, summarise
from harness.core.io import write_text_atomic
from harness.report.tables import latex_escape, render_lm_table, write_tidy_csv

PAPER_CSV = """table,dataset,model,metric,value
2,PTB,TWR-VAE,NLL,86.6
2,PTB,TWR-VAE,PPL,40.9
2,PTB,TWR-VAE,MI,4.1
2,PTB,TWR-VAE,KL,5.0
2,PTB,VAE-LSTM,NLL,101.2
3,PTB,TWR-VAE,NLL,999.9
"""


def write_run(tmp: Path, model: str, seed: int, uniform: dict, paper: dict | None = None, **fields) -> Path:
    return write_metrics(tmp / "results", model, seed, {"uniform": uniform, **({"paper": paper} if paper is not None else {})},
                         experiment="unit_test", **fields)  # an underscore, escaped in the caption


def make_runs(tmp: Path, reduced: bool = True) -> list[Path]:
    return [
        write_run(tmp, "twr-vae", 1, {"NLL": 90.0, "PPL": 50.0, "MI": 4.0, "KL": 5.0, "iw_samples": 500},
                  {"NLL": 85.0, "PPL": 40.0, "MI": 3.5, "KL": 2.0}, paper_name="TWR-VAE"),
        write_run(tmp, "twr-vae", 2, {"NLL": 92.0, "PPL": 52.0, "MI": 3.0, "KL": 6.0, "iw_samples": 500},
                  {"NLL": 87.0, "PPL": 42.0, "MI": 3.5, "KL": 2.0}, paper_name="TWR-VAE"),
        write_run(tmp, "vae_lstm", 1, {"NLL": 100.0, "PPL": 100.0, "KL": 0.1, "iw_samples": 500},
                  {"NLL": 99.0, "PPL": 98.0, "MI": 0.1, "KL": 9.0}, paper_name="VAE-LSTM",
                  reduced=reduced, note="train capped at 5000 of 42068 (12% kept) & test_split"),
        write_run(tmp, "vae_lstm", 2, {"NLL": 101.0, "PPL": 101.0, "KL": 0.1, "iw_samples": 500},
                  {"NLL": 99.0, "PPL": 98.0, "MI": 0.3, "KL": 9.0}, paper_name="VAE-LSTM",
                  reduced=reduced, note="train capped at 5000 of 42068 (12% kept) & test_split"),
    ]


def render(tmp: Path, reduced: bool = True, paper: bool = True) -> str:
    csv = tmp / "tables.csv"
    csv.write_text(PAPER_CSV)
    summary = summarise(collect_results(make_runs(tmp, reduced)))
    return render_lm_table(summary, load_paper_values(csv if paper else None), table="2")


def tables(tex: str) -> tuple[str, str]:
    """The uniform-protocol table and the original-protocol table (ours, then the published rows)."""
    uniform, original = tex.split("\n\n")
    return uniform, original


def body_rows(section: str, label: str) -> list[list[str]]:
    """Cells of every body row whose first cell is `label` (a nested one-cell tabular kept whole)."""
    found = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r" & (?![^{]*\\end\{tabular\})", line.removesuffix(r"\\"))]
        if cells[0] == label:
            found.append(cells)
    assert found, f"no row {label!r} in\n{section}"
    return found


def value(cell: str) -> tuple[str, str | None, bool]:
    """(mean text, std text or None, bold) of a rendered cell."""
    mean = re.search(r"(-?\d+\.\d+|--|n/a)", cell).group(1)
    std = re.search(r"\$\\pm\$(\d+\.\d+)", cell)
    return mean, std.group(1) if std else None, r"\textbf{" + mean in cell


COL = {metric: 1 + i for i, metric in enumerate(["NLL", "PPL", "MI", "KL"])}


def test_structure_two_tables_shaped_like_the_papers(tmp_path: Path) -> None:
    tex = render(tmp_path)
    assert tex.count("{") == tex.count("}")
    depth = 0
    for ch in tex.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert tex.count(r"\begin{table*}") == tex.count(r"\end{table*}") == tex.count(r"\caption{") == 2
    for section in tables(tex):
        assert re.search(r"\\begin\{tabular\}\{lrrrr\}", section)  # NLL PPL MI KL under the one dataset
        assert r"\multicolumn{4}{c}{PTB}" in section and "Model & NLL & PPL & MI & KL" in section
        for row in body_rows(section, "TWR-VAE"):
            assert len(row) == 5
    uniform, original = tables(tex)
    assert "published (Li et al. 2020)" in original and "published" not in uniform.split(r"\caption")[0]
    assert len(body_rows(original, "TWR-VAE")) == 2  # ours under the original protocol, then the published row


def test_values_bold_and_paper_beside_ours(tmp_path: Path) -> None:
    uniform, original = tables(render(tmp_path))
    twr, vae = body_rows(uniform, "TWR-VAE")[0], body_rows(uniform, "VAE-LSTM")[0]
    assert value(twr[COL["NLL"]]) == ("91.0", "1.4", True)     # lowest NLL bold, mean with std below
    assert value(vae[COL["NLL"]]) == ("100.5", "0.7", False)
    (ours_twr, published_twr), (ours_vae, published_vae) = body_rows(original, "TWR-VAE"), body_rows(original, "VAE-LSTM")
    assert published_twr[COL["NLL"]] == "86.6" and published_vae[COL["NLL"]] == "101.2"  # table 2, not 3
    assert value(ours_twr[COL["MI"]]) == ("3.5", "0.0", True)  # highest MI bold
    assert value(ours_vae[COL["MI"]]) == ("0.2", "0.1", False)
    assert value(twr[COL["KL"]]) == ("5.5", "0.7", False) and value(ours_vae[COL["KL"]]) == ("9.0", "0.0", False)
    assert "999.9" not in uniform + original


def nll_bold(tmp_path: Path, nlls: dict[str, list[float]]) -> dict[str, bool]:
    """Whether each model's uniform NLL is bold, for runs with the given per-seed NLLs."""
    paths = [write_run(tmp_path, model, seed, {"NLL": nll}) for model, values in nlls.items()
             for seed, nll in enumerate(values, 1)]
    uniform, _ = tables(render_lm_table(summarise(collect_results(paths)), load_paper_values(None)))
    return {model: value(body_rows(uniform, model)[0][COL["NLL"]])[2] for model in nlls}


def test_a_single_seed_is_never_bold_however_large_the_gap(tmp_path: Path) -> None:
    assert nll_bold(tmp_path / "one", {"a": [90.0], "b": [100.1]}) == {"a": False, "b": False}
    # several seeds against one: the runner-up's spread is unknown
    assert nll_bold(tmp_path / "mixed", {"a": [90.0, 90.2, 89.8], "b": [100.1]}) == {"a": False, "b": False}


def test_bold_needs_a_gap_beyond_the_seed_spread(tmp_path: Path) -> None:
    # means 90.0 and 100.0, stds 1.0 and 0.5: a clear gap
    assert nll_bold(tmp_path / "clear", {"a": [89.0, 91.0, 90.0], "b": [100.5, 99.5, 100.0]}) == {"a": True, "b": False}
    # means 90.0 and 90.1, std 1.0: the 0.1 lead is within the spread
    assert nll_bold(tmp_path / "close", {"a": [89.0, 91.0, 90.0], "b": [89.1, 91.1, 90.1]}) == {"a": False, "b": False}
    # the best is bold only if it beats the runner-up, whatever the rows behind it
    assert nll_bold(tmp_path / "three", {"a": [89.0, 91.0], "b": [89.5, 91.5], "c": [120.0, 121.0]}) == \
        {"a": False, "b": False, "c": False}


def test_missing_is_dash_not_zero(tmp_path: Path) -> None:
    uniform, original = tables(render(tmp_path))
    assert body_rows(uniform, "VAE-LSTM")[0][COL["MI"]] == "--"   # VAE run reported no uniform MI
    assert body_rows(original, "VAE-LSTM")[1][COL["PPL"]] == "--"  # paper csv has no VAE-LSTM PPL
    assert value(body_rows(uniform, "TWR-VAE")[0][COL["MI"]]) == ("3.5", "0.7", False)  # alone: not bold


def test_caption(tmp_path: Path) -> None:
    uniform, original = tables(render(tmp_path))
    for section in (uniform, original):
        caption = section[section.index(r"\caption{"):]
        assert r"unit\_test" in caption and "KL is not bolded" in caption
        assert "at least 2 seeds and their means differ by more than the larger of their two stds" in caption
        assert r"Reduced data: (PTB) train capped at 5000 of 42068 (12\% kept) \& test\_split." in caption
    assert "$K=500$ samples" in uniform and "PPL" in uniform
    assert "original TWR-VAE code" in original and "mixes protocols" in original


def test_no_reduced_sentence_when_full_data(tmp_path: Path) -> None:
    assert "Reduced data" not in render(tmp_path, reduced=False)


def test_notes_of_full_data_runs_are_named_too(tmp_path: Path) -> None:
    # e.g. the original code's tokenisation: not less data, but other tokens, which the table must say
    note = "twr-vae-code tokenization (as the original TWR-VAE code reads the corpus)"
    runs = [write_run(tmp_path, "twr-vae", 1, {"NLL": 90.0, "PPL": 50.0, "MI": 4.0, "KL": 5.0, "iw_samples": 500},
                      paper_name="TWR-VAE", note=note)]
    tex = render_lm_table(summarise(collect_results(runs)), load_paper_values(None))
    assert f"Data: (PTB) {latex_escape(note)}." in tex and "Reduced data" not in tex


def test_without_paper_file_says_na(tmp_path: Path) -> None:
    _, original = tables(render(tmp_path, paper=False))
    assert body_rows(original, "paper")[0][COL["NLL"]] == "n/a"


def test_label_falls_back_to_model_key_escaped(tmp_path: Path) -> None:
    path = write_run(tmp_path, "my_new#vae", 1, {"NLL": 1.0})
    uniform, _ = tables(render_lm_table(summarise(collect_results([path])), load_paper_values(None)))
    assert body_rows(uniform, r"my\_new\#vae")[0][COL["NLL"]] == "1.0"
    assert "$K$ not recorded" in uniform


def test_latex_escape() -> None:
    assert latex_escape("a_b & 5% #1") == r"a\_b \& 5\% \#1"


def test_write_atomic_and_csv(tmp_path: Path) -> None:
    target = tmp_path / "out" / "t.tex"
    write_text_atomic(target, "x\n")
    write_text_atomic(target, "y\n")
    assert target.read_text() == "y\n"
    write_tidy_csv(pd.DataFrame({"a": [1]}), tmp_path / "out" / "r.csv")
    assert (tmp_path / "out" / "r.csv").read_text() == "a\n1\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.csv", "t.tex"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = make_runs(tmp_path)
    out_csv, out_tex = tmp_path / "tables" / "results.csv", tmp_path / "tables" / "table2.tex"
    argv = ["--results", *map(str, runs), "--paper", str(tmp_path / "missing.csv"),
            "--out-csv", str(out_csv), "--out-tex", str(out_tex), "--caption-extra", "Extra words."]
    assert aggregate.main(argv) == 0
    assert "warning" in capsys.readouterr().err
    tex = out_tex.read_text()
    assert "n/a" in tex and "Extra words." in tex
    tidy = pd.read_csv(out_csv)
    assert len(tidy) == len(collect_results(runs))
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    assert aggregate.main(["--results", str(bad), "--out-csv", str(out_csv), "--out-tex", str(out_tex)]) == 1
    assert "bad.json" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_pdflatex_compiles(tmp_path: Path) -> None:
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                   + render(tmp_path) + "\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_papers_three_datasets_fit_an_article_page(tmp_path: Path) -> None:
    """Table 2's shape (PTB, Yelp15, Yahoo x NLL/PPL/MI/KL, two seeds, the longest row names) compiles without an
    overfull box on an article page -- the layout it replaced was 334 pt too wide."""
    paths = [write_metrics(tmp_path / "r" / dataset, model, seed,
                           {"uniform": {"NLL": 326.1 + seed, "PPL": 118.5, "MI": 3.12, "KL": 15.01},
                            "paper": {"NLL": 325.0, "PPL": 100.2, "MI": 4.2, "KL": 20.1}}, paper_name=name, dataset=dataset)
             for dataset in ("ptb", "yelp15", "yahoo") for model, name in (("twr-vae", "TWR-VAE"), ("sa", "SA-VAE"),
                                                                         ("mean", "TWR-VAE-mean"))
             for seed in (1, 2)]
    (tmp_path / "paper.csv").write_text(PAPER_CSV)
    tex = render_lm_table(summarise(collect_results(paths)), load_paper_values(tmp_path / "paper.csv"), table="2")
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: the width was not measured")
    (tmp_path / "t.tex").write_text(tex)
    assert "Overfull" not in compile_on_article_page(tmp_path, "t.tex")


def test_a_model_without_a_paper_name_is_labelled_from_the_config(tmp_path: Path) -> None:
    """Readable row names: the paper's name, else the config's `label` (metrics.json `label`), else the key."""
    paths = [write_run(tmp_path, "vae-lstm-noanneal", 1, {"NLL": 1.0}, label="VAE-LSTM (no annealing)"),
             write_run(tmp_path, "twr-vae", 1, {"NLL": 2.0}, paper_name="TWR-VAE", label="ignored: the paper's wins")]
    uniform, _ = tables(render_lm_table(summarise(collect_results(paths)), load_paper_values(None)))
    assert value(body_rows(uniform, "VAE-LSTM (no annealing)")[0][COL["NLL"]])[0] == "1.0"
    assert value(body_rows(uniform, "TWR-VAE")[0][COL["NLL"]])[0] == "2.0" and "vae-lstm-noanneal" not in uniform
