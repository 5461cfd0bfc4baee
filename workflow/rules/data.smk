# download (or copy from a mirror) and verify checksums, then tokenise into the canonical format.


rule fetch_dataset:
    output:
        manifest=DATA + "/raw/{dataset}/manifest.json",
    params:
        mirror=mirror_argument(),
        download=download_arguments(),
        raw=DATA + "/raw",
    log:
        "logs/fetch/{dataset}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.fetch --dataset {wildcards.dataset} --dest {params.raw} "
        "{params.mirror} {params.download} 2>&1 | tee {log}"


rule preprocess_lm:
    input:
        manifest=DATA + "/raw/{dataset}/manifest.json",
    output:
        splits=multiext(DATA + "/processed/{dataset}/", "train.txt", "valid.txt", "test.txt"),
        vocab=DATA + "/processed/{dataset}/vocab.txt",
        stats=DATA + "/processed/{dataset}/stats.json",
    params:
        raw=DATA + "/raw",
        out=DATA + "/processed/{dataset}",
        max_vocab=lambda w: config["data_options"].get(w.dataset, {}).get("max_vocab") or "",
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.preprocess --dataset {wildcards.dataset} --raw {params.raw} --out {params.out} "
        "$( [ -n '{params.max_vocab}' ] && echo --max-vocab {params.max_vocab} ) 2>&1 | tee {log}"
