"""SeqGAN for dialogue (Yu et al. 2017; Li et al. 2017): the phases, the roll-out reward (Eq. 4), the sign of the
policy gradient, discriminator pre-training, generation."""
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_greedy_generation, make_dialogue_batch, recording_optimisation, tiny_dialogue_model
from harness.core.config import ConfigError, TrainConfig
from harness.data.vocab import BOS_ID
from harness.methods.lookup import registered_methods
from harness.train.optim import Optimisation
from layers.modes import eval_mode

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4]),
             ([[7, 7], [8]], [6, 9, 10]), ([[4], [5], [6], [7]], [8])]


def seqgan(**options):
    return tiny_dialogue_model("seqgan", **options)


def first_token_probs(model, batch) -> torch.Tensor:
    """p(y_1 | c) [B, V] of the decoder without dropout."""
    with torch.no_grad(), eval_mode(model.context_encoder):
        state = model.decoder_state(model.encode_context(batch)[0])
        bos = torch.full((batch.size, 1), BOS_ID, dtype=torch.long)
        output, _ = model.decoder.rnn(model.embedding(bos), state.unsqueeze(0))
        return F.softmax(model.decoder.out(output[:, 0]), dim=-1)


def test_registered_as_a_dialogue_method():
    assert "seqgan" in registered_methods(task="dialogue")
    assert "seqgan" not in registered_methods(task="lm")


@pytest.mark.parametrize("bad", [dict(rollouts=0), dict(d_steps=0), dict(pretrain_steps=-1), dict(mle_steps=-1),
                                 dict(reward_baseline="median"), dict(d_filter_widths=[]), dict(d_filter_widths=[0]),
                                 dict(sample_max_len=0), dict(dropout=1.0), dict(z_dim=-1), dict(init="xavier")])
def test_invalid_options_name_the_method(bad):
    with pytest.raises(ConfigError, match="seqgan"):
        seqgan(**bad)


def test_filter_widths_from_a_config_list_become_a_tuple():
    model = seqgan(d_filter_widths=[2, 3])
    assert model.options.d_filter_widths == (2, 3) and len(model.discriminator.convs) == 2


def test_the_update_counter_schedules_mle_then_discriminator_then_adversarial_phases():
    model = seqgan(pretrain_steps=2, discriminator_pretrain_steps=1, d_steps=2, rollouts=2, sample_max_len=5)
    batch = make_dialogue_batch(DIALOGUES)
    optimisation = recording_optimisation(model, TrainConfig(lr=0.01, weight_decay=0.0), label=lambda name: (
        "discriminator" if name.startswith("discriminator.") else "generator"))
    optimisation.random_batch = lambda: batch
    assert [model.phase(step) for step in range(5)] == ["mle", "mle", "discriminator", "adversarial", "adversarial"]
    for step in range(4):
        terms = model.training_step(batch, step, optimisation)
        assert terms.recon.shape == (4,) and torch.isfinite(terms.loss).all() and (terms.kl == 0).all()
    G, D = ("generator",), ("discriminator",)
    assert optimisation.calls == [
        (0, G, {"generator"}), (1, G, {"generator"}),  # MLE pre-training: the discriminator is untouched
        (2, D, {"discriminator"}),  # discriminator pre-training: the generator is untouched
        (3, G, {"generator"}), (3, G, {"generator"}), (3, D, {"discriminator"}), (3, D, {"discriminator"})]
    # policy gradient, teacher forcing (mle_steps 1), d_steps discriminator updates


def test_the_mle_loss_is_the_decoders_negative_log_likelihood_without_kl():
    model = seqgan().eval()
    batch = make_dialogue_batch(DIALOGUES)
    terms = model.loss(batch, step=0)
    state = model.decoder_state(model.encode_context(batch)[0])
    torch.testing.assert_close(terms.recon, -model.decoder.log_likelihood(batch.response, batch.response_lengths,
                                                                          state))
    assert torch.equal(terms.loss, terms.recon) and (terms.kl == 0).all() and terms.beta == 0.0
    assert state.shape == (4, 6 + 3)  # [f(c); c]: as wide as the CVAE's [z; c] (tiny hidden 6, z 3)
    assert seqgan(z_dim=0).decoder_state(model.encode_context(batch)[0]).shape == (4, 6)


def test_roll_out_rewards_full_responses_get_the_score_prefixes_the_mean_over_completions():
    """Stub discriminator: weight[row] if the second token is 7, else 0. For the prefix y_1 the roll-out mean
    estimates weight * G(y_2 = 7 | y_1, c); longer prefixes fix y_2, so every completion scores the same."""
    torch.manual_seed(0)
    model = seqgan().eval()
    with torch.no_grad():
        model.decoder.out.weight *= 30  # a peaked decoder: G(y_2 = 7 | y_1 = 5, c) is ~0.5 here, not ~1/12
    batch = make_dialogue_batch(DIALOGUES[:3])
    state = model.decoder_state(model.encode_context(batch)[0])
    tokens = torch.tensor([[5, 7, 8, 3, 0], [5, 6, 8, 9, 3], [6, 3, 0, 0, 0]])
    lengths = torch.tensor([4, 5, 2])
    weight = torch.tensor([1.0, 0.5, 0.25])

    def score(completed, completed_lengths, rows):
        assert (completed[:, 0] == tokens[rows, 0]).all()  # every roll-out keeps its prefix
        assert ((completed_lengths >= 1) & (completed_lengths <= 5)).all()
        return weight[rows] * (completed[:, 1] == 7).float()

    rewards = model.rollout_rewards(state, tokens, lengths, score, rollouts=4000)
    with torch.no_grad():
        after_y1 = model._decoder_states(state, tokens)[:, 1]  # the state after <s> y_1
        expected = F.softmax(model.decoder.out(after_y1), dim=-1)[:, 7] * weight
    assert 0.3 < float(expected[0]) < 0.7
    torch.testing.assert_close(rewards[:, 0], expected, atol=0.03, rtol=0.0)  # 4000 roll-outs: std error < 0.008
    torch.testing.assert_close(rewards[0], torch.tensor([float(rewards[0, 0]), 1.0, 1.0, 1.0, 0.0]))
    torch.testing.assert_close(rewards[1], torch.tensor([float(rewards[1, 0]), 0.0, 0.0, 0.0, 0.0]))
    # a prefix of the whole response but its </s>: completions are y_1 </s> itself or longer; past T: 0
    torch.testing.assert_close(rewards[2, 1:], torch.zeros(4))


def test_the_full_response_reward_is_the_discriminators_probability():
    model = seqgan(rollouts=2, sample_max_len=6).eval()
    batch = make_dialogue_batch(DIALOGUES)
    state = model.decoder_state(model.encode_context(batch)[0])
    tokens, lengths = model.sample(state, 6)
    score = model.discriminator_scorer(batch)
    rewards = model.rollout_rewards(state, tokens, lengths, score, rollouts=2)
    with torch.no_grad():
        direct = torch.sigmoid(model.discriminator(model.discriminator.encode_context(batch), tokens, lengths))
    torch.testing.assert_close(rewards[torch.arange(4), lengths - 1], direct)
    assert ((rewards > 0) & (rewards < 1)).sum() == lengths.sum()  # every step rewarded, nothing past T


@pytest.mark.parametrize("rewarded", [0, 1])
def test_policy_gradient_raises_the_rewarded_first_token_and_lowers_the_penalised_one(rewarded):
    """One SGD step on the REINFORCE loss for one-token responses (a bandit), all contexts the same: the stub
    discriminator rewards the token `a` (1) and penalises `b` and the others (0); swapping a and b swaps the moves."""
    model = seqgan(rollouts=2, sample_max_len=1)
    batch = make_dialogue_batch([DIALOGUES[0]] * 64)
    before = first_token_probs(model, batch)[0]
    likely = before.topk(2).indices.tolist()  # both sampled among 64 draws
    a, b = likely[rewarded], likely[1 - rewarded]
    torch.manual_seed(1)
    sampled = []

    def score(tokens, lengths, rows):
        sampled.extend(tokens[:, 0].tolist())
        return (tokens[:, 0] == a).float()

    loss = model.policy_gradient_loss(batch, score=score)
    assert a in sampled and b in sampled
    optimizer = torch.optim.SGD(model.parameter_groups()["generator"], lr=0.5)
    optimizer.zero_grad()
    loss.mean().backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    optimizer.step()
    after = first_token_probs(model, batch)[0]
    assert after[a] > before[a] and after[b] < before[b], (a, b, before, after)


def test_without_a_baseline_every_sampled_token_with_positive_reward_is_reinforced():
    """reward_baseline none (Yu et al.): the loss is -sum_t Q_t log G, so with Q = 1 it is the sampled responses'
    negative log-likelihood."""
    model = seqgan(reward_baseline="none", rollouts=1, sample_max_len=5).eval()
    batch = make_dialogue_batch(DIALOGUES)
    torch.manual_seed(3)
    loss = model.policy_gradient_loss(batch, score=lambda tokens, lengths, rows: torch.ones(len(rows)))
    torch.manual_seed(3)
    state = model.decoder_state(model.encode_context(batch)[0])
    tokens, lengths = model.sample(state, 5)
    torch.testing.assert_close(loss, -model.token_log_probs(state, tokens, lengths).sum(1))


def test_discriminator_pretraining_separates_real_from_generated_responses():
    model = seqgan(pretrain_steps=0, discriminator_pretrain_steps=1000, sample_max_len=8)
    batch = make_dialogue_batch(DIALOGUES)
    generator = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("discriminator.")}
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01, weight_decay=0.0))
    torch.manual_seed(0)
    for step in range(120):  # 60 left seed 0 at 89 % of the fakes caught (95-100 % for seeds 1-3); 120: 98-100 %
        model.training_step(batch, step, optimisation)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in generator.items())
    model.eval()
    many = make_dialogue_batch(DIALOGUES * 25)
    with torch.no_grad():
        context = model.discriminator.encode_context(many)
        real = torch.sigmoid(model.discriminator(context, many.response[:, 1:], many.response_lengths - 1))
        fake_tokens, fake_lengths = model.sample(model.decoder_state(model.encode_context(many)[0]), 8)
        fake = torch.sigmoid(model.discriminator(context, fake_tokens, fake_lengths))
    assert (real > 0.5).float().mean() > 0.95 and (fake < 0.5).float().mean() > 0.9, (real.mean(), fake.mean())


def test_discriminator_scores_do_not_depend_on_padding():
    model = seqgan().eval()
    batch = make_dialogue_batch(DIALOGUES)
    with torch.no_grad():
        context = model.discriminator.encode_context(batch)
        tokens, lengths = batch.response[:, 1:], batch.response_lengths - 1
        wide = torch.cat([tokens, torch.full((4, 6), 9)], dim=1)  # anything past the length is ignored
        torch.testing.assert_close(model.discriminator(context, wide, lengths),
                                   model.discriminator(context, tokens, lengths))


def test_generation_is_greedy_and_repeats_the_one_response_per_context():
    model = seqgan().eval()
    batch = make_dialogue_batch(DIALOGUES)
    assert_greedy_generation(model, batch, num_samples=3, max_len=6)
    tokens, lengths = model.generate(batch, num_samples=3, max_len=6)
    assert (tokens == tokens[:, :1]).all() and (lengths == lengths[:, :1]).all()
    greedy, greedy_lengths = model.decoder.greedy(model.decoder_state(model.encode_context(batch)[0]), 6, 2, 3)
    assert torch.equal(tokens[:, 0], greedy) and torch.equal(lengths[:, 0], greedy_lengths)


def test_a_checkpoint_carries_the_discriminator():
    model = seqgan(pretrain_steps=0, discriminator_pretrain_steps=3, sample_max_len=5)
    batch = make_dialogue_batch(DIALOGUES)
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01, weight_decay=0.0))
    for step in range(3):
        model.training_step(batch, step, optimisation)
    fresh = seqgan(pretrain_steps=0, discriminator_pretrain_steps=3, sample_max_len=5)
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    with torch.no_grad():
        context = model.discriminator.encode_context(batch)
        tokens, lengths = batch.response[:, 1:], batch.response_lengths - 1
        torch.testing.assert_close(fresh.discriminator(context, tokens, lengths),
                                   model.discriminator(context, tokens, lengths))


def test_table5_renders_a_real_seqgan_row_first_as_the_paper(tmp_path):
    from conftest import write_metrics
    from harness.report.dialogue_tables import render_dialogue_table
    from harness.report.results import collect_results, load_paper_values, summarise

    (tmp_path / "tables.csv").write_text("table,dataset,model,metric,value\n5,DailyDialog,SeqGAN,BLEU-R,0.270\n"
                                         "5,DailyDialog,CVAE,BLEU-R,0.265\n")
    metrics = {"BLEU-R": 0.2, "BLEU-P": 0.2, "BLEU-F1": 0.2, "BOW-A": 0.9, "BOW-E": 0.5, "BOW-G": 0.7,
               "Intra-dist1": 0.8, "Intra-dist2": 0.8, "Inter-dist1": 0.1, "Inter-dist2": 0.1}
    runs = [write_metrics(tmp_path / "results", model, 1, {"uniform": {k: v + shift for k, v in metrics.items()}},
                          paper_name=name, dataset="dailydialog", paper_tables=("5",), task="dialogue")
            for model, name, shift in (("seqgan", "SeqGAN", 0.0), ("cvae", "CVAE", 0.01))]
    tex = render_dialogue_table(summarise(collect_results(runs)), load_paper_values(tmp_path / "tables.csv"), ["w2v"])
    rows = [line.removesuffix(r" \\").split(" & ") for line in tex.splitlines() if line.count(" & ") == 11][1:]
    assert [row[:3] for row in rows] == [["SeqGAN", "ours", "0.200"], ["", "paper", "0.270"],
                                         ["CVAE", "ours", "0.210"], ["", "paper", "0.265"]]  # 1 seed: no bold
    assert "not run by this suite" not in tex


def test_draw_samples_the_softmax_distribution():
    from baselines.seqgan import draw

    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, -1.0, float("-inf"), 2.0]]).expand(200_000, 5)
    counts = torch.bincount(draw(logits), minlength=5).float() / 200_000
    torch.testing.assert_close(counts, F.softmax(logits[0], dim=-1), atol=0.005, rtol=0.0)
    assert counts[3] == 0


def test_a_roll_out_step_draws_each_row_as_one_block_would(monkeypatch):
    """The V-wide logits are made a block of rows at a time (SeqGAN._next_tokens): each row's token is the one the
    whole batch at once would draw. Integer weights and states make every logit exact, so that the comparison does
    not depend on how a CPU's matrix product sums."""
    model = seqgan().eval()
    out = model.decoder.out
    with torch.no_grad():
        out.weight.copy_(torch.randint(-1, 2, out.weight.shape).float())
        out.bias.zero_()
    states = torch.randint(-1, 2, (11, out.in_features)).float()
    torch.manual_seed(3)
    whole = model._next_tokens(states)
    monkeypatch.setattr(model.decoder, "OUTPUT_ROWS", 4)  # blocks of 4, 4 and 3 rows
    torch.manual_seed(3)
    blocks = model._next_tokens(states)
    assert blocks.shape == (11,) and torch.equal(blocks, whole)
    torch.manual_seed(4)
    assert not torch.equal(model._next_tokens(states), whole)  # the draw is random: the test can tell them apart


def test_the_discriminator_scores_blocks_of_responses_as_one_batch(monkeypatch):
    """ResponseDiscriminator.probability: the roll-outs' completions scored ROWS at a time, each as in one batch."""
    discriminator = seqgan().discriminator.eval()
    torch.manual_seed(0)
    context_size = discriminator.gate.in_features - len(discriminator.widths) * discriminator.convs[0].out_channels
    context = torch.randn(10, context_size)
    tokens, lengths = torch.randint(4, 12, (10, 7)), torch.tensor([7, 1, 3, 7, 2, 5, 6, 4, 7, 1])
    with torch.no_grad():
        whole = torch.sigmoid(discriminator(context, tokens, lengths))
    monkeypatch.setattr(discriminator, "ROWS", 4)  # blocks of 4, 4 and 2
    torch.testing.assert_close(discriminator.probability(context, tokens, lengths), whole, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(whole[:4], whole[4:8])  # distinct rows: a misplaced block would show
