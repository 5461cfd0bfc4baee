# One training job per (dataset, model, seed); resumable from checkpoint.pt in its run folder.


rule train:
    input:
        unpack(training_inputs),
    output:
        model="results/{experiment}/{dataset}/{model}/seed{seed}/model.pt",
        log="results/{experiment}/{dataset}/{model}/seed{seed}/train_log.json",
    params:
        run=lambda w: run_config_json(w, for_training=True),
        data=lambda w, input: os.path.dirname(input.vocab),
        out=lambda w, output: os.path.dirname(output.model),
        vectors=lambda w, input: f"--vectors {input.vectors}" if "vectors" in input.keys() else "",
        on_code_change=EXPERIMENT.on_code_change,  # `--config on_code_change=restart` (schema: refuse by default)
    threads: 2
    resources:
        gpu=1,
        runtime=720,
        mem_mb=8000,
    log:
        "logs/train/{experiment}/{dataset}/{model}/seed{seed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.train --run-config {params.run:q} --data {params.data} --out {params.out} "
        "{params.vectors} --on-code-change {params.on_code_change} --threads {threads} 2>&1 | tee {log}"
