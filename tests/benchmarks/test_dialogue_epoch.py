"""benchmarks.dialogue_epoch: the ratios it reports and its refusals (the timing itself is a benchmark, not a test)."""
from __future__ import annotations

import pytest

from benchmarks import dialogue_epoch


def record(checkout, precision, seconds, model="cvae", repeat=0):
    return {"model": model, "checkout": checkout, "precision": precision, "seconds_per_batch": seconds,
            "repeat": repeat}


def test_ratios_are_medians_over_repeats_against_this_checkouts_float32():
    records = [record(0, "float32", 2.0), record(0, "float32", 4.0, repeat=1), record(0, "float32", 3.0, repeat=2),
               record(0, "bfloat16", 1.5), record(1, "float32", 6.0),
               {"model": "cvae", "checkout": 1, "precision": "bfloat16", "error": "no bf16", "repeat": 0}]
    assert dialogue_epoch.ratios(records) == {"cvae": {"checkout0 float32": 1.0, "checkout0 bfloat16": 0.5,
                                                       "checkout1 float32": 2.0}}


def test_missing_data_or_a_folder_that_is_no_checkout_is_one_error_line(tmp_path, capsys):
    assert dialogue_epoch.main(["--raw", str(tmp_path)]) == 2
    assert "fetch DailyDialog first" in capsys.readouterr().err
    (tmp_path / "dailydialog").mkdir()
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--compare", str(tmp_path)]) == 2
    assert "is not a checkout of this repository" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("argv", [["--help"]])
def test_the_command_line_documents_itself(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        dialogue_epoch.main(argv)
    assert exit_info.value.code == 0 and "--compare" in capsys.readouterr().out


def test_the_adversarial_phase_starts_seqgans_schedule_in_its_adversarial_updates(tmp_path):
    """`seqgan@adversarial` times REINFORCE updates, not the MLE pre-training the recipe starts with."""
    from baselines.seqgan import SeqGAN, SeqGANOptions
    from harness.core.config import REPO_ROOT, ExperimentConfig

    paper = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml").run_config("dailydialog", "seqgan", 1)
    options = {k: v for k, v in paper.model.options.items() if k in SeqGANOptions.__dataclass_fields__}
    recipe = SeqGAN(50, SeqGANOptions(**options))
    phased = SeqGAN(50, SeqGANOptions(**{**options, **dialogue_epoch.PHASES["adversarial"]}))
    assert recipe.phase(16) == "mle" and phased.phase(0) == phased.phase(16) == "adversarial"
    with pytest.raises(ValueError, match="unknown phase 'warmup'"):
        dialogue_epoch.measure("seqgan@warmup", "float32", 2, tmp_path, tmp_path)
