# Latent-space interpolation (Figures 2-3, Tables 4/7): decode along z1 -> z2 for pairs of test sentences and
# score ROUGE against both ends; the figures are drawn from results/ only.


rule interpolate:
    input:
        unpack(processed_files),
        model="results/{experiment}/{dataset}/{model}/seed{seed}/model.pt",
    output:
        summary="results/{experiment}/{dataset}/{model}/seed{seed}/interpolation.json",
        samples="results/{experiment}/{dataset}/{model}/seed{seed}/interpolation.jsonl",
    params:
        run=lambda w: run_config_json(w),
        settings=json.dumps(config["interpolate"], sort_keys=True),
        data=lambda w, input: os.path.dirname(input.vocab),
    wildcard_constraints:
        dataset=LM_DATASET_PATTERN,
    threads: 2
    resources:
        gpu=1,
        runtime=120,
        mem_mb=8000,
    log:
        "logs/interpolate/{experiment}/{dataset}/{model}/seed{seed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.interpolate --model {input.model} --data {params.data} --out {output.summary} "
        "--samples-out {output.samples} --settings {params.settings:q} --run-config {params.run:q} "
        "--threads {threads} 2>&1 | tee {log}"


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
        "python -m harness.figures --results {input.summaries} --out-png {output.png} --out-pdf {output.pdf} "
        "--out-examples {output.examples} --examples {params.examples} 2>&1 | tee {log}"
