"""benchmarks.dialogue_epoch: the ratios it reports and its refusals (the timing itself is a benchmark, not a test)."""
from __future__ import annotations

import json

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
    assert "dailydialog not found: fetch it first" in capsys.readouterr().err
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--dataset", "ptb"]) == 2
    assert "ptb not found: fetch it first" in capsys.readouterr().err
    (tmp_path / "ptb").mkdir()
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--dataset", "ptb", "--original", str(tmp_path)]) == 2
    assert "--original times the original's DailyDialog script" in capsys.readouterr().err
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


# ---- --original: ruizheliUOA/TWR-VAE's dialogue script, patched, timed beside twr-cvae-dailydialog ------------------

def original_line(epoch, seconds, examples=2016, updates=21):
    """One JSON line as the patched original's --record writes it (its training part)."""
    return {"seed": 1, "epoch": epoch, "train_recon": 120.0, "train_kl": 1.5, "train_ppl_printed": 30.0,
            "train_seconds": seconds, "eval_seconds": None, "evaluated": False, "train_dialogues": 192,
            "train_examples": examples, "train_batches": updates, "train_words_incl_eos": 30000, "threads": 1,
            "full_train_dialogues": 11118, "full_train_batches": 782, "full_train_examples": 75072}


def test_the_originals_record_times_its_last_epoch_per_example_and_projects_its_full_split():
    record = dialogue_epoch.original_record([original_line(1, 70.0), original_line(2, 63.0)], 192)
    assert record["side"] == "original" and record["epochs_run"] == 2 and record["epoch_timed"] == 2
    assert record["train_seconds"] == 63.0 and record["train_seconds_per_epoch"] == [70.0, 63.0]
    assert record["examples_timed"] == 2016 and record["updates_timed"] == 21
    assert record["seconds_per_example"] == pytest.approx(63.0 / 2016)
    assert record["seconds_per_update"] == pytest.approx(3.0)
    assert record["projected_epoch_seconds"] == pytest.approx(63.0 / 2016 * 75072)
    assert record["full_train_updates"] == 782 and "seconds_per_batch" not in record
    assert record["compared_with"] == "twr-cvae-dailydialog"
    assert record["original_fields"] == {"train_recon": 120.0, "train_kl": 1.5, "train_ppl_printed": 30.0,
                                    "train_words_incl_eos": 30000}


def test_ratios_against_the_original_are_this_checkouts_twr_cvae_seconds_per_example_over_the_originals():
    def ours(precision, seconds_per_example, repeat=0, checkout=0):
        return {**record(checkout, precision, seconds_per_example * 96, model="twr-cvae-dailydialog", repeat=repeat),
                "seconds_per_example": seconds_per_example, "batch_size": 96}

    original = [{**dialogue_epoch.original_record([original_line(1, s), original_line(2, s)], 192), "repeat": r}
                for r, s in enumerate((60.48, 80.64, 70.56))]  # 0.030, 0.040, 0.035 s/example
    records = [ours("float32", 0.020), ours("float32", 0.010, repeat=1), ours("float32", 0.014, repeat=2),
               ours("bfloat16", 0.007), ours("float32", 0.5, checkout=1), record(0, "float32", 2.0), *original,
               {"model": "original", "side": "original", "checkout": "original", "precision": "float32",
                "error": "the original failed", "repeat": 3}]
    out = dialogue_epoch.ratios(records)
    assert out["twr-cvae-dailydialog"]["original float32"] == pytest.approx(0.014 / 0.035)
    assert out["twr-cvae-dailydialog"]["original bfloat16"] == pytest.approx(0.007 / 0.035)
    assert out["twr-cvae-dailydialog"]["checkout0 bfloat16"] == pytest.approx(0.5)  # the per-batch ratios as before
    assert "original float32" not in out["cvae"] and "original" not in out


def test_ratios_without_an_original_timing_have_no_original_entry():
    records = [record(0, "float32", 2.0, model="twr-cvae-dailydialog"),
               {"model": "original", "side": "original", "checkout": "original", "precision": "float32",
                "error": "the original failed", "repeat": 0}]
    assert dialogue_epoch.ratios(records) == {"twr-cvae-dailydialog": {"checkout0 float32": 1.0}}


def patched_original(folder, model="twr-cvae-dailydialog"):
    """A folder with the files and patch markers benchmarks.dialogue_epoch looks for (no working code)."""
    original = dialogue_epoch.ORIGINALS[model]
    for name in original.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(" ".join(original.markers.get(name, ())))
    return folder


def test_a_folder_that_is_not_a_patched_original_is_refused_naming_what_is_missing(tmp_path, capsys):
    (tmp_path / "dailydialog").mkdir()
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err

    unpatched = tmp_path / "dialogue_dd"
    (unpatched / "data").mkdir(parents=True)
    (unpatched / "train_dailydial.py").write_text("parser.add_argument('--seed', type=int, default=1111)\n")
    (unpatched / "models_dailydial.py").write_text("decoded_words = np.zeros((2, 3), dtype=np.int)\n")
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", str(unpatched),
                                "--out", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "is not a patched copy of ruizheliUOA/TWR-VAE's dialogue_dd/" in err
    for missing in ("no utils_dailydial.py", "no data/train.utts.txt", "lacks '--record'", "lacks '--no_eval'",
                    "models_dailydial.py still has dtype=np.int)"):
        assert missing in err
    assert "no train_dailydial.py" not in err and not (tmp_path / "out.json").exists()
    assert dialogue_epoch.original_problems(patched_original(tmp_path / "patched")) == []


def test_dialogwaes_original_is_named_model_equals_folder_and_checked_for_its_own_patches(tmp_path, capsys):
    (tmp_path / "dailydialog").mkdir()
    wae = dialogue_epoch.ORIGINALS["dialogwae"]
    pristine = tmp_path / "DialogWAE"
    for name in wae.files:
        (pristine / name).parent.mkdir(parents=True, exist_ok=True)
        (pristine / name).write_text("")
    (pristine / "models" / "dialogwae.py").write_text("one = gData(torch.FloatTensor([1]))\n")
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", f"dialogwae={pristine}"]) == 2
    err = capsys.readouterr().err
    assert "is not a patched copy of guxd/DialogWAE" in err and "train.py lacks '--no_gpu'" in err
    assert "models/dialogwae.py still has torch.FloatTensor([1])" in err
    assert dialogue_epoch.original_problems(patched_original(tmp_path / "wae", "dialogwae"), wae) == []
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", f"sa-vae={pristine}"]) == 2
    assert "no original code is registered for 'sa-vae'" in capsys.readouterr().err
    assert dialogue_epoch.parse_original(str(pristine)) == ("twr-cvae-dailydialog", pristine)  # as before


def test_dialogwaes_original_runs_plain_dialogwae_on_dailydialog_in_groups_of_32(tmp_path):
    wae = dialogue_epoch.ORIGINALS["dialogwae"]
    command = dialogue_epoch.original_command(tmp_path, tmp_path / "raw.jsonl", 576, 2, 1, wae)
    assert command[1] == str(tmp_path / "train.py")
    options = dict(zip(command[2::1], command[3::1]))
    assert options["--model"] == "DialogWAE" and options["--dataset"] == "DailyDial"  # not the default GMP
    assert options["--data_path"] == f"{tmp_path}/data/" and options["--max_train_dialogues"] == "576"
    assert "--no_gpu" in command and "--no_eval" in command and options["--threads"] == "1"
    # 12 harness batches of 32 (config/paper.yaml) = 384 examples; a group of 32 dialogues gives 475 x 32 / 347 =
    # 43.8 of them
    assert dialogue_epoch.original_default_dialogues(12, 32, wae) == 32 * 9


def test_ratios_pair_each_original_with_the_model_it_was_compared_with():
    def ours(model, precision, seconds_per_example, batch_size):
        return {**record(0, precision, seconds_per_example * batch_size, model=model),
                "seconds_per_example": seconds_per_example, "batch_size": batch_size}

    wae_line = {**original_line(2, 32.0, examples=160, updates=5), "full_train_batches": 475,
                "full_train_examples": 15200}
    records = [ours("dialogwae", "float32", 0.05, 32), ours("dialogwae", "bfloat16", 0.02, 32),
               ours("twr-cvae-dailydialog", "float32", 0.01, 96),
               {**dialogue_epoch.original_record([wae_line], 64, dialogue_epoch.ORIGINALS["dialogwae"]),
                "repeat": 0},  # 0.2 s/example
               {**dialogue_epoch.original_record([original_line(2, 40.32)], 192), "repeat": 0}]  # 0.02 s/example
    out = dialogue_epoch.ratios(records)
    assert out["dialogwae"]["original float32"] == pytest.approx(0.25)
    assert out["dialogwae"]["original bfloat16"] == pytest.approx(0.1)
    assert out["twr-cvae-dailydialog"]["original float32"] == pytest.approx(0.5)
    assert records[3]["projected_epoch_seconds"] == pytest.approx(0.2 * 15200)
    legacy = {key: value for key, value in records[4].items() if key != "compared_with"}  # files before the registry
    assert dialogue_epoch.ratios([*records[:4], legacy]) == out


def test_dialogwaes_original_gets_whole_groups_for_its_recipes_batch_and_is_timed_only_beside_its_model(
        tmp_path, capsys, monkeypatch):
    (tmp_path / "dailydialog").mkdir()
    folder = patched_original(tmp_path / "wae", "dialogwae")
    out = tmp_path / "out.json"
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", f"dialogwae={folder}", "--out", str(out)]) == 2
    assert "dialogwae is not among the timed --models (cvae,twr-cvae-dailydialog)" in capsys.readouterr().err
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--models", "dialogwae", "--original", f"dialogwae={folder}",
                                "--original", f"dialogwae={folder}", "--out", str(out)]) == 2
    assert "names dialogwae's original twice" in capsys.readouterr().err
    assert not out.exists()
    timed = []
    monkeypatch.setattr(dialogue_epoch, "run_measurement", lambda checkout, args: {
        "model": args[1], "precision": args[3], "seconds_per_batch": 1.0, "batch_size": 32, "full_epoch_batches": 1,
        "projected_epoch_seconds": 1.0})
    monkeypatch.setattr(dialogue_epoch, "run_original", lambda directory, dialogues, epochs, threads, original: (
        timed.append((original.model, dialogues)) or {"model": "original", "side": "original", "checkout": "original",
                                                      "precision": "float32", "error": "not run (test)"}))
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--models", "dialogwae", "--precisions", "float32",
                                "--original", f"dialogwae={folder}", "--out", str(out)]) == 0
    assert timed == [("dialogwae", 32 * 9)]  # config/paper.yaml's batch 32: 12 x 32 examples, 43.8 per group
    assert set(json.loads(out.read_text())["originals"]) == {"dialogwae"}


def test_an_original_folder_whose_path_holds_an_equals_sign_is_still_a_folder(tmp_path):
    folder = tmp_path / "run=1" / "dialogue_dd"
    folder.mkdir(parents=True)
    assert dialogue_epoch.parse_original(str(folder)) == ("twr-cvae-dailydialog", folder)
    assert dialogue_epoch.parse_original(f"dialogwae={folder}") == ("dialogwae", folder)
    with pytest.raises(ValueError, match="no folder after dialogwae="):
        dialogue_epoch.parse_original("dialogwae=")


def test_the_originals_dialogues_are_whole_grids_of_96(tmp_path, capsys):
    (tmp_path / "dailydialog").mkdir()
    original = patched_original(tmp_path / "dialogue_dd")
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--original", str(original),
                                "--original-dialogues", "100"]) == 2
    assert "not a positive multiple of 96" in capsys.readouterr().err
    assert [dialogue_epoch.original_default_dialogues(b) for b in (1, 4, 12, 104)] == [96, 96, 192, 1440]
    wae = patched_original(tmp_path / "wae", "dialogwae")
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--models", "dialogwae", "--original", f"dialogwae={wae}",
                                "--original-dialogues", "48"]) == 2
    assert "not a positive multiple of 32" in capsys.readouterr().err


def test_the_original_runs_on_the_cpu_with_the_same_threads_without_test_scoring(tmp_path):
    command = dialogue_epoch.original_command(tmp_path, tmp_path / "raw.jsonl", 192, 2, 1)
    assert command[1] == str(tmp_path / "train_dailydial.py") and "--no_gpu" in command and "--no_eval" in command
    options = dict(zip(command[2::1], command[3::1]))
    assert options["--threads"] == "1" and options["--max_train_dialogues"] == "192" and options["--epochs"] == "2"
    assert options["--seed"] == "1" and options["--data_path"].endswith("/data/")


def test_ratios_of_a_bfloat16_only_run_are_against_this_checkouts_bfloat16():
    records = [record(0, "bfloat16", 2.0), record(1, "bfloat16", 3.0), record(1, "bfloat16", 5.0, repeat=1)]
    assert dialogue_epoch.ratios(records) == {"cvae": {"checkout0 bfloat16": 1.0, "checkout1 bfloat16": 2.0}}


@pytest.mark.parametrize("precisions, message", [("float16", "give float32 and/or bfloat16"),
                                                 (",", "give float32 and/or bfloat16")])
def test_an_unknown_precision_is_one_error_line_before_anything_is_timed(tmp_path, capsys, precisions, message):
    (tmp_path / "dailydialog").mkdir()
    out = tmp_path / "out.json"
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--precisions", precisions, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bfloat16_asked_of_a_cpu_without_it_is_refused_saying_why(tmp_path, capsys, monkeypatch):
    import harness.core.precision as precision
    monkeypatch.setattr(precision, "bfloat16_unsupported", lambda device: "no native bf16 (test)")
    (tmp_path / "dailydialog").mkdir()
    assert dialogue_epoch.main(["--raw", str(tmp_path), "--precisions", "float32,bfloat16"]) == 2
    assert "--precisions bfloat16 on this CPU: no native bf16 (test)" in capsys.readouterr().err
