"""harness.report.tables_pdf: every table of an experiment in one PDF; a table that does not compile is named."""
from __future__ import annotations

import shutil

import pytest

from harness.report.tables_pdf import main

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")

TABLE = "\\begin{table}\\centering\\begin{tabular}{lr}\\toprule a & 1.0 \\\\ \\bottomrule\\end{tabular}" \
        "\\caption{A caption with an escaped table2\\_significance.csv}\\end{table}\n"


def test_the_pdf_holds_every_table(tmp_path):
    (tmp_path / "table1.tex").write_text(TABLE)
    (tmp_path / "table2.tex").write_text(TABLE)
    out = tmp_path / "out" / "tables.pdf"
    assert main(["--tex", str(tmp_path / "table1.tex"), str(tmp_path / "table2.tex"), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF"


def test_a_table_that_does_not_compile_is_named_and_nothing_is_written(tmp_path, capsys):
    (tmp_path / "table1.tex").write_text(TABLE)
    (tmp_path / "table2.tex").write_text(TABLE.replace("\\_", "_"))  # an unescaped underscore outside math
    out = tmp_path / "tables.pdf"
    assert main(["--tex", str(tmp_path / "table1.tex"), str(tmp_path / "table2.tex"), "--out", str(out)]) == 2
    assert "table2.tex does not compile" in capsys.readouterr().err and not out.exists()


def test_two_tables_of_one_name_from_different_folders_are_both_compiled(tmp_path, capsys):
    """Two CPUs' table2.tex: the bad one must be compiled (and named by its path), not overwritten by the good one."""
    good, bad = tmp_path / "cpu-a" / "table2.tex", tmp_path / "cpu-b" / "table2.tex"
    good.parent.mkdir(), bad.parent.mkdir()
    good.write_text(TABLE)
    bad.write_text(TABLE.replace("\\_", "_"))
    out = tmp_path / "tables.pdf"
    assert main(["--tex", str(bad), str(good), "--out", str(out)]) == 2
    assert f"{bad} does not compile" in capsys.readouterr().err and not out.exists()
    bad.write_text(TABLE)
    assert main(["--tex", str(bad), str(good), "--out", str(out)]) == 0 and out.read_bytes()[:4] == b"%PDF"
