# Latent-space interpolation figures (Figures 2-3, Tables 4/7), drawn from results/ only: the `interpolate` jobs
# (workflow/rules/evaluate.smk) wrote each run's interpolation.json.


rule interpolation_figure:
    input:
        summaries=lambda w: interpolation_files(w.dataset),
        samples=lambda w: [path.replace(".json", ".jsonl") for path in interpolation_files(w.dataset)],
    output:
        png=report(
            f"{FIGURES}/fig2_{{dataset}}.png",
            caption="../report/interpolation_figure.rst",
            category="Figures",
            labels={"figure": "interpolation ROUGE", "dataset": "{dataset}"},
        ),
        pdf=f"{FIGURES}/fig2_{{dataset}}.pdf",
        examples=report(
            f"{TABLES}/table4_{{dataset}}.txt",
            caption="../report/interpolation_examples.rst",
            category="Tables",
            labels={"table": "4/7 interpolation examples", "dataset": "{dataset}"},
        ),
    params:
        examples=config["interpolate"]["examples"],
        provenance=lambda w: report_provenance(),
    wildcard_constraints:
        dataset=LM_DATASET_PATTERN,
    log:
        f"logs/{config['experiment']}/figures/fig2_{{dataset}}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.report.figures --results {input.summaries} --out-png {output.png} --out-pdf {output.pdf} "
        "--out-examples {output.examples} --examples {params.examples} 2>&1 | tee {log}"
