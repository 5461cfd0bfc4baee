# One training job per (dataset, model, seed); resumable from checkpoint.pt in its run folder.


rule train:
    input:
        splits=multiext(DATA + "/processed/{dataset}/", "train.txt", "valid.txt", "test.txt"),
        vocab=DATA + "/processed/{dataset}/vocab.txt",
    output:
        model=RUN_DIR + "/model.pt",
        log=RUN_DIR + "/train_log.json",
    params:
        run=lambda w: run_config_json(w, for_training=True),
        data=DATA + "/processed/{dataset}",
        out=RUN_DIR,
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
        "--threads {threads} 2>&1 | tee {log}"
