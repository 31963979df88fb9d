"""The loss chart's axis: steps labelled as whole numbers, minutes as far as their spacing needs,
and no more labels than the chart's width holds."""

from __future__ import annotations

from textual.app import App, ComposeResult

from charlm.tui.widgets.loss_chart import LossChart, axis_ticks


def test_ticks_are_round_numbers_at_most_six_and_whole_for_steps():
    assert axis_ticks(1, 6050, whole=True) == ([1000, 2000, 3000, 4000, 5000, 6000],
                                               ["1,000", "2,000", "3,000", "4,000", "5,000", "6,000"])
    assert axis_ticks(1, 1289, whole=True)[1] == ["200", "400", "600", "800", "1,000", "1,200"]
    assert axis_ticks(1, 3, whole=True)[1] == ["1", "2", "3"]           # never half a step
    assert axis_ticks(1, 1, whole=True)[1] == ["1"]
    assert axis_ticks(0.01, 4.5, whole=False)[1] == ["1", "2", "3", "4"]
    assert axis_ticks(0.02, 0.9, whole=False)[1] == ["0.2", "0.4", "0.6", "0.8"]


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield LossChart()


async def test_a_long_run_is_drawn_with_whole_step_labels_and_round_minutes():
    train = [(s, s * 0.05, 4.0 - s / 2000) for s in range(1, 6051, 20)]
    val = [(s, s * 0.05, 3.9 - s / 2000) for s in range(500, 6051, 500)]
    app = ChartApp()
    async with app.run_test(size=(110, 20)) as pilot:
        chart = app.query_one(LossChart)
        chart.show(train, val)
        await pilot.pause()
        axis = str(chart.render()).splitlines()[-2]       # the tick labels, above the axis title
        assert axis.split() == ["1,000", "2,000", "3,000", "4,000", "5,000", "6,000"], axis
        await pilot.resize_terminal(47, 20)         # as narrow as the Train screen leaves it at 80 columns
        await pilot.pause()
        axis = str(chart.render()).splitlines()[-2]
        assert axis.split() == ["2,000", "4,000", "6,000"], axis   # fewer, none dropped for touching
        await pilot.resize_terminal(110, 20)
        chart.toggle_axis()
        await pilot.pause()
        axis = str(chart.render()).splitlines()[-2]
        assert axis.split() == ["1", "2", "3", "4", "5"], axis
