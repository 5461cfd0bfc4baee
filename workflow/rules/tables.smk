# Tables are rendered from results/ only, with the paper's published value beside ours.


rule table:
    input:
        metrics=lambda w: metrics_files(w.table),
    output:
        tex=f"{TABLES}/table{{table}}.tex",
        csv=report(
            f"{TABLES}/table{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "content": "ours beside the paper"},
        ),
        significance=f"{TABLES}/table{{table}}_significance.csv",
    wildcard_constraints:
        table="[235]",
    params:
        paper=config["paper_values"] or "",
        reference=config["significance"]["reference"],
        provenance=lambda w: report_provenance(),
    log:
        f"logs/{config['experiment']}/tables/table{{table}}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.report.aggregate --results {input.metrics} --paper '{params.paper}' "
        "--out-csv {output.csv} --out-tex {output.tex} --out-significance {output.significance} --table {wildcards.table} "
        "--reference {params.reference:q} 2>&1 | tee {log}"


rule dialogue_examples:
    input:
        samples=lambda w: [path.replace("metrics.json", "samples.jsonl") for path in metrics_files("5", first_seed=True)],
    output:
        report(
            f"{TABLES}/table6.txt",
            caption="../report/dialogue_examples.rst",
            category="Tables",
            labels={"table": "6 dialogue examples", "content": "sampled responses"},
        ),
    params:
        provenance=lambda w: report_provenance(),
    log:
        f"logs/{config['experiment']}/tables/table6.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.report.dialogue_examples --samples {input.samples} --out {output} 2>&1 | tee {log}"


rule dataset_table:
    # Table 1: the datasets the experiment uses, from their processed stats.json and the config's data options
    input:
        stats=lambda w: [f"{processed_dir_of(dataset)}/stats.json" for dataset in AVAILABLE_DATASETS],
    output:
        tex=f"{TABLES}/table1.tex",
        csv=f"{TABLES}/table1.csv",
    params:
        stats=lambda w, input: " ".join(f"{dataset}={path}" for dataset, path in zip(AVAILABLE_DATASETS, input.stats)),
        options=json.dumps({dataset: config["data_options"].get(dataset, {}) for dataset in config["datasets"]}),
        experiment=config["experiment"],
    log:
        f"logs/{config['experiment']}/tables/table1.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.report.dataset_table --stats {params.stats} --data-options {params.options:q} "
        "--experiment {params.experiment:q} --out-tex {output.tex} --out-csv {output.csv} 2>&1 | tee {log}"


rule tables_pdf:
    # every table and figure of the experiment in one PDF (only where pdflatex is installed: rule `all` asks for it
    # then, and says once that it does not otherwise)
    input:
        tex=lambda w: table_files(),
        figures=lambda w: [path for path in figure_files() if path.endswith(".pdf")],
    output:
        f"{TABLES}/tables.pdf",
    params:
        title=lambda w: f"experiment {config['experiment']}",
    log:
        f"logs/{config['experiment']}/tables/tables_pdf.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.report.tables_pdf --tex {input.tex} --figures {input.figures} --title {params.title:q} "
        "--out {output} 2>&1 | tee {log}"
