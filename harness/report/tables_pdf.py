"""All tables and figures of one experiment in one PDF, to look at before pasting the LaTeX into a paper.

    python -m harness.report.tables_pdf --tex results/smoke/tables/table*.tex --figures results/smoke/figures/*.pdf \
        --title "experiment smoke" --out results/smoke/tables/tables.pdf

Compiles an article that \\input{}s every table and includes every figure, with `pdflatex -halt-on-error` in a
scratch folder, and moves the PDF into place only when it compiled: a table that does not compile fails the job,
naming the table and the LaTeX error. The workflow runs it only where pdflatex is installed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.core.io import atomic_write
from harness.report.tables import latex_escape

PREAMBLE = "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{array}\n\\usepackage{graphicx}\n"


def staged_names(tables: list[Path], figures: list[Path]) -> dict[Path, str]:
    """The name each file gets in the scratch folder: numbered, so that two tables of one name from different folders
    (say two CPUs' table2.tex) do not overwrite each other there."""
    names = {table: f"t{i:02d}-{table.name}" for i, table in enumerate(tables, 1)}
    names.update({figure: f"f{i:02d}-{figure.name}" for i, figure in enumerate(figures, 1)})
    return names


def document(tables: list[Path], figures: list[Path], title: str, names: dict[Path, str]) -> str:
    """The combined article over the files as `build` stages them (`names`: staged_names)."""
    body = [f"\\section*{{{latex_escape(title)}}}"]
    body += [f"\\input{{{names[table]}}}\n\\clearpage" for table in tables]
    body += [f"\\begin{{figure}}[p]\\centering\\includegraphics[width=\\textwidth]{{{names[figure]}}}"
             f"\\par\\small {latex_escape(figure.name)}\\end{{figure}}\n\\clearpage" for figure in figures]
    return PREAMBLE + "\\begin{document}\n" + "\n".join(body) + "\n\\end{document}\n"


def build(tables: list[Path], figures: list[Path], title: str, out: Path) -> None:
    if shutil.which("pdflatex") is None:
        raise RuntimeError("pdflatex is not installed (Debian/Ubuntu: apt-get install texlive-latex-base "
                           "texlive-latex-recommended); the .tex tables are written regardless")
    with tempfile.TemporaryDirectory(prefix="textvae-pdf-") as scratch:
        folder = Path(scratch)
        names = staged_names(tables, figures)
        for path, name in names.items():
            shutil.copyfile(path, folder / name)
        (folder / "tables.tex").write_text(document(tables, figures, title, names))
        for table in tables:  # one at a time first, so that an error names its table
            (folder / "one.tex").write_text(PREAMBLE + "\\begin{document}\n\\input{" + names[table] + "}\n\\end{document}\n")
            _pdflatex(folder, "one.tex", str(table))
        _pdflatex(folder, "tables.tex", "the combined document")
        atomic_write(out, lambda tmp: shutil.copyfile(folder / "tables.pdf", tmp))


def _pdflatex(folder: Path, name: str, what: str) -> None:
    compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name], cwd=folder,
                              capture_output=True, text=True, timeout=300)
    if compiled.returncode != 0:
        error = next((line for line in compiled.stdout.splitlines() if line.startswith("!")), "see the log")
        raise RuntimeError(f"{what} does not compile: {error}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tex", nargs="+", type=Path, required=True)
    parser.add_argument("--figures", nargs="*", type=Path, default=[])
    parser.add_argument("--title", default="tables and figures")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        build(sorted(args.tex), sorted(args.figures), args.title, args.out)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
