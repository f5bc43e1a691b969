"""Job tools: status, progress, result and cancellation of long work (generate_dataset with wait=false, ...)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from quantdesk.server.errors import NotFound
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.jobs.kinds import registered_kinds
from quantdesk.tools.jobs.service import JobService
from quantdesk.tools.jobs.store import JobRecord

tools = ToolSet("jobs")
# at start: jobs a stopped server left running resume (or are marked failed) when the server starts
# `background: False` (one-shot commands) leaves them for the next long-lived process
tools.service(JobService, lambda services: JobService(
    services.state, services.data_dir, services, registered_kinds(),
    resume=bool(services.settings.get("background", True))), at_start=True)

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,95}$"
Status = Literal["queued", "running", "completed", "failed", "cancelled"]




class JobIdInput(ToolInput):
    job_id: str = Field(max_length=96, pattern=JOB_ID_PATTERN, description="A job id, as generate_dataset returns.")


class ListJobsInput(ToolInput):
    status: list[Status] | None = Field(None, max_length=5, description="Only jobs in these states.")
    kind: str | None = Field(None, max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                             description="Only jobs of this kind (e.g. generate_dataset).")
    limit: int = Field(50, ge=1, le=200, description="At most this many jobs, newest first.")


class ProgressOut(ToolOutput):
    done: float
    total: float | None
    message: str | None


class ProblemOut(ToolOutput):
    path: str
    message: str


class ErrorOut(ToolOutput):
    kind: str = Field(description="invalid_argument, unavailable, internal, ...")
    message: str
    problems: list[ProblemOut]


class JobOut(ToolOutput):
    job_id: str
    kind: str
    status: Status = Field(description="queued, running, completed, failed or cancelled.")
    owner: Literal["request", "server"] = Field(
        description="`request`: a call waits for it and ends it by ending early; `server`: it runs on its own, "
        "survives disconnects and restarts (resumed from its checkpoint).")
    status_url: str = Field(description="REST: GET it for this record, DELETE it to cancel.")
    progress: ProgressOut | None
    result: dict[str, Any] | None = Field(description="When completed: what a waiting call returns.")
    error: ErrorOut | None = Field(description="When failed or cancelled: why.")
    resumes: int = Field(description="How often a server start resumed it.")
    arguments: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str


class JobsOut(ToolOutput):
    jobs: list[JobOut]
    count: int


def job_url(job_id: str) -> str:
    return f"/jobs/{job_id}"


def job_out(record: JobRecord) -> JobOut:
    progress = (ProgressOut(done=record.progress, total=record.total, message=record.message)
                if record.progress is not None else None)
    error = None
    if record.error is not None and record.status != "completed":
        error = ErrorOut(kind=record.error.kind, message=record.error.message,
                         problems=[ProblemOut(path=p, message=m) for p, m in record.error.problems])
    return JobOut(job_id=record.job_id, kind=record.kind, status=record.status, owner=record.owner,
                  status_url=job_url(record.job_id), progress=progress, result=record.result, error=error,
                  resumes=record.resumes, arguments=record.arguments, created_at=record.created_at,
                  started_at=record.started_at, finished_at=record.finished_at, updated_at=record.updated_at)


def caller_of(ctx: CallContext) -> str:
    """Who a job belongs to: the API key's id, or the principal's name (the local user, the environment key)."""
    return ctx.principal.key_id or ctx.principal.name


def _visible(ctx: CallContext, job_id: str) -> JobRecord:
    record = ctx.services.get(JobService).get(job_id)
    if not ctx.principal.allows("admin") and record.caller != caller_of(ctx):
        raise NotFound(f"no job {job_id!r}")  # another caller's job: as if it did not exist
    return record


@tools.tool(scope="read", title="Job status", read_only=True, idempotent=True)
async def get_job(args: JobIdInput, ctx: CallContext) -> JobOut:
    """Status, progress (done of total), and the result or the error of one job.

    Long work such as generate_dataset with wait=false returns a job_id at once; poll this until
    status is completed (the result is then what a waiting call returns), failed or cancelled.
    Callers see their own jobs; admin keys see every job.
    """
    return job_out(_visible(ctx, args.job_id))


@tools.tool(scope="read", title="List jobs", read_only=True, idempotent=True)
async def list_jobs(args: ListJobsInput, ctx: CallContext) -> JobsOut:
    """List jobs, newest first, optionally only some states or one kind (own jobs; every job for admin keys)."""
    caller = None if ctx.principal.allows("admin") else caller_of(ctx)
    records = ctx.services.get(JobService).recent(caller=caller, statuses=tuple(args.status or ()),
                                                  kind=args.kind, limit=args.limit)
    return JobsOut(jobs=[job_out(r) for r in records], count=len(records))


@tools.tool(scope="read", title="Cancel a job", destructive=True, idempotent=True)
async def cancel_job(args: JobIdInput, ctx: CallContext) -> JobOut:
    """Cancel a queued or running job: its workers stop and its partial files are removed (nothing is published).

    Returns the job once it has wound down (status cancelled); a job that already ended is returned as
    it is. Only the caller that started the job (or an admin key) can cancel it.
    """
    _visible(ctx, args.job_id)
    record = await ctx.services.get(JobService).cancel(args.job_id, f"cancelled by {caller_of(ctx)}")
    return job_out(record)
