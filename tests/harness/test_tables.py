"""Tests of harness.tables and the harness.aggregate CLI: LaTeX layout, bolding, paper values, captions."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_metrics
from harness import aggregate
from harness.results import collect_results, load_paper_values, summarise
from harness.io import write_text_atomic
from harness.tables import latex_escape, render_lm_table, write_tidy_csv

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


def body_row(tex: str, label: str) -> list[str]:
    """Cells of the body row whose first cell is `label`."""
    for line in tex.splitlines():
        cells = [c.strip() for c in line.removesuffix(r"\\").split(" & ")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in\n{tex}")


# column index of (metric, sub-column) for one dataset: 1 + metric_idx * 3 + sub
COL = {(m, s): 1 + i * 3 + j for i, m in enumerate(["NLL", "PPL", "MI", "KL"]) for j, s in enumerate(["iw", "orig", "paper"])}


def test_structure_balanced(tmp_path: Path) -> None:
    tex = render(tmp_path)
    assert tex.count("{") == tex.count("}")
    depth = 0
    for ch in tex.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    for token in (r"\begin{tabular}", r"\end{tabular}", r"\toprule", r"\midrule", r"\bottomrule",
                  r"\begin{table*}", r"\end{table*}", r"\caption{"):
        assert tex.count(token) == 1, token
    assert tex.index(r"\begin{tabular}") < tex.index(r"\toprule") < tex.index(r"\bottomrule") < tex.index(r"\end{tabular}")
    n_cols = len(re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1))
    assert n_cols == 1 + 12
    for label in ("TWR-VAE", "VAE-LSTM", "Model"):
        assert len(body_row(tex, label)) == n_cols
    assert "ours (IW)" in tex and "ours (paper prot.)" in tex and "paper" in tex
    assert r"\multicolumn{12}{c}{PTB}" in tex


def test_values_bold_and_paper_beside_ours(tmp_path: Path) -> None:
    tex = render(tmp_path)
    twr, vae = body_row(tex, "TWR-VAE"), body_row(tex, "VAE-LSTM")
    assert twr[COL["NLL", "iw"]] == r"\textbf{91.0 $\pm$ 1.4}"          # lowest NLL bold, mean ± std
    assert vae[COL["NLL", "iw"]] == r"100.5 $\pm$ 0.7"
    assert twr[COL["NLL", "paper"]] == "86.6" and vae[COL["NLL", "paper"]] == "101.2"   # table 2, not 3
    assert twr[COL["MI", "orig"]] == r"\textbf{3.5 $\pm$ 0.0}"            # highest MI bold
    assert vae[COL["MI", "orig"]] == r"0.2 $\pm$ 0.1"
    assert twr[COL["KL", "iw"]] == r"5.5 $\pm$ 0.7" and vae[COL["KL", "orig"]] == r"9.0 $\pm$ 0.0"  # KL never bold
    assert r"\textbf" not in twr[COL["KL", "iw"]] + vae[COL["KL", "iw"]]
    assert "999.9" not in tex


def test_missing_is_dash_not_zero(tmp_path: Path) -> None:
    tex = render(tmp_path)
    vae = body_row(tex, "VAE-LSTM")
    assert vae[COL["MI", "iw"]] == "--"             # VAE run reported no uniform MI
    assert vae[COL["PPL", "paper"]] == "--"         # paper csv has no VAE-LSTM PPL
    twr = body_row(tex, "TWR-VAE")
    assert twr[COL["MI", "iw"]] == r"3.5 $\pm$ 0.7"  # alone in its column: not bold


def test_caption(tmp_path: Path) -> None:
    tex = render(tmp_path)
    caption = tex[tex.index(r"\caption{"):]
    assert r"unit\_test" in caption
    assert "$K=500$ samples" in caption
    assert "PPL" in caption and "original TWR-VAE code" in caption and "mixes protocols" in caption
    assert "KL is not bolded" in caption
    assert r"Reduced data: (PTB) train capped at 5000 of 42068 (12\% kept) \& test\_split." in caption


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
    tex = render(tmp_path, paper=False)
    assert body_row(tex, "TWR-VAE")[COL["NLL", "paper"]] == "n/a"


def test_label_falls_back_to_model_key_escaped(tmp_path: Path) -> None:
    path = write_run(tmp_path, "my_new#vae", 1, {"NLL": 1.0})
    tex = render_lm_table(summarise(collect_results([path])), load_paper_values(None))
    assert body_row(tex, r"my\_new\#vae")[COL["NLL", "iw"]] == "1.0"
    assert "$K$ not recorded" in tex


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
