"""Declarative automation: the conditions the layers use, and the sensor that evaluates them."""

import dagster as dg

from .checks import FULL, FULL_CHECKS_TAG

# A landed day crosses three sensor ticks (landing -> raw, automation -> bronze and silver,
# partitions -> gold); at Dagster's default 30 s each, the ticks alone were ~90 s of the
# ~130 s from landing to gold (docs/performance.md, "From landing to gold in the UI").
SENSOR_INTERVAL_SECONDS = 10

# Not eager() for bronze: eager waits while any raw partition is missing, and most days of a
# source have no files. Bronze wants the new changes of any raw partition.
AFTER_ANY_PARTITION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after_any_raw_partition")

# eager(), and only once every blocking check of the assets upstream has passed: a table
# whose input failed its checks waits for an input that passes (or for a run that checks it
# in the same run, which the run then stops before this table if the check fails).
EAGER_AFTER_CHECKS = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_after_blocking_checks")


# Every asset check over whole tables (a sync's checks look at its own changes: defs/checks.py),
# daily, and on demand: launch the job.
FULL_CHECKS_JOB = dg.define_asset_job(
    "full_checks",
    selection=dg.AssetSelection.all_asset_checks(),
    tags={FULL_CHECKS_TAG: FULL},
    description="Every asset check over whole tables, not only the changes of a sync.",
)
FULL_CHECKS_SCHEDULE = dg.ScheduleDefinition(
    name="full_checks_schedule",
    job=FULL_CHECKS_JOB,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def definitions(ctx) -> dg.Definitions:
    return dg.Definitions(
        jobs=[FULL_CHECKS_JOB],
        schedules=[FULL_CHECKS_SCHEDULE],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                "default_automation_condition_sensor",
                target=dg.AssetSelection.all(),
                minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
                default_status=dg.DefaultSensorStatus.RUNNING,
            )
        ],
    )
