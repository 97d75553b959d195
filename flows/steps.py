"""The steps every flow shares: open the engine, sweep, announce to Prefect, and refuse a
bad request with its Vietnamese message rather than a traceback.

Tasks are coarse (one per step of the process, never one per item) and retry only where
I/O can fail for a reason that may pass: the database being unreachable or locked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from sqlalchemy.exc import InterfaceError, OperationalError

from deadlines.calendar import CalendarError
from deadlines.datafile import DataFileError
from flows import engine, states
from flows.announce import AnnounceReport, announce_pending
from flows.engine import EngineContext, EngineError, SweepResult
from flows.parameters import partition_label

# A run cancelled (Ctrl-C, or from the UI) while a sweep writes: the transaction rolls back,
# but SQLAlchemy's pool logs the interrupted connection close with a traceback an operator
# must then ignore. The rollback is the whole story, so the pool keeps quiet in flow runs.
logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)

# What a flow refuses with a message instead of a traceback: bad parameters, bad data
# files, dates outside the calendar.
REFUSALS = (EngineError, CalendarError, DataFileError)


def refuse(refused: Exception) -> State:
    """End the run as Failed («Từ chối») with the person-readable message, not a traceback."""
    message = str(refused)
    get_run_logger().error(message)
    return states.refused(message, refused)


# ------------------------------------------------------------------------ the steps


def on_database_error(_task, _task_run, state) -> bool:
    """Retry a step only when the database could not be reached or was locked."""
    try:
        state.result()
    except (OperationalError, InterfaceError):
        return True
    except Exception:
        return False
    return False


def database_step(name: str):
    """A step that reads or writes the store: retried when the database is unreachable."""
    return task(
        name=name,
        retries=2,
        retry_delay_seconds=[5, 30],
        retry_condition_fn=on_database_error,
        cache_policy=NO_CACHE,
    )


@task(
    name="open the engine",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=on_database_error,
    cache_policy=NO_CACHE,
)
def open_engine() -> EngineContext:
    """Create or migrate the database and load the plan, the registry and the ladder."""
    return EngineContext.open()


@database_step("deliver the outbox")
def deliver_mail(ctx: EngineContext, batch_size: int = 200):
    """Send what is due in the outbox (SMTP, or .eml files with no SMTP configured)."""
    from notifications.delivery import deliver_pending

    report = deliver_pending(ctx.db, batch_size=batch_size)
    logger = get_run_logger()
    logger.info(report.summary())
    if report.error:
        logger.warning(report.summary())
    return report


@contextmanager
def opened_engine() -> Iterator[EngineContext]:
    ctx = open_engine()
    try:
        yield ctx
    finally:
        ctx.db.dispose()


@database_step("materialise, evaluate, escalate, notify")
def sweep_deadlines(
    ctx: EngineContext,
    today: date,
    *,
    force: bool,
    numbers: Sequence[str] | None = None,
    agencies: Sequence[str] | None = None,
    plan: str | None = None,
) -> SweepResult:
    """The engine's sweep for `today` (every plan, or `plan`'s obligations `numbers`): one
    transaction, so a retry starts from a clean slate and a rerun changes nothing."""
    result = engine.sweep(
        ctx,
        today,
        force=force,
        numbers=numbers,
        agencies=agencies,
        partition=partition_label(numbers, agencies, plan),
        actor="prefect",
        plan=plan,
        announce=True,
    )
    logger = get_run_logger()
    if result.skipped_reason:
        logger.info("Không quét ngày %s: %s", f"{today:%d/%m/%Y}", result.skipped_reason)
    else:
        logger.info(
            "Quét ngày %s: %d việc mới, %d bậc đôn đốc mới, %d thư vào hàng đợi.",
            f"{today:%d/%m/%Y}",
            result.created,
            len(result.escalations),
            result.notifications,
        )
    return result


@database_step("announce to Prefect")
def announce(ctx: EngineContext) -> AnnounceReport:
    """Emit the Prefect events recorded and not yet announced (this run's escalations or
    recorded event, and whatever an earlier run recorded but died before announcing),
    each once: operators' automations and the deployments' triggers wait for them."""
    report = announce_pending(ctx.db)
    if report.announced or report.found or report.unconfirmed:
        get_run_logger().info(report.summary())
    return report
