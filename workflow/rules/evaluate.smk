# Language models: importance-weighted NLL, PPL, KL, MI, AU (uniform protocol), the original code's numbers (paper
# protocol) and the test set's greedy reconstructions. Dialogue: responses sampled for every test context, scored with
# BLEU / BOW embedding / distinct (Table 5). One command for both: `python -m harness.evaluate` picks the
# run's task.


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/{experiment}/{dataset}/{model}/seed{seed}/metrics.json",
        samples="results/{experiment}/{dataset}/{model}/seed{seed}/samples.jsonl",
    params:
        run=lambda w: run_config_json(w),
        data=lambda w, input: os.path.dirname(input.vocab),
        vectors=lambda w, input: f"--vectors {input.vectors}" if "vectors" in input.keys() else "",
    threads: 2
    resources:
        gpu=1,
        runtime=240,
        mem_mb=8000,
    log:
        "logs/evaluate/{experiment}/{dataset}/{model}/seed{seed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.evaluate --model {input.model} --data {params.data} {params.vectors} --out {output.metrics} "
        "--samples-out {output.samples} --run-config {params.run:q} --threads {threads} 2>&1 | tee {log}"


# Latent-space interpolation (Figures 2-3, Tables 4/7): decode along z1 -> z2 for pairs of test sentences and
# score ROUGE against both ends (harness.evaluate.interpolate).
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
        "python -m harness.evaluate.interpolate --model {input.model} --data {params.data} --out {output.summary} "
        "--samples-out {output.samples} --settings {params.settings:q} --run-config {params.run:q} "
        "--threads {threads} 2>&1 | tee {log}"
