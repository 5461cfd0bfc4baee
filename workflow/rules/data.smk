# download (or copy from a mirror) and verify checksums, then tokenise into the canonical format.


rule fetch_dataset:
    output:
        manifest="data/raw/{dataset}/manifest.json",
    params:
        flags=fetch_arguments,
        raw=lambda w, output: os.path.dirname(os.path.dirname(output.manifest)),
    log:
        "logs/fetch/{dataset}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.fetch --dataset {wildcards.dataset} --dest {params.raw} {params.flags} 2>&1 | tee {log}"


rule preprocess:
    # one rule for both tasks: harness.data.preprocess writes the task's split files (<role>.txt or <role>.jsonl),
    # vocab.txt and, last, stats.json, whose presence marks a complete output (later rules take it as input)
    input:
        manifest=lambda w: f"data/raw/{split_dataset_name(w.processed)[0]}/manifest.json",
    output:
        vocab="data/processed/{processed}/vocab.txt",
        stats="data/processed/{processed}/stats.json",
    params:
        dataset=lambda w: split_dataset_name(w.processed)[0],
        raw=lambda w, input: os.path.dirname(os.path.dirname(input.manifest)),
        out=lambda w, output: os.path.dirname(output.vocab),
        flags=preprocess_arguments,
    log:
        "logs/preprocess/{processed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.preprocess --dataset {params.dataset} --raw {params.raw} --out {params.out} "
        "{params.flags} 2>&1 | tee {log}"


rule word_vectors:
    input:
        stats="data/processed/{processed}/stats.json",
    output:
        vectors="data/processed/{processed}/word2vec.kv",
        description="data/processed/{processed}/word2vec.kv.json",
    log:
        "logs/word_vectors/{processed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.word_vectors --train data/processed/{wildcards.processed}/train.jsonl --out {output.vectors} "
        "2>&1 | tee {log}"
