# Importance-weighted NLL, PPL, KL, MI, AU (uniform protocol) and the original code's numbers (paper protocol).


rule evaluate:
    input:
        unpack(processed_files),
        model="results/{experiment}/{dataset}/{model}/seed{seed}/model.pt",
    output:
        metrics="results/{experiment}/{dataset}/{model}/seed{seed}/metrics.json",
    params:
        run=lambda w: run_config_json(w),
        data=lambda w, input: os.path.dirname(input.vocab),
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
        "python -m harness.evaluate --model {input.model} --data {params.data} --out {output.metrics} "
        "--run-config {params.run:q} --threads {threads} 2>&1 | tee {log}"
