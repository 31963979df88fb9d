"""--preset auto: the sizing rule as a pure function of speeds, budget and corpus size, and the
planner that times what the rule needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charlm.config import TrainConfig
from charlm.train import autosize as A
from charlm.train.autosize import Budget, Shape, choose, effective_chars, option, plan, predicted_loss

TINYSHAKESPEARE_TRAIN = 1_003_854
ROOT = Path(__file__).resolve().parents[1]


def laptop_speed(hidden: int, scale: float = 1.0) -> float:
    """chars/s at 64 streams of a 2-core AVX2 laptop (fp32; measured shapes, cost ~ width^1.7)."""
    return scale * 26_800 * (256 / hidden) ** 1.7


def pick(budget: Budget, train_chars: int = TINYSHAKESPEARE_TRAIN, scale: float = 1.0) -> A.Option:
    options = [option(Shape(h), "fp32", {64: laptop_speed(h, scale)}, budget, train_chars) for h in A.HIDDEN_SIZES]
    return choose(options, train_chars)


def test_a_longer_budget_gets_a_bigger_model():
    one, five, sixty = (pick(Budget(seconds=60 * m)) for m in (1, 5, 60))
    assert one.shape.hidden <= five.shape.hidden < sixty.shape.hidden
    assert one.shape.hidden < sixty.shape.hidden
    assert one.loss > five.loss > sixty.loss


def test_a_faster_machine_gets_a_bigger_model():
    assert pick(Budget(seconds=300), scale=4.0).shape.hidden > pick(Budget(seconds=300)).shape.hidden


def test_a_tiny_corpus_gets_a_smaller_model_and_more_dropout_than_a_huge_one():
    budget = Budget(seconds=30 * 60)
    tiny, huge = pick(budget, train_chars=50_000), pick(budget, train_chars=500_000_000)
    assert tiny.shape.hidden < huge.shape.hidden
    assert tiny.passes > 100 and huge.passes < 1
    assert A.dropout_for(tiny.passes, tiny.shape.hidden) > A.dropout_for(huge.passes, huge.shape.hidden) == 0.0


def test_a_steps_budget_needs_no_speeds():
    chosen = choose([option(Shape(h), "fp32", {}, Budget(steps=3000), TINYSHAKESPEARE_TRAIN) for h in A.HIDDEN_SIZES])
    assert chosen.steps == 3000 and chosen.chars == 3000 * chosen.batch_size * A.SEQ_LEN
    assert chosen.chars_per_sec is None


def test_steps_and_passes_follow_from_the_speed():
    o = option(Shape(256), "fp32", {64: 20_000.0, 32: 17_000.0}, Budget(seconds=300), TINYSHAKESPEARE_TRAIN)
    assert o.batch_size == 32                        # 1,400 steps of 64 would be too few updates
    assert o.chars_per_sec == 17_000.0               # timed at its own batch size, when it was
    assert o.steps == int(17_000 * 300 * (1 - A.EVAL_SHARE) // (32 * A.SEQ_LEN))
    assert o.passes == pytest.approx(o.chars / TINYSHAKESPEARE_TRAIN)


def test_effective_chars_counts_the_first_pass_whole_and_later_ones_ever_less():
    assert effective_chars(5e5, 1e6) == 5e5
    assert effective_chars(1e6, 1e6) == pytest.approx(1e6)
    gains = [effective_chars(n * 1e6, 1e6) - effective_chars((n - 1) * 1e6, 1e6) for n in range(2, 60, 10)]
    assert all(a > b > 0 for a, b in zip(gains, gains[1:]))
    assert effective_chars(1e9, 1e6) <= 1e6 * (1 + A.REPEAT_HALF_LIFE)


@pytest.mark.parametrize("hidden", sorted(A.QUALITY))
def test_predicted_loss_falls_with_more_text_and_stays_in_bounds(hidden):
    losses = [predicted_loss(hidden, d, TINYSHAKESPEARE_TRAIN) for d in (1e5, 1e6, 3e6, 1e7, 3e7, 1e8, 1e9)]
    assert all(a >= b for a, b in zip(losses, losses[1:]))
    assert all(0.5 < x <= 4.2 for x in losses)


def test_the_quality_table_is_the_measured_runs():
    """Every QUALITY point is a run in bench/sizing_runs.jsonl (its recipe, its figure)."""
    runs = [json.loads(line) for line in (ROOT / "bench" / "sizing_runs.jsonl").read_text().splitlines() if line.strip()]
    for hidden, points in A.QUALITY.items():
        for chars, loss in points:
            match = [r for r in runs if r["recipe"] and r["hidden"] == hidden and r["chars"] == pytest.approx(chars, rel=0.02)]
            assert match, f"no run behind QUALITY[{hidden}] at {chars:g} chars"
            assert loss == pytest.approx(match[0]["val"], abs=0.0015)


def test_fixed_flags_narrow_the_candidates():
    assert [s.hidden for s in A.candidates({"hidden": 96})] == [96]
    assert {s.layers for s in A.candidates({"layers": 3})} == {3}
    assert {s.cell for s in A.candidates({"cell": "gru"})} == {"gru"}


def test_plan_times_smallest_first_stops_when_bigger_is_worse_and_times_the_choice_at_its_batch():
    timed = []

    def timer(m, t, precision):
        timed.append((m.hidden, t.batch_size, precision))
        return laptop_speed(m.hidden) * (0.85 if t.batch_size == 32 else 1.0)

    choice = plan(TINYSHAKESPEARE_TRAIN, 66, TrainConfig(minutes=5), timer=timer, precision_for=lambda m, t: "fp32")
    sizes = [h for h, b, _ in timed if b == 64]
    assert sizes == sorted(sizes) and len(sizes) < len(A.HIDDEN_SIZES)       # stopped early
    assert timed[-1] == (choice.chosen.shape.hidden, choice.chosen.batch_size, "fp32")
    model, train = choice.configs(66, TrainConfig(minutes=5, seed=3))
    assert (model.hidden, model.layers, model.embed) == (choice.chosen.shape.hidden, 2, choice.chosen.shape.embed)
    assert (train.batch_size, train.seq_len, train.minutes, train.seed) == (choice.chosen.batch_size, 64, 5, 3)
    assert train.lr == choice.chosen.shape.lr() and train.precision == "fp32"
    assert "chars/s here" in choice.summary() and "steps" in choice.summary()
    assert "predicted val" in choice.reason()


def test_plan_for_a_steps_budget_times_only_the_choice():
    timed = []
    plan(TINYSHAKESPEARE_TRAIN, 66, TrainConfig(steps=500), timer=lambda m, t, p: timed.append(m.hidden) or 1e4,
         precision_for=lambda m, t: "fp32")
    assert len(timed) == 1


def test_the_precision_is_the_one_that_wins_at_the_chosen_batch_size():
    # bf16 gains more with more streams: faster at 64, slower at 32 (a 2x256 on a Zen 5)
    choice = plan(TINYSHAKESPEARE_TRAIN, 66, TrainConfig(minutes=5), timer=lambda m, t, p: laptop_speed(m.hidden),
                  precision_for=lambda m, t: "bf16" if t.batch_size >= 64 else "fp32")
    assert choice.chosen.batch_size == 32 and choice.chosen.precision == "fp32"
    assert choice.configs(66, TrainConfig(minutes=5))[1].precision == "fp32"


def test_the_reason_says_why_a_bigger_shape_that_predicts_as_well_lost():
    def opt(hidden: int, loss: float) -> A.Option:
        return A.Option(Shape(hidden), "fp32", 3e4, 32, 4000, 8.2e6, 8.2, loss)

    choice = A.AutoChoice(opt(256, 1.419), (opt(128, 1.51), opt(384, 1.415), opt(512, 1.43)), 1_003_854)
    parts = choice.reason().split("; ")
    assert parts[0] == "predicted val ≈1.42 nats/char"
    assert parts[1] == "2x128 ≈1.51 (4,000 steps)"                      # worse and smaller: nothing to explain
    assert parts[2] == "2x384 ≈1.42 (4,000 steps, a near-tie: the faster wins)"
    assert parts[3] == "2x512 ≈1.43 (4,000 steps)"


def test_a_harder_text_is_predicted_worse_by_its_difficulty_and_the_choice_holds():
    budget = Budget(seconds=300)
    plain = [option(Shape(h), "fp32", {64: laptop_speed(h)}, budget, TINYSHAKESPEARE_TRAIN) for h in A.HIDDEN_SIZES]
    harder = [option(Shape(h), "fp32", {64: laptop_speed(h)}, budget, TINYSHAKESPEARE_TRAIN, 1.18)
              for h in A.HIDDEN_SIZES]
    for a, b in zip(plain, harder):
        assert b.loss == pytest.approx(1.18 * a.loss)
    assert choose(harder).shape == choose(plain).shape
    timer = lambda m, t, p: laptop_speed(m.hidden)      # noqa: E731
    chosen = plan(TINYSHAKESPEARE_TRAIN, 66, TrainConfig(minutes=5), timer=timer, precision_for=lambda m, t: "fp32",
                  difficulty=0.86)
    assert f"predicted val ≈{chosen.chosen.loss:.2f}" in chosen.reason()
    assert chosen.chosen.loss == pytest.approx(0.86 * predicted_loss(chosen.chosen.shape.hidden, chosen.chosen.chars,
                                                                     TINYSHAKESPEARE_TRAIN))
