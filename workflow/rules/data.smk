# download (or copy from a mirror) and verify checksums, then tokenise into the canonical format.


rule fetch_dataset:
    output:
        manifest="data/raw/{dataset}/manifest.json",
    params:
        mirror=mirror_argument(),
        download=download_arguments(),
        raw=lambda w, output: os.path.dirname(os.path.dirname(output.manifest)),
    log:
        "logs/fetch/{dataset}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.fetch --dataset {wildcards.dataset} --dest {params.raw} "
        "{params.mirror} {params.download} 2>&1 | tee {log}"


rule preprocess_lm:
    input:
        manifest="data/raw/{dataset}/manifest.json",
    output:
        splits=multiext("data/processed/{dataset}/", "train.txt", "valid.txt", "test.txt"),
        vocab="data/processed/{dataset}/vocab.txt",
        stats="data/processed/{dataset}/stats.json",
    params:
        raw=lambda w, input: os.path.dirname(os.path.dirname(input.manifest)),
        out=lambda w, output: os.path.dirname(output.vocab),
        max_vocab=max_vocab_argument,
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.preprocess --dataset {wildcards.dataset} --raw {params.raw} --out {params.out} "
        "{params.max_vocab} 2>&1 | tee {log}"
