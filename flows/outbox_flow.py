"""Outbox delivery (gửi thư): every ten minutes, and at the end of each daily sweep.

The outbox is the source of truth: this flow only sends what is due in it. An SMTP
server that cannot be reached is not a failed run: its messages wait with a backoff and
the next run (ten minutes later) tries again; a permanent refusal is recorded on the
message and listed by `dunghan outbox list --status failed`.
"""

from __future__ import annotations

from prefect import flow

from flows.parameters import Number, accepted
from flows.steps import REFUSALS, deliver_mail, opened_engine, refuse


@flow(
    name="deliver-outbox",
    description="Gửi các thư đến hạn trong hàng đợi (SMTP hoặc tệp .eml trong var/outbox).",
    validate_parameters=False,
)
def deliver_outbox(
    batch_size: Number("Số thư gửi qua một kết nối SMTP.", minimum=1) = 200,
) -> dict:
    """Deliver every due outbox message, `batch_size` per SMTP connection."""
    try:
        asked = accepted(deliver_outbox, locals())
        with opened_engine() as ctx:
            report = deliver_mail(ctx, asked.batch_size)
            return {
                "sent": report.sent,
                "retry": report.retry,
                "failed": report.failed,
                "error": report.error,
            }
    except REFUSALS as refused:
        return refuse(refused)
