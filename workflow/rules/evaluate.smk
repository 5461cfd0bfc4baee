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
    wildcard_constraints:
        dataset=LM_DATASET_PATTERN,
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


# Dialogue: sample responses for every test context, score BLEU / BOW embedding / distinct (Table 5).


rule evaluate_dialogue:
    input:
        unpack(processed_files),
        model="results/{experiment}/{dataset}/{model}/seed{seed}/model.pt",
        vectors=word_vectors_file,
    output:
        metrics="results/{experiment}/{dataset}/{model}/seed{seed}/metrics.json",
        samples="results/{experiment}/{dataset}/{model}/seed{seed}/samples.jsonl",
    params:
        run=lambda w: run_config_json(w),
        data=lambda w, input: os.path.dirname(input.vocab),
    wildcard_constraints:
        dataset=DIALOGUE_DATASET_PATTERN,
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
        "python -m harness.dialogue_evaluate --model {input.model} --data {params.data} --vectors {input.vectors} "
        "--out {output.metrics} --samples-out {output.samples} --run-config {params.run:q} --threads {threads} "
        "2>&1 | tee {log}"
