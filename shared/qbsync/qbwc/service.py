"""The Web Connector conversation (C1-C3, V1, V2, V5): what each SOAP call does with tickets, connectors and jobs.

One conversation: ``authenticate`` checks the login and opens a ticket → ``sendRequestXML`` packs as many queued
jobs as fit into one ``QBXMLMsgsRq`` (``continueOnError``, ``requestID`` = job seq, ``newMessageSetID``) → the
Web Connector runs it in QuickBooks → ``receiveResponseXML`` records each job's outcome by requestID and answers
an honest percentage → … → ``closeConnection`` writes the conversation into the connector's last 10.

Nothing is sent twice into QuickBooks: jobs are marked ``sent`` with their message-set id *before* the qbXML is
returned. If the response never comes back (the Web Connector or the network dropped), the next conversation
re-sends exactly those jobs with ``oldMessageSetID`` set to the lost set: QuickBooks answers with the stored
response of a set it already processed instead of running it again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lxml import etree

from qbsync import __version__
from qbsync.clock import Clock, SystemClock, iso
from qbsync.connectors import MAX_CONVERSATIONS, ConnectorService
from qbsync.errors import ConcurrentModification, QbsyncError
from qbsync.observability import get_logger
from qbsync.qbwc import recovery
from qbsync.qbwc.jobs import job_kind
from qbsync.qbxml import (
    QbxmlParseError,
    QbxmlResult,
    RetRecord,
    StatusClass,
    UnsupportedQbxmlVersion,
    build_message_set,
    estimate_batch,
    negotiate_version,
    parse_hcp_response,
    parse_response,
)
from qbsync.qbxml.versions import QbxmlVersion
from qbsync.store.ports import Connector, Job, JobStatus, Store, Ticket
from qbsync.sync.desktop_transfers import is_configuration_issue

NO_WORK = "none"
INVALID_USER = "nvu"
BUSY = "busy"
ITERATOR_INVALID = 3391  # "The iteratorID … is not valid": iterators do not survive their session
UNKNOWN_TICKET = "The session is unknown or has expired; the Web Connector will log in again at its next run."


@dataclass(frozen=True)
class Limits:
    """How much one round trip may carry. Lambda caps a request or response at 6 MB; stay well under it."""

    max_requests: int = 100
    max_request_bytes: int = 1_500_000
    max_response_bytes: int = 2_500_000
    ticket_ttl_seconds: int = 30 * 60
    # A second login while the open conversation was active this recently gets "busy"; an older one is taken to
    # be abandoned (the Web Connector or network dropped) and the new login takes over.
    busy_seconds: int = 90
    retry_attempts: int = 5  # "try again later" statuses (3170-3180) and hresult failures before giving up


def ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def _inc(counter: dict[str, int], key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


class WebConnectorSession:
    """Implements :class:`qbsync.qbwc.soap.WebConnectorService` over the store."""

    def __init__(
        self,
        store: Store,
        connectors: ConnectorService,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        epoch: Callable[[], float] = time.time,
        on_job_finished: Callable[[Job], None] | None = None,
        on_page: Callable[[Job, tuple[RetRecord, ...]], None] | None = None,
        on_query_result: Callable[[Job, QbxmlResult], None] | None = None,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.clock = clock or SystemClock()
        self.limits = limits or Limits()
        self.epoch = epoch
        self.on_job_finished = on_job_finished
        self.on_page = on_page
        self.on_query_result = on_query_result  # every answer (page) of a query job: reconciliation reads it
        self.log = get_logger()

    # --- handshake ------------------------------------------------------------------------------------------

    def server_version(self) -> str:
        return f"qbsync {__version__}"

    def get_server_version(self, ticket: str) -> str:
        return self.server_version()

    def client_version(self, str_version: str) -> str:
        """Warn (not refuse) Web Connectors older than 2.1, the oldest version still supported by Intuit."""
        parts = [int(p) for p in str_version.split(".")[:2] if p.isdigit()]
        if len(parts) == 2 and tuple(parts) < (2, 1):
            return f"W:This QuickBooks Web Connector ({str_version}) is old; please update it to 2.1 or later."
        return ""

    def authenticate(self, str_user_name: str, str_password: str) -> list[str]:
        login = self.connectors.login(str_user_name, str_password)
        if not login.ok or login.connector is None:
            if login.connector is not None:
                self._add_conversation(login.connector, {"status": "login_failed", "detail": login.refused or ""})
            self.log.info("web connector login refused", extra={"reason": login.refused})
            return ["", INVALID_USER]
        connector = login.connector
        now = int(self.epoch())
        if not self.store.jobs.unfinished(connector.connector_id, limit=1):
            self.connectors.modify(connector.tenant_id, connector.connector_id, self._no_work)
            # Nothing to do: the Web Connector shows "No data exchange required" and closes.
            return ["", NO_WORK]
        ticket = secrets.token_urlsafe(32)
        hashed = ticket_hash(ticket)
        claimed = self._claim_live(connector, hashed, now)
        if not claimed:
            return ["", BUSY]
        self.store.tickets.create(
            Ticket(
                ticket_hash=hashed,
                tenant_id=connector.tenant_id,
                connector_id=connector.connector_id,
                created_at=iso(self.clock.now()),
                expires_at=now + self.limits.ticket_ttl_seconds,
                last_activity=now,
            )
        )
        self._add_conversation(
            connector, {"status": "in_progress", "ticket_ref": hashed[:12], "started_at": iso(self.clock.now())}
        )
        return [ticket, ""]  # "" = use the company file open in QuickBooks (checked on the first sendRequestXML)

    # --- the work -------------------------------------------------------------------------------------------

    def send_request_xml(
        self,
        ticket: str,
        str_hcp_response: str,
        str_company_file_name: str,
        qbxml_country: str,
        qbxml_major_vers: str,
        qbxml_minor_vers: str,
    ) -> str:
        session = self._open_ticket(ticket)
        if session is None:
            return ""
        connector = self.store.connectors.get(session.tenant_id, session.connector_id)
        if connector is None:
            self._fail(session, "This connector no longer exists.")
            return ""
        if session.qbxml_version is None:
            problem = self._first_contact(
                session, connector, str_hcp_response, str_company_file_name, qbxml_major_vers, qbxml_minor_vers
            )
            if problem is not None:
                self._fail(session, problem)
                return ""
            session = self._require_ticket(session.ticket_hash)
        version = QbxmlVersion.parse(session.qbxml_version or "13.0")
        jobs, old_message_set = self._next_batch(session.connector_id, session.ticket_hash)
        if not jobs:
            return ""
        message_set_id = secrets.token_hex(16)
        requests = [_build(job, version, session.ticket_hash) for job in jobs]
        document = build_message_set(
            requests, version=version, new_message_set_id=message_set_id, old_message_set_id=old_message_set
        )
        # Write-ahead: the jobs are "sent" in this message set before QuickBooks can see them.
        for job in jobs:
            self._save_job(replace(job, status="sent", message_set_id=message_set_id, updated_at=iso(self.clock.now())))
        self._update_ticket(
            session,
            lambda t: replace(
                t,
                in_flight={"message_set_id": message_set_id, "seqs": [j.seq for j in jobs]},
                round_trips=t.round_trips + 1,
            ),
        )
        return document

    def receive_response_xml(self, ticket: str, response: str, hresult: str, message: str) -> int:
        session = self._open_ticket(ticket)
        if session is None:
            return -1
        in_flight = session.in_flight or {"seqs": []}
        jobs = [j for j in (self.store.jobs.get(session.connector_id, seq) for seq in in_flight["seqs"]) if j]
        if hresult.strip():
            # QuickBooks did not run the set (e.g. 0x80040400 parse error): back to the queue, a bounded number of
            # times, then a visible failure.
            for job in jobs:
                self._retry_or_fail(job, f"QuickBooks could not process the request ({hresult}): {message}")
            self._update_ticket(session, lambda t: replace(t, in_flight=None, last_error=f"{hresult}: {message}"))
            return -101
        try:
            results = {r.request_id: r for r in parse_response(response)}
            if jobs and not any(job.request_id in results for job in jobs):
                raise QbxmlParseError("it answers none of the requests sent")
        except QbxmlParseError as exc:
            # QuickBooks ran the set (it answered); the answer was damaged on the way. Re-sending the requests as
            # new would write them twice: the set stays "sent", so the next sendRequestXML recovers it by its
            # message-set id (QuickBooks replays its stored response) — a bounded number of times.
            unreadable = f"Unreadable response from QuickBooks: {exc.detail}"
            for job in jobs:
                self._lost_or_fail(job, "The response from QuickBooks could not be read.")
            self._update_ticket(session, lambda t: replace(t, in_flight=None, last_error=unreadable))
            return -102
        sent: dict[str, int] = {}
        errors: dict[str, int] = {}
        config_issues = 0
        done = 0
        failed: set[int] = set()
        for job in sorted(jobs, key=lambda j: j.seq):
            result = results.get(job.request_id)
            outcome = self._apply_result(job, result, failed, session.ticket_hash)
            if outcome == "done":
                done += 1
                _inc(sent, job.transfer_type)
            elif outcome == "error" and result is not None and _configuration_issue(job, result):
                failed.add(job.seq)
                config_issues += 1  # a stale mapping: the user fixes the mappings, not the record
            elif outcome in ("error", "blocked"):
                failed.add(job.seq)
                _inc(errors, job.transfer_type)
        remaining = self.store.jobs.unfinished(session.connector_id, limit=1000)
        if remaining:
            self.store.jobs.advance_low_water(session.connector_id, remaining[0].seq)
        elif jobs:
            self.store.jobs.advance_low_water(session.connector_id, max(j.seq for j in jobs) + 1)
        percent = (
            100 if not remaining else min(99, int(100 * (session.done + done) / (session.done + done + len(remaining))))
        )

        def record(t: Ticket) -> Ticket:
            merged_sent, merged_errors = dict(t.sent), dict(t.errors)
            for key, value in sent.items():
                _inc(merged_sent, key, value)
            for key, value in errors.items():
                _inc(merged_errors, key, value)
            return replace(
                t,
                in_flight=None,
                done=t.done + done,
                sent=merged_sent,
                errors=merged_errors,
                config_issues=t.config_issues + config_issues,
                percent=percent,
            )

        self._update_ticket(session, record)
        return percent

    def connection_error(self, ticket: str, hresult: str, message: str) -> str:
        session = self._open_ticket(ticket)
        if session is not None:
            self._update_ticket(
                session, lambda t: replace(t, last_error=f"Could not open QuickBooks ({hresult}): {message}")
            )
        return "done"

    def get_last_error(self, ticket: str) -> str:
        session = self.store.tickets.get(ticket_hash(ticket)) if ticket else None
        if session is None or session.state == "closed" or session.expires_at <= int(self.epoch()):
            return UNKNOWN_TICKET  # a closed conversation's ticket is dead: it answers nothing about it
        return session.last_error or ""

    def close_connection(self, ticket: str) -> str:
        session = self.store.tickets.get(ticket_hash(ticket)) if ticket else None
        if session is None or session.state == "closed":
            return "OK"
        closed = self._close(session)
        if closed.last_error:
            return f"qbsync: {closed.last_error}"
        return (
            f"qbsync: {sum(closed.sent.values())} record(s) written to QuickBooks, "
            f"{sum(closed.errors.values())} with errors."
        )

    def get_interactive_url(self, wc_ticket: str, session_id: str) -> str:
        return ""

    def interactive_done(self, wc_ticket: str) -> str:
        return "Done"

    def interactive_rejected(self, wc_ticket: str, reason: str) -> str:
        return ""

    # --- helpers --------------------------------------------------------------------------------------------

    def _close(self, session: Ticket) -> Ticket:
        """End a conversation and write it into the connector's last 10."""
        closed = self._update_ticket(session, lambda t: replace(t, state="closed"))
        summary = {
            "status": conversation_status(closed),
            "ticket_ref": closed.ticket_hash[:12],
            "started_at": closed.created_at,
            "finished_at": iso(self.clock.now()),
            "detail": closed.last_error or "",
            "round_trips": closed.round_trips,
            "sent": closed.sent,
            "errors": closed.errors,
            "config_issues": closed.config_issues,
        }
        connector = self.store.connectors.get(closed.tenant_id, closed.connector_id)
        if connector is not None:
            self._finish_conversation(connector, closed.ticket_hash, summary)
        return closed

    def _open_ticket(self, ticket: str) -> Ticket | None:
        """The live ticket, its expiry pushed forward; None for unknown, expired or closed tickets."""
        if not ticket:
            return None
        found = self.store.tickets.get(ticket_hash(ticket))
        now = int(self.epoch())
        if found is None or found.state != "open" or found.expires_at <= now:
            return None
        return found

    def _require_ticket(self, hashed: str) -> Ticket:
        found = self.store.tickets.get(hashed)
        if found is None:
            raise QbsyncError("The ticket vanished during the conversation.")
        return found

    def _update_ticket(self, ticket: Ticket, change: Callable[[Ticket], Ticket]) -> Ticket:
        """Read-change-write the ticket; the change is re-applied on a fresh read if someone else wrote first."""
        current = ticket
        for _ in range(8):
            try:
                changed = change(current)
                now = int(self.epoch())
                return self.store.tickets.save(
                    replace(changed, expires_at=now + self.limits.ticket_ttl_seconds, last_activity=now)
                )
            except ConcurrentModification:
                current = self._require_ticket(ticket.ticket_hash)
        raise ConcurrentModification("The conversation is being changed concurrently.")

    def _fail(self, ticket: Ticket, message: str) -> None:
        self.log.warning("web connector conversation refused", extra={"reason": message})
        self._update_ticket(ticket, lambda t: replace(t, last_error=message))

    def _first_contact(
        self, ticket: Ticket, connector: Connector, hcp: str, company_file: str, major: str, minor: str
    ) -> str | None:
        """Negotiate the qbXML version and check the company file on the first sendRequestXML of a session."""
        host = parse_hcp_response(hcp) if hcp.strip() else None
        try:
            version = negotiate_version(
                host.supported_versions if host else (), major=major or None, minor=minor or None
            )
        except UnsupportedQbxmlVersion as exc:
            return exc.detail
        ours = host is not None and host.file_id == connector.file_id and host.owner_id == connector.owner_id
        bound = connector.company_file
        if bound is not None and bound.casefold() != company_file.casefold() and not ours:
            opened = company_file or "another file"
            return (
                f"This connector is linked to the company file {bound}, but QuickBooks has {opened} open. "
                "Open the linked company file, or create another connector for this one."
            )
        if bound is None or bound != company_file:
            self.connectors.modify(
                connector.tenant_id, connector.connector_id, lambda c: replace(c, company_file=company_file)
            )
        self._update_ticket(ticket, lambda t: replace(t, qbxml_version=str(version), company_file=company_file))
        return None

    def _next_batch(self, connector_id: str, session: str) -> tuple[list[Job], str | None]:
        """Jobs for the next message set, and the lost set to recover (``oldMessageSetID``) if there is one."""
        unfinished = self.store.jobs.unfinished(connector_id, limit=self.limits.max_requests * 4)
        lost = [job for job in unfinished if job.status == "sent"]
        if lost:
            # Re-send a lost set alone and whole: QuickBooks replays its stored response if it already ran it.
            first_set = lost[0].message_set_id
            return [job for job in lost if job.message_set_id == first_set], first_set
        batch: list[Job] = []
        requests: list[etree._Element] = []
        in_batch: set[int] = set()
        statuses: dict[int, str] = {}
        for job in unfinished:
            if len(batch) >= self.limits.max_requests:
                break
            waiting, blocker = self._dependency_state(job, in_batch, statuses)
            if blocker is not None:
                self._save_job(
                    replace(job, status="blocked", result={"reason": blocker}, updated_at=iso(self.clock.now()))
                )
                statuses[job.seq] = "blocked"
                continue
            if waiting:
                continue
            request = _build(job, QbxmlVersion(13, 0), session)
            estimate = estimate_batch([*requests, request])
            if batch and (
                estimate.request_bytes > self.limits.max_request_bytes
                or estimate.response_bytes > self.limits.max_response_bytes
            ):
                break
            batch.append(job)
            requests.append(request)
            in_batch.add(job.seq)
        return batch, None

    def _dependency_state(self, job: Job, in_batch: set[int], statuses: dict[int, str]) -> tuple[bool, str | None]:
        """(must wait, reason it can never run) for a job's dependencies."""
        waiting = False
        for seq in job.depends_on:
            if seq in in_batch:
                continue  # earlier in the same message set: QuickBooks runs requests in order
            status = statuses.get(seq)
            if status is None:
                dependency = self.store.jobs.get(job.connector_id, seq)
                status = dependency.status if dependency else "missing"
                statuses[seq] = status
            if status in ("error", "blocked", "missing"):
                return False, f"depends on job {seq}, which {'does not exist' if status == 'missing' else 'failed'}"
            if status != "done":
                waiting = True
        return waiting, None

    def _apply_result(self, job: Job, result: QbxmlResult | None, failed: set[int], session: str) -> str:
        now = iso(self.clock.now())
        if result is None:  # stopOnError, or QuickBooks skipped it: run it again later
            self._save_job(replace(job, status="queued", message_set_id=None, updated_at=now))
            return "queued"
        details: dict[str, Any] = {
            "status_code": result.status_code,
            "severity": result.status_severity,
            "message": result.status_message,
        }
        if recovery.needs_verify(job):
            return self._apply_verification(job, result, details)
        if self.on_query_result is not None and job.kind.endswith("_query") and result.ok:
            try:
                self.on_query_result(job, result)
            except Exception:
                self.log.exception(
                    "reading a query's answer failed", extra={"connector_id": job.connector_id, "seq": job.seq}
                )
        kind = job_kind(job.kind)
        if kind.iterates and (result.ok or result.status_code == ITERATOR_INVALID):
            return self._apply_page(job, result, details, session)
        if result.ok:
            ret = result.rets[0] if result.rets else None
            if ret is not None:
                details.update(
                    {
                        k: v
                        for k, v in {
                            "list_id": ret.list_id,
                            "txn_id": ret.txn_id,
                            "edit_sequence": ret.edit_sequence,
                            "name": ret.full_name or ret.name,
                            "ref_number": ret.ref_number,
                            "qb_type": _qb_type(ret),
                        }.items()
                        if v
                    }
                )
            self._save_job(replace(job, status="done", result=details, updated_at=now))
            return "done"
        if result.status_class is StatusClass.RETRY_LATER:
            return self._retry_or_fail(job, result.status_message)
        dependency_failed = [seq for seq in job.depends_on if seq in failed]
        if dependency_failed:
            details["reason"] = f"depends on job {dependency_failed[0]}, which failed"
            self._save_job(replace(job, status="blocked", result=details, updated_at=now))
            return "blocked"
        self._save_job(replace(job, status="error", result=details, updated_at=now))
        return "error"

    def _apply_verification(self, job: Job, result: QbxmlResult, details: dict[str, Any]) -> str:
        """The answer to a verification query (see :mod:`qbsync.qbwc.recovery`): done, write now, or ask a person."""
        now = iso(self.clock.now())
        if not result.ok:
            return self._retry_or_fail(job, f"Could not check QuickBooks for a lost request: {result.status_message}")
        found = recovery.verdict(job, result)
        if found.outcome == "found":
            done = {"status_code": 0, "severity": "Info", "message": "Status OK", **found.ids, "recovered": True}
            self._save_job(replace(job, status="done", result=done, updated_at=now))
            return "done"
        if found.outcome == "absent":  # it never reached QuickBooks: the write goes in the next round trip
            self._save_job(replace(job, status="queued", message_set_id=None, result={}, updated_at=now))
            return "queued"
        failed = {**details, "status_code": "lost_response_ambiguous", "message": found.message}
        self._save_job(replace(job, status="error", result=failed, updated_at=now))
        return "error"

    def _apply_page(self, job: Job, result: QbxmlResult, details: dict[str, Any], session: str) -> str:
        """One iterator page: count it, and queue the next page in this session (or finish)."""
        now = iso(self.clock.now())
        if result.status_code == ITERATOR_INVALID:  # the iterator died with its session: start over
            return self._retry_or_fail(replace(job, result={}), result.status_message)
        if self.on_page is not None and job.source_ref and result.rets:
            try:
                self.on_page(job, result.rets)  # e.g. the match index import; stored before the page counts
            except Exception:
                self.log.exception(
                    "storing an iterator page failed; the query starts over",
                    extra={"connector_id": job.connector_id, "seq": job.seq},
                )
                return self._retry_or_fail(replace(job, result={}), "storing a page of the answer failed")
        same_session = job.result.get("iterator_session") == session
        pages = (job.result.get("pages", 0) if same_session else 0) + 1
        records = (job.result.get("records", 0) if same_session else 0) + len(result.rets)
        details.update({"pages": pages, "records": records})
        if result.has_more:
            details.update({"iterator_id": result.iterator_id, "iterator_session": session})
            self._save_job(replace(job, status="queued", message_set_id=None, result=details, updated_at=now))
            return "more"
        self._save_job(replace(job, status="done", result=details, updated_at=now))
        return "done"

    def _retry_or_fail(self, job: Job, reason: str) -> str:
        attempts = job.attempts + 1
        status: JobStatus = "queued" if attempts < self.limits.retry_attempts else "error"
        self._save_job(
            replace(
                job,
                status=status,
                attempts=attempts,
                message_set_id=None,
                result={"message": reason} if status == "error" else job.result,
                updated_at=iso(self.clock.now()),
            )
        )
        return status

    def _lost_or_fail(self, job: Job, reason: str) -> str:
        """A job whose answer was lost: kept "sent" (with its message set) for recovery, until the attempts run out."""
        attempts = job.attempts + 1
        if attempts < self.limits.retry_attempts:
            self._save_job(replace(job, attempts=attempts, updated_at=iso(self.clock.now())))
            return "sent"
        return self._retry_or_fail(replace(job, attempts=attempts - 1), reason)

    def _save_job(self, job: Job) -> Job:
        saved = self.store.jobs.save(job)
        if self.on_job_finished is not None and saved.source_ref and saved.status in ("done", "error", "blocked"):
            try:
                self.on_job_finished(saved)  # the sync layer updates the source record's state
            except Exception:
                # The job's outcome is stored; the conversation goes on. The record keeps saying "pending" until
                # the outcome is applied again (logged for the operator).
                self.log.exception(
                    "recording a job's outcome on its source record failed",
                    extra={"connector_id": saved.connector_id, "seq": saved.seq},
                )
        return saved

    def _claim_live(self, connector: Connector, hashed: str, now: int) -> bool:
        """Make ``hashed`` the connector's one open conversation; False ("busy") if another is active."""
        previous = connector.live_ticket
        if previous:
            old = self.store.tickets.get(previous)
            if old is not None and old.state == "open":
                if old.last_activity + self.limits.busy_seconds > now:
                    return False
                self._update_ticket(
                    old,
                    lambda t: replace(
                        t, last_error=t.last_error or "The Web Connector stopped before the end of the conversation."
                    ),
                )
                self._close(self._require_ticket(previous))
        claimed = False

        def claim(c: Connector) -> Connector:
            nonlocal claimed
            claimed = c.live_ticket in (None, previous)  # nobody else took over since we looked
            return replace(c, live_ticket=hashed, live_until=now + self.limits.busy_seconds) if claimed else c

        self.connectors.modify(connector.tenant_id, connector.connector_id, claim)
        return claimed

    def _add_conversation(self, connector: Connector, entry: dict[str, Any]) -> None:
        entry = {"ticket_ref": "", "started_at": iso(self.clock.now()), **entry}
        self.connectors.modify(
            connector.tenant_id,
            connector.connector_id,
            lambda c: replace(c, conversations=[entry, *c.conversations][:MAX_CONVERSATIONS]),
        )

    def _no_work(self, c: Connector) -> Connector:
        """A run with nothing to send; configuration issues found since the last run are reported by it."""
        now = iso(self.clock.now())
        if not c.config_issues:
            return replace(c, last_sync_at=now, last_status="no_work")
        entry = {
            "status": "success_with_configuration_issues",
            "ticket_ref": "",
            "started_at": now,
            "finished_at": now,
            "detail": "nothing to send; records are blocked by configuration issues",
            "round_trips": 0,
            "sent": {},
            "errors": {},
            **_issues_summary(c.config_issues),
        }
        return replace(
            c,
            conversations=[entry, *c.conversations][:MAX_CONVERSATIONS],
            last_sync_at=now,
            last_status=entry["status"],
            config_issues=[],
        )

    def _finish_conversation(self, connector: Connector, hashed: str, summary: dict[str, Any]) -> None:
        def finish(c: Connector) -> Connector:
            nonlocal summary
            others = [x for x in c.conversations if x.get("ticket_ref") != summary["ticket_ref"]]
            if c.config_issues:  # found while queueing this run's work: reported (and forgotten) with it
                summary = {**summary, **_issues_summary(c.config_issues, summary.get("config_issues", 0))}
                if summary["status"] == "success":
                    summary["status"] = "success_with_configuration_issues"
            return replace(
                c,
                config_issues=[],
                conversations=[summary, *others][:MAX_CONVERSATIONS],
                last_sync_at=summary["finished_at"],
                last_status=summary["status"],
                live_ticket=None if c.live_ticket == hashed else c.live_ticket,
                live_until=0 if c.live_ticket == hashed else c.live_until,
            )

        self.connectors.modify(connector.tenant_id, connector.connector_id, finish)


def _build(job: Job, version: QbxmlVersion, session: str) -> etree._Element:
    """The job's request, or the query verifying it when its response was lost in an expired conversation."""
    if recovery.needs_verify(job):
        return recovery.verify_request(job)
    return job_kind(job.kind).build(job, version, session)


#: Transfers whose QuickBooks names all come from the mappings and settings (summarized journal entries): QuickBooks
#: not knowing a name there is a configuration issue to fix in the mappings, not an error of a record.
CONFIGURED_TRANSFERS = frozenset({"journal_entries"})


def _configuration_issue(job: Job, result: QbxmlResult) -> bool:
    if job.transfer_type in CONFIGURED_TRANSFERS and result.status_class is StatusClass.MISSING_REFERENCE:
        return True
    answered = replace(job, result={"status_code": result.status_code, "message": result.status_message})
    return is_configuration_issue(answered)


def _issues_summary(issues: list[dict[str, Any]], counted: int = 0) -> dict[str, Any]:
    """The conversation entry's fields for the configuration issues it reports."""
    return {"config_issues": counted + len(issues), "config_issue_details": issues[:10]}


def conversation_status(ticket: Ticket) -> str:
    if ticket.last_error:
        return "unsuccessful"
    if ticket.errors:
        return "finished_with_errors"
    if ticket.config_issues:
        return "success_with_configuration_issues"
    return "success"


def _qb_type(ret: RetRecord) -> str:
    """What a job's answer was: the Ret's type (``ItemService``, ``ItemInventory``, ``Invoice``…), and for an item
    kept as sales-and-purchase in QuickBooks ``/SalesAndPurchase`` after it (an item mod keeps that form)."""
    form = "/SalesAndPurchase" if "SalesAndPurchase" in ret.raw else ""
    return ret.ret_type.removesuffix("Ret") + form
