"""Task: one round of a generator, declared (the distilabel idea: the backend generates, the task knows the prompt
and the answer, the stage batches / caches / retries).

A task says how a record becomes a request, how a completion is parsed, and whether the parsed completion is kept
or rejected with a reason. `run_task(rounds, task, records)` runs it as round `task.name` through
`rounds.generate` (the cache, resume, per-round settings and report are the round's, as before) and sorts what
comes back.

    QUESTION = Template("work_date", 1, "When was the work {title} by {author} written? Answer just with the year.")

    def ask(task, work):                      # one input record -> a request (or a list of them, or None: skip)
        wid, title, author = work
        return task.ask("date-" + short_hash(wid), user=task.template.format(title=title, author=author),
                        parent_ids=[wid], meta={"work_id": wid})

    dates = Task("work_dates", QUESTION, SamplingParams(temperature=0.0, max_tokens=8), request=ask,
                 parse=parse_year_answer)  # parse(completion text) -> value | None
    out = run_task(rounds, dates, works)      # out.accepted, out.rejected (each with `reason`), out.failed,
                                              # out.parsed {record id: value}, out.output (the RoundOutput)

- `Template(name, version, text)`: `template.id` ("name@vN") is written on every request and is part of the
  generation cache key: editing a prompt means bumping its version. A round may use several templates (one per
  style): `task.ask(..., template=OTHER)`.
- `request(task, record)`: `task.ask(id, prompt=... | user=... | messages=..., parent_ids, meta, template,
  sampling)` builds a `GenerationRequest` with the task's template id and sampling. `meta` is carried onto every
  generated record of that request (`corpora.generated.join_results`).
- `parse(text) -> value | None` (default: the text itself). `accept(record, value) -> (row | None, reason | None)`:
  reason None keeps `row` (None: the record unchanged); a reason rejects the row (None: the record) with that
  reason. Without `accept`, a value of None rejects the record with `task.unparsed` ("unparseable").
- Failed requests (`reason="generation_failed"`) are in `out.failed`, apart from the rejected ones.
- Per-input accept: a task with `combine(record, ok, failed) -> (row, reason)` gets, for each input record, the
  generated records of the requests that record made (`ok`) and of those that failed (`failed`), and makes one row
  of them (e.g. a translation assembled from its parts): reason None keeps it, a reason rejects it; every input
  gives exactly one row, in input order, also when all its requests failed. `parse` / `accept` are not used then.
- Several rows per completion: a task with `accept_many(record, value) -> [(row, reason | None), ...]` (instead of
  `accept`) makes any number of rows of one completion (none: the completion gives no row), each kept (reason
  None) or rejected with its reason (e.g. a completion that holds several instances). `out.rows` lists every row
  the task made, kept and rejected, in order, as made (without the `reason` the rejected list adds).
- `Task(..., ordered=True)` sorts a round's completions in request order (then generated record id) before parsing
  (`in_request_order`), so the rows do not depend on the order the engine or the cache gave them back in.
- A template whose text is built in code from parts may name the variant used: `task.ask(..., variant=h)` writes
  `template_id` "name@vN.h" (e.g. a hash of the few-shot examples it holds).
- A loop round (`rounds.until`) sorts each round's output with `task.sort(output)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from generators.backends.base import GenerationRequest, SamplingParams
from generators.rounds import RoundOutput, Rounds
from generators.settings import GenerationSettings


@dataclass(frozen=True)
class Template:
    """A versioned prompt: `id` = "name@vN" (in every request's `template_id`, hence in the cache key)."""

    name: str
    version: int
    text: str = ""  # a str.format template; empty when the prompt is built in code

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"

    def format(self, **fields: Any) -> str:
        return self.text.format(**fields)


RequestFn = Callable[["Task", Any], "GenerationRequest | Sequence[GenerationRequest] | None"]
AcceptFn = Callable[[dict, Any], "tuple[dict | None, str | None]"]
CombineFn = Callable[[Any, list[dict], list[dict]], "tuple[dict, str | None]"]
AcceptManyFn = Callable[[dict, Any], "Iterable[tuple[dict, str | None]]"]


def in_request_order(output: RoundOutput) -> list[dict]:
    """A round's generated records in the order of its requests (then by record id)."""
    order = {r.id: i for i, r in enumerate(output.requests)}
    return sorted(output.ok, key=lambda r: (order[r["request_id"]], r["id"]))


@dataclass
class Task:
    """One round: `name` (the round's name: its cache folder and `generation.rounds.<name>` overrides), the
    template and sampling its requests use, and the three steps (see the module docstring)."""

    name: str
    template: Template | None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request: RequestFn | None = None
    parse: Callable[[str], Any] | None = None
    accept: AcceptFn | None = None
    unparsed: str = "unparseable"  # the reject reason of a parse that gave None (when there is no `accept`)
    combine: CombineFn | None = None  # per-input accept (see the module docstring)
    accept_many: AcceptManyFn | None = None  # one completion -> several rows (see the module docstring)
    ordered: bool = False  # parse the completions in request order (`in_request_order`), not as they came back

    def __post_init__(self) -> None:
        if self.accept is not None and self.accept_many is not None:
            raise ValueError(f"task {self.name!r}: give `accept` (one row per completion) or `accept_many`, not both")

    def ask(self, id: str, *, prompt: str | None = None, user: str | None = None,
            messages: list[dict[str, str]] | None = None, parent_ids: Iterable[str] = (),
            meta: dict[str, Any] | None = None, template: Template | None = None,
            sampling: SamplingParams | None = None, variant: str | None = None) -> GenerationRequest:
        """A request of this task: exactly one of `prompt` (raw), `user` (one user message) or `messages`."""
        if user is not None:
            if messages is not None:
                raise ValueError(f"request {id!r}: give `user` or `messages`, not both")
            messages = [{"role": "user", "content": user}]
        template = template or self.template
        template_id = (template.id if template else "") + (f".{variant}" if variant else "")
        return GenerationRequest(id=id, prompt=prompt, messages=messages, sampling=sampling or self.sampling,
                                 template_id=template_id, parent_ids=list(parent_ids),
                                 meta=dict(meta or {}))

    def requests(self, records: Iterable[Any]) -> list[GenerationRequest]:
        """Every record's request(s), in record order (a record whose `request` gives None is skipped)."""
        return [q for made in self.requests_by_input(records) for q in made]

    def requests_by_input(self, records: Iterable[Any]) -> list[list[GenerationRequest]]:
        """The request(s) each record makes (an empty list where `request` gives None), in record order."""
        if self.request is None:
            raise TypeError(f"task {self.name!r} declares no `request`")
        out: list[list[GenerationRequest]] = []
        for record in records:
            got = self.request(self, record)
            out.append([] if got is None else [got] if isinstance(got, GenerationRequest) else list(got))
        return out

    def combine_output(self, records: Sequence[Any], made: Sequence[Sequence[GenerationRequest]],
                       output: RoundOutput) -> TaskOutput:
        """One row per input record from the generated records of its own requests (`combine`)."""
        if self.combine is None:
            raise TypeError(f"task {self.name!r} declares no `combine`")
        ok, failed = output.by_request, {}
        for r in output.failed:
            failed.setdefault(r["request_id"], []).append(r)
        accepted, rejected, rows = [], [], []
        for record, qs in zip(records, made, strict=True):
            row, reason = self.combine(record, [r for q in qs for r in ok.get(q.id, ())],
                                       [r for q in qs for r in failed.get(q.id, ())])
            rows.append(row)
            if reason is None:
                accepted.append(row)
            else:
                row["reason"] = reason
                rejected.append(row)
        return TaskOutput(accepted, rejected, list(output.failed), {}, output, rows)

    def sort(self, output: RoundOutput) -> TaskOutput:
        """Parse and accept each generated record of a round's output (`ordered`: in request order)."""
        accepted, rejected, parsed, rows = [], [], {}, []
        for record in in_request_order(output) if self.ordered else output.ok:
            value = self.parse(record["text"]) if self.parse is not None else record["text"]
            parsed[record["id"]] = value
            if self.accept_many is not None:
                made = list(self.accept_many(record, value))
            elif self.accept is not None:
                made = [self.accept(record, value)]
            else:
                made = [(record, self.unparsed if value is None else None)]
            for row, reason in made:
                row = record if row is None else row
                rows.append(row)
                if reason is None:
                    accepted.append(row)
                else:
                    rejected.append({**row, "reason": reason})
        return TaskOutput(accepted, rejected, list(output.failed), parsed, output, rows)


@dataclass
class TaskOutput:
    accepted: list[dict]  # rows kept
    rejected: list[dict]  # rows the task rejected, each with `reason`
    failed: list[dict]  # one record per failed request (`reason="generation_failed"`, `error`)
    parsed: dict[str, Any]  # generated record id -> parsed value (rejected ones too)
    output: RoundOutput  # the round's requests, records and report
    rows: list[dict] = field(default_factory=list)  # every row made, kept and rejected, in order (sort: without
    # the rejected list's `reason`; combine's rows are the ones it marks)


def run_task(rounds: Rounds, task: Task, records: Iterable[Any], name: str | None = None,
             settings: GenerationSettings | None = None) -> TaskOutput:
    """Build the task's requests from `records`, run them as round `name` (default `task.name`; e.g. "judge#2")
    and sort the completions (a task with `combine`: one row per record)."""
    if task.combine is not None:
        records = list(records)
        made = task.requests_by_input(records)
        output = rounds.generate(name or task.name, [q for qs in made for q in qs], settings=settings)
        return task.combine_output(records, made, output)
    return task.sort(rounds.generate(name or task.name, task.requests(records), settings=settings))
