# Tables are rendered from results/ only, with the paper's published value beside ours.


rule table2:
    input:
        metrics=metrics_files("2"),
    output:
        tex="results/tables/table2.tex",
        csv="results/tables/table2.csv",
    params:
        paper=config["paper_values"] or "",
        caption=training_budget_caption(),
    log:
        "logs/tables/table2.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.aggregate --results {input.metrics} --paper '{params.paper}' "
        "--out-csv {output.csv} --out-tex {output.tex} --table 2 --caption-extra {params.caption:q} 2>&1 | tee {log}"
