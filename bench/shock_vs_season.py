"""How far the default demo's demand shock moves each medication category,
next to how far the calm world's seasons move it, against the days an online
model's reference holds.

    .venv/bin/python bench/shock_vs_season.py

The online alias is refitted every played day on 60 days of rows ending 7
days before (the target is the next 7 days' demand), so its reference holds
days d-67..d-7. Per category, the table prints the ratio of one day's mean
units dispensed to the mean of the same weekday in those days (existing
stores only: the new region's are judged by region): the calm world's
largest and smallest over its 126 played days, and the default world's over
the first 3 days after the shock and over its first week. A category
judged on its own against its reference fires on the shock's days only at a
ratio the calm world's flu and pollen seasons reach too.

The second table judges each day against the same weekday a year before
instead (52 weeks: the history holds a year), over the same ratio for the
4 weeks ending 4 days before (the trend since last year): a reference that
covers the season. The third runs the drift service's own judgement
(rxcast.drift.seasonal, with its defaults) over each plan's records, as the
feature service totals them: the days it fires on.
"""

from __future__ import annotations

import os

import pandas as pd

from rxcast.demo.plan import calm_plan, default_plan
from rxcast.drift.seasonal import SeasonalSettings, judge
from rxcast.model import timebase
from rxcast.sim import simulate

#: The online reference's days before the day judged: 60 days ending 7 before.
REFERENCE_FIRST, REFERENCE_LAST = 67, 7
#: A year back on the same weekday, and the trend's days before the day judged.
YEAR, TREND_FIRST, TREND_LAST = pd.Timedelta(weeks=52), 31, 4


def category_means(plan) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Mean units dispensed per business day (rows) and category (columns), existing
    stores only (the new region's are judged by region), and the first played day."""
    scenario = plan.scenario
    played = pd.Timestamp(scenario.start_day) + pd.Timedelta(days=scenario.history_days)
    records = simulate(scenario).records
    new_region = {e.params.get("region") for e in scenario.events if e.kind == "new_region"}
    records = records[~records.store_region.isin(new_region)]
    means = records.groupby(["business_day", "medication_category"], observed=True).units_dispensed.mean().unstack()
    return means, played


def daily_ratios(means: pd.DataFrame, played: pd.Timestamp) -> pd.DataFrame:
    """Per played day and category: mean units dispensed over the reference's same-weekday mean."""
    ratios = {}
    for day in means.index[means.index >= played]:
        days = means.index
        reference = means.loc[
            (days >= day - pd.Timedelta(days=REFERENCE_FIRST))
            & (days <= day - pd.Timedelta(days=REFERENCE_LAST))
            & (days.dayofweek == day.dayofweek)
        ]
        ratios[day] = means.loc[day] / reference.mean()
    return pd.DataFrame(ratios).T


def yearly_ratios(means: pd.DataFrame, played: pd.Timestamp) -> pd.DataFrame:
    """Per played day and category: its mean over the same weekday's a year before,
    over that ratio for the trend's days (the categories' growth since last year)."""

    def span(day: pd.Timestamp) -> pd.Series:
        return means.loc[day - pd.Timedelta(days=TREND_FIRST) : day - pd.Timedelta(days=TREND_LAST)].mean()

    ratios = {}
    for day in means.index[means.index >= played]:
        year_ago = day - YEAR
        if year_ago in means.index:
            ratios[day] = (means.loc[day] / means.loc[year_ago]) / (span(day) / span(year_ago))
    return pd.DataFrame(ratios).T


def print_table(title: str, calm: pd.DataFrame, default: pd.DataFrame, shock_day: pd.Timestamp, shocked) -> None:
    first3 = default.loc[shock_day + pd.Timedelta(days=1) : shock_day + pd.Timedelta(days=3)]
    week = default.loc[shock_day + pd.Timedelta(days=1) : shock_day + pd.Timedelta(days=7)]
    print(f"\n{title}\n")
    print("| category | calm: max | calm: min | shock days 1-3: max | shock days 1-7: max |")
    print("|---|---|---|---|---|")
    for category in calm.columns:
        marker = " (shocked)" if category in shocked else ""
        print(
            f"| {category}{marker} | {calm[category].max():.2f} | {calm[category].min():.2f} "
            f"| {first3[category].max():.2f} | {week[category].max():.2f} |"
        )


def judged_days(plan) -> pd.DataFrame:
    """The drift service's judgement of every played day: one row per category-day."""
    settings = SeasonalSettings()
    scenario = plan.scenario
    records = simulate(scenario).records
    records = records[records.units_dispensed.notna()]
    days, _ = timebase.parse_days(pd.to_datetime(records.business_day).dt.strftime("%Y-%m-%d").to_numpy())
    totals = (
        records.assign(day=days, store_id=records.store_id.astype(str), segment=records[settings.by].astype(str))
        .groupby(["day", "store_id", "segment"])
        .units_dispensed.agg(["sum", "count"])
        .reset_index()
        .rename(columns={"day": "business_day"})
    )
    first = timebase.day_number(scenario.start_day, "start_day") + scenario.history_days
    rows = []
    for day in range(first, first + scenario.days_to_play):
        needed = totals[totals.business_day.isin(settings.days_needed(day))]
        rows += [(timebase.day_text(day), d.segment, d.ratio, d.fires) for d in judge(needed, day, settings)]
    return pd.DataFrame(rows, columns=["day", "category", "ratio", "fires"])


def print_judgement(name: str, judged: pd.DataFrame) -> None:
    fired = judged[judged.fires]
    high = judged.loc[judged.ratio.idxmax()]
    low = judged.loc[judged.ratio.idxmin()]
    print(
        f"| {name} | {len(judged):,} | {high.ratio:.2f} ({high.category}, {high.day}) "
        f"| {low.ratio:.2f} ({low.category}, {low.day}) | {len(fired)} "
        f"| {', '.join(f'{c} {d}' for c, d in fired.groupby('category').day.min().items()) or '-'} |"
    )


def main() -> None:
    os.environ.setdefault("FEAST_USAGE", "False")
    shocked = default_plan()
    (shock,) = [e for e in shocked.scenario.events if e.kind == "demand_shock"]
    shock_day = pd.Timestamp(shocked.scenario.start_day) + pd.Timedelta(days=int(shock.day))
    calm, default = category_means(calm_plan()), category_means(shocked)
    categories = shock.params["categories"]
    print(f"shock on {shock_day.date()}: x{shock.params['multiplier']} on {', '.join(categories)}")
    print_table(
        "Against the online reference (the same weekday in days d-67..d-7):",
        daily_ratios(*calm), daily_ratios(*default), shock_day, categories,
    )  # fmt: skip
    print_table(
        "Against a year before (the same weekday 52 weeks back, over the trend of days d-31..d-4 since then):",
        yearly_ratios(*calm), yearly_ratios(*default), shock_day, categories,
    )  # fmt: skip
    print("\nThe drift service's judgement against a year before (rxcast.drift.seasonal, defaults):\n")
    print("| plan | category-days judged | highest | lowest | days firing | first firing day per category |")
    print("|---|---|---|---|---|---|")
    for plan in (calm_plan(), shocked):
        print_judgement(plan.name, judged_days(plan))


if __name__ == "__main__":
    main()
