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


rule preprocess_lm:
    input:
        manifest=lambda w: f"data/raw/{split_dataset_name(w.processed)[0]}/manifest.json",
    output:
        splits=multiext("data/processed/{processed}/", "train.txt", "valid.txt", "test.txt"),
        vocab="data/processed/{processed}/vocab.txt",
        stats="data/processed/{processed}/stats.json",
    params:
        dataset=lambda w: split_dataset_name(w.processed)[0],
        raw=lambda w, input: os.path.dirname(os.path.dirname(input.manifest)),
        out=lambda w, output: os.path.dirname(output.vocab),
        flags=preprocess_arguments,
    wildcard_constraints:
        processed=rf"({LM_DATASET_PATTERN})(\..+)?",
    log:
        "logs/preprocess/{processed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.preprocess --dataset {params.dataset} --raw {params.raw} --out {params.out} "
        "{params.flags} 2>&1 | tee {log}"


rule preprocess_dialogue:
    input:
        manifest=lambda w: f"data/raw/{split_dataset_name(w.processed)[0]}/manifest.json",
    output:
        splits=multiext("data/processed/{processed}/", "train.jsonl", "valid.jsonl", "test.jsonl"),
        vocab="data/processed/{processed}/vocab.txt",
        stats="data/processed/{processed}/stats.json",
    params:
        dataset=lambda w: split_dataset_name(w.processed)[0],
        raw=lambda w, input: os.path.dirname(os.path.dirname(input.manifest)),
        out=lambda w, output: os.path.dirname(output.vocab),
        flags=preprocess_arguments,
    wildcard_constraints:
        processed=rf"({DIALOGUE_DATASET_PATTERN})(\..+)?",
    log:
        "logs/preprocess/{processed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.data.dialogue --dataset {params.dataset} --raw {params.raw} --out {params.out} "
        "{params.flags} 2>&1 | tee {log}"


rule word_vectors:
    input:
        train="data/processed/{processed}/train.jsonl",
    output:
        vectors="data/processed/{processed}/word2vec.kv",
        description="data/processed/{processed}/word2vec.kv.json",
    log:
        "logs/word_vectors/{processed}.log",
    conda:
        "../envs/harness.yaml"
    shell:
        "python -m harness.word_vectors --train {input.train} --out {output.vectors} 2>&1 | tee {log}"
