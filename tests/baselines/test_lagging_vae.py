"""Lagging VAE: aggressive encoder-only updates, then the decoder; aggressive training stops when MI drops."""
import torch

from conftest import make_batch, tiny_model
from harness.core.config import TrainConfig
from harness.train.optim import Optimisation

BATCH = make_batch([[4, 5, 6], [7, 8], [9, 4, 4, 5], [6, 10]])


def adam_steps(optimisation, group):
    states = optimisation.optimizers[group].state.values()
    return max(int(state["step"]) for state in states)


def make_optimisation(model):
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01))
    optimisation.random_batch = lambda: BATCH
    return optimisation


def test_aggressive_step_updates_the_encoder_repeatedly_and_the_decoder_once():
    model = tiny_model("lagging-vae", inner_max_steps=6, inner_check_every=100).train()
    optimisation = make_optimisation(model)
    model.training_step(BATCH, 0, optimisation)
    assert adam_steps(optimisation, "encoder") == 6  # no check within 6 updates: all of them are taken
    assert adam_steps(optimisation, "decoder") == 1


def test_inner_loop_stops_when_the_loss_per_word_goes_up():
    model = tiny_model("lagging-vae", inner_max_steps=100, inner_check_every=1).train()
    optimisation = make_optimisation(model)
    optimisation.cfg = TrainConfig(lr=5.0)  # a step size that makes the encoder loss go up at once
    optimisation.optimizers["encoder"].param_groups[0]["lr"] = 5.0
    model.training_step(BATCH, 0, optimisation)
    assert adam_steps(optimisation, "encoder") < 100


def test_aggressive_training_ends_when_validation_mi_drops_and_then_both_parts_train_together():
    model = tiny_model("lagging-vae", inner_max_steps=3, inner_check_every=100).train()
    optimisation = make_optimisation(model)
    model.previous_mi.fill_(-1e9)
    model.on_epoch_end(1, lambda: iter([BATCH]))
    assert bool(model.aggressive)
    model.previous_mi.fill_(1e9)
    model.on_epoch_end(2, lambda: iter([BATCH]))
    assert not bool(model.aggressive) and model.training
    model.training_step(BATCH, 0, optimisation)
    assert adam_steps(optimisation, "encoder") == 1 and adam_steps(optimisation, "decoder") == 1
    state = model.state_dict()  # the phase is checkpointed with the weights
    assert not bool(state["aggressive"]) and "previous_mi" in state


def test_each_update_clips_the_whole_models_gradient_and_steps_only_its_own_part():
    """He et al. text.py l.384-387: clip_grad_norm_(vae.parameters()) and then enc_optimizer.step() alone."""
    model = tiny_model("lagging-vae", inner_max_steps=1, inner_check_every=100).train()
    clip, lr = 1e-3, 1e3  # a bound far below both parts' gradient norms; steps well above float32 rounding
    optimisation = Optimisation(model.parameter_groups(),
                                TrainConfig(optimizer="sgd", lr=lr, weight_decay=0.0, grad_clip=clip))
    optimisation.random_batch = lambda: BATCH
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    torch.manual_seed(0)  # the same draws (latent sample, dropout) for the reference gradient below
    model.aggressive_encoder_updates(BATCH, 0, optimisation)
    moved = {name: (p.detach() - before[name]) for name, p in model.named_parameters()}

    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(before[name])
    model.zero_grad()
    torch.manual_seed(0)
    optimisation.reduce(model.loss(BATCH, 0).loss).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    whole_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))
    encoder_names = {f"encoder.{name}" for name, _ in model.encoder.named_parameters()}
    encoder_norm = torch.sqrt(sum((grads[n].double() ** 2).sum() for n in encoder_names if n in grads))
    assert whole_norm > 2 * encoder_norm  # the decoder's share is what tells the two clipping rules apart
    for name, step in moved.items():
        if name in encoder_names and name in grads:
            torch.testing.assert_close(step, -lr * grads[name] * (clip / whole_norm).float(), rtol=1e-3, atol=1e-6)
        elif name not in encoder_names:
            assert torch.count_nonzero(step) == 0, f"{name} belongs to the decoder: not stepped"


def test_an_lr_decays_reload_of_the_best_weights_leaves_the_aggressive_phase_where_it_is():
    """He et al. reload their best model at an lr decay (text.py l.489) but keep `aggressive_flag` and `pre_mi`
    (plain variables): weights of an epoch still in the aggressive phase must not switch it back on."""
    model = tiny_model("lagging-vae")
    best = {name: value.clone() for name, value in model.state_dict().items()}  # saved while aggressive
    assert bool(best["aggressive"])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    model.aggressive.fill_(False)
    model.previous_mi.fill_(2.5)
    model.reload_weights(best)
    assert not bool(model.aggressive) and float(model.previous_mi) == 2.5
    for name, value in model.state_dict().items():
        if name not in ("aggressive", "previous_mi"):
            torch.testing.assert_close(value, best[name])
    model.load_state_dict(best)  # a resume restores the whole state, phase included
    assert bool(model.aggressive) and float(model.previous_mi) == 0.0


def test_other_methods_reload_their_whole_state():
    model = tiny_model("vae-rnn")
    best = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    model.reload_weights(best)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, best[name])


def test_the_first_epoch_compares_its_mi_with_zero_as_he_et_al(monkeypatch):
    """text.py l.332: pre_mi = 0, so an MI estimate below 0 after the first epoch ends the aggressive phase there."""
    for first_mi, aggressive in ((-0.01, False), (0.02, True)):
        model = tiny_model("lagging-vae")
        assert float(model.previous_mi) == 0.0
        monkeypatch.setattr(model, "validation_mi", lambda valid_batches, epoch, mi=first_mi: mi)
        model.on_epoch_end(1, lambda: iter([BATCH]))
        assert bool(model.aggressive) is aggressive and float(model.previous_mi) == first_mi
