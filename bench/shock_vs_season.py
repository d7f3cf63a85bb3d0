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
"""

from __future__ import annotations

import os

import pandas as pd

from rxcast.demo.plan import calm_plan, default_plan
from rxcast.sim import simulate

#: The online reference's days before the day judged: 60 days ending 7 before.
REFERENCE_FIRST, REFERENCE_LAST = 67, 7


def daily_ratios(plan) -> pd.DataFrame:
    """Per played day and category: mean units dispensed over the reference's same-weekday mean."""
    scenario = plan.scenario
    start = pd.Timestamp(scenario.start_day)
    played = start + pd.Timedelta(days=scenario.history_days)
    records = simulate(scenario).records
    new_region = {e.params.get("region") for e in scenario.events if e.kind == "new_region"}
    records = records[
        (records.business_day >= played - pd.Timedelta(days=REFERENCE_FIRST)) & ~records.store_region.isin(new_region)
    ]
    means = records.groupby(["business_day", "medication_category"], observed=True).units_dispensed.mean().unstack()
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


def main() -> None:
    os.environ.setdefault("FEAST_USAGE", "False")
    shocked = default_plan()
    (shock,) = [e for e in shocked.scenario.events if e.kind == "demand_shock"]
    shock_day = pd.Timestamp(shocked.scenario.start_day) + pd.Timedelta(days=int(shock.day))
    calm = daily_ratios(calm_plan())
    default = daily_ratios(shocked)
    first3 = default.loc[shock_day + pd.Timedelta(days=1) : shock_day + pd.Timedelta(days=3)]
    week = default.loc[shock_day + pd.Timedelta(days=1) : shock_day + pd.Timedelta(days=7)]
    print(f"shock on {shock_day.date()}: x{shock.params['multiplier']} on {', '.join(shock.params['categories'])}\n")
    print("| category | calm: max | calm: min | shock days 1-3: max | shock days 1-7: max |")
    print("|---|---|---|---|---|")
    for category in calm.columns:
        marker = " (shocked)" if category in shock.params["categories"] else ""
        print(
            f"| {category}{marker} | {calm[category].max():.2f} | {calm[category].min():.2f} "
            f"| {first3[category].max():.2f} | {week[category].max():.2f} |"
        )


if __name__ == "__main__":
    main()
