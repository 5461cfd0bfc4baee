"""The GPU campaign: everything a short GPU window should measure, prepared on the CPU so the window is spent measuring.

    python -m benchmarks.gpu_campaign.prepare            # here, once: processed full PTB + the resolved run configs
    python -m benchmarks.gpu_campaign --device cuda      # on the GPU machine: phases 1-3
    python -m benchmarks.gpu_campaign --device cpu --tiny --out /tmp/x   # all three phases in tiny sizes (CI)

Phases, one JSON each in --out (`phase1.json`, `phase2.json`, `phase3.json`):
  1 correctness  the tests that take the `device` fixture, run on the device (`pytest -m device --device cuda`);
                 a failure names the test and stops the later phases (unless --keep-going)
  2 speed        the benchmarks of `python -m benchmarks` on the device: training step against the original-style
                 step, K = 500 IW-NLL against He et al.'s loop (one sentence, 100 samples per pass), both precisions
  3 paper_runs   full PTB with config/paper.yaml's architecture and optimiser: several methods trained at once, as
                 separate processes on the one device, for a wall-clock budget sized from phase 2, then evaluated
                 under both protocols (K = 500); each run's train_log.json / metrics.json under phase3/<model>/

It runs on an image without snakemake, jsonschema, nltk, rouge-score or gensim: configs are validated by `prepare`
(here) and travel resolved, and the modules the campaign reaches do not import those packages.
"""
