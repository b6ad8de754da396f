"""Lambda entry points shared by the thin handlers in ``functions/``: Powertools logging (correlation ids,
redaction), metrics (EMF) and tracing wrapped around one use case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from qbsync.observability import get_logger, get_metrics, get_tracer
from qbsync.schedules import JobFactory, ScheduleRunner
from qbsync.settings import get_settings
from qbsync.store.factory import get_store
from qbsync.transfers import MessageMeta, get_dispatcher

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def scheduled_handler(name: str, job_factory: JobFactory) -> LambdaHandler:
    """A handler for an EventBridge schedule that runs ``job_factory(store, settings)()`` and records the run."""
    logger, metrics, tracer = get_logger(), get_metrics(), get_tracer()

    @logger.inject_lambda_context(clear_state=True, correlation_id_path="id")
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        settings = get_settings()
        store = get_store(settings)
        result = ScheduleRunner(store).run(name, job_factory(store, settings))
        metrics.add_dimension(name="schedule", value=name)
        metrics.add_metric(name="ScheduleRuns", unit=MetricUnit.Count, value=1)
        for key, value in result.items():
            if isinstance(value, int) and not isinstance(value, bool) and key != "run":
                metrics.add_metric(name=_metric_name(key), unit=MetricUnit.Count, value=value)
        logger.info("schedule finished", extra={"outcome": result})
        return result

    return cast(LambdaHandler, handler)


def transfer_queue_handler() -> LambdaHandler:
    """The SQS FIFO handler: per-record dispatch, partial batch failures, and — when a record of one company
    (message group) fails — the rest of that group is returned too so its order holds; other groups go on."""
    logger, metrics, tracer = get_logger(), get_metrics(), get_tracer()

    def record_handler(record: SQSRecord) -> dict[str, Any] | None:
        attributes = record.attributes
        meta = MessageMeta(
            message_id=record.message_id,
            group_id=attributes.message_group_id,
            receive_count=int(attributes.approximate_receive_count or 1),
        )
        logger.thread_safe_append_keys(message_id=meta.message_id, message_group=meta.group_id)
        try:
            outcome = get_dispatcher().dispatch(record.body, meta)
        except Exception as exc:
            metrics.add_metric(name="TransferMessageFailures", unit=MetricUnit.Count, value=1)
            logger.warning("transfer message failed", extra={"error": type(exc).__name__, "detail": str(exc)})
            raise
        finally:
            logger.thread_safe_remove_keys(["message_id", "message_group"])
        metrics.add_metric(name="TransferMessagesProcessed", unit=MetricUnit.Count, value=1)
        return outcome

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not event.get("Records"):  # Lambda never sends one, but an empty batch is nothing to do, not an error
            return {"batchItemFailures": []}
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # Report an all-failed batch item by item too, instead of raising: the outcome for SQS is the same
        # (every message returns to the queue) but it is not counted as a function error by the alarm.
        processor.raise_on_entire_batch_failure = False
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)

    return cast(LambdaHandler, handler)


def _metric_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))
