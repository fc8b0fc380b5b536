"""Replay: move a consumer group's committed offsets back (or forward) so its workers process
records again (``kafka-llm replay``; ``docs/operations.md``, "Replay, dead letters and batch").

Kafka only lets a group's committed offsets be changed while the group has no active members: a
running member would overwrite them with its own position on its next commit anyway. So a replay
is: stop the workers, reset, start them again. ``allow_active`` waits for the group to empty
instead of refusing at once, which suits a rolling stop of the workers.

What the workers do with replayed records follows the delivery promises (``docs/guarantees.md``,
"Duplicates are bounded"): a request whose result is still ``done`` in Redis (within the result
TTL) is not sent to the provider again; its stored response is published again. Requests that
ended in ``error`` (or whose results have expired) are processed again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kafka_llm import kafka as k
from kafka_llm.errors import GroupActiveError, KafkaError

__all__ = ["OffsetReset", "reset_offsets"]

#: librdkafka's "no committed offset".
_NO_OFFSET = -1001
# How often the group's state is asked for while waiting for it to empty.
_ACTIVE_POLL_S = 0.25


@dataclass(frozen=True)
class OffsetReset:
    """One partition's committed offset before and after a reset. ``old_offset`` is None when the
    group had committed nothing for the partition (its consumers would start per auto.offset.reset)."""

    topic: str
    partition: int
    old_offset: int | None
    new_offset: int


def _describe_members(group: k.GroupDescription) -> list[str]:
    return [f"{m.client_id or '?'}@{m.host.lstrip('/') or '?'} ({m.member_id})" for m in group.members]


def _active_error(group: str, description: k.GroupDescription, waited: float | None) -> GroupActiveError:
    members = _describe_members(description)
    if waited is None:
        advice = (
            "stop the group's workers first, or pass allow_active (--allow-active) to wait for them to leave"
        )
        waited_text = ""
    else:
        advice = "stop the group's workers, or wait longer (active_timeout, --active-timeout)"
        waited_text = f" after waiting {waited:g} s for it to empty"
    return GroupActiveError(
        f"consumer group {group!r} has {len(members)} active member(s){waited_text}: {', '.join(members)}. "
        "Kafka accepts offset changes only for an empty group (running members would overwrite them "
        f"on their next commit): {advice}",
        members,
    )


def _target_count(
    to_datetime: datetime | None, to_offset: int | str | None, by_duration: timedelta | None
) -> int:
    return sum(x is not None for x in (to_datetime, to_offset, by_duration))


def _validate(
    group: str,
    topic: str,
    to_datetime: datetime | None,
    to_offset: int | str | None,
    by_duration: timedelta | None,
    active_timeout: float,
) -> None:
    if not group:
        raise ValueError("group: must not be empty")
    if not topic:
        raise ValueError("topic: must not be empty")
    if _target_count(to_datetime, to_offset, by_duration) != 1:
        raise ValueError("exactly one of to_datetime, to_offset and by_duration must be given")
    if isinstance(to_offset, bool) or (to_offset is not None and not isinstance(to_offset, int | str)):
        raise ValueError(f"to_offset: must be an offset, 'earliest' or 'latest', got {to_offset!r}")
    if isinstance(to_offset, str) and to_offset not in ("earliest", "latest"):
        raise ValueError(f"to_offset: must be an offset, 'earliest' or 'latest', got {to_offset!r}")
    if isinstance(to_offset, int) and to_offset < 0:
        raise ValueError(f"to_offset: must not be negative, got {to_offset}")
    if by_duration is not None and by_duration <= timedelta(0):
        raise ValueError(f"by_duration: must be positive, got {by_duration}")
    if active_timeout < 0:
        raise ValueError(f"active_timeout: must not be negative, got {active_timeout}")


def _epoch_ms(moment: datetime) -> int:
    # A naive datetime is local time, as datetime.timestamp() reads it.
    return int(moment.timestamp() * 1000)


def reset_offsets(
    bootstrap_servers: str,
    group: str,
    topic: str,
    *,
    to_datetime: datetime | None = None,
    to_offset: int | str | None = None,
    by_duration: timedelta | None = None,
    partitions: list[int] | None = None,
    allow_active: bool = False,
    dry_run: bool = False,
    kafka_config: Mapping[str, str] | None = None,
    active_timeout: float = 60.0,
    timeout: float = 30.0,
) -> list[OffsetReset]:
    """Sets consumer group ``group``'s committed offsets on ``topic`` and returns, per partition,
    the offset before and after.

    Exactly one target:
      - ``to_datetime``: the first record whose timestamp is at or after that time (a naive
        datetime is local time); partitions with no such record go to their end;
      - ``to_offset``: ``"earliest"``, ``"latest"``, or an offset applied to every partition;
      - ``by_duration``: like ``to_datetime`` at now minus the duration (``timedelta(minutes=15)``
        replays the last 15 minutes).
    Every new offset is clamped to the partition's [low, high] watermarks. ``partitions`` limits
    the reset to those partitions (default: all of the topic's).

    Kafka refuses offset changes while the group has active members (their own commits would undo
    the reset). Without ``allow_active`` such a group is refused at once with GroupActiveError,
    naming the members. With ``allow_active`` the call waits up to ``active_timeout`` seconds for
    the group to empty (e.g. while its workers are being stopped) and then resets; if members are
    still there, GroupActiveError names them. Offsets are never written while a member is active.

    ``dry_run`` computes and returns the resets without writing anything (and, with
    ``allow_active``, without waiting). ``kafka_config`` adds librdkafka properties (SASL, TLS).
    Raises ValueError for bad arguments and KafkaError when the topic or a partition does not
    exist or the broker fails; ``timeout`` bounds each broker request.
    """
    _validate(group, topic, to_datetime, to_offset, by_duration, active_timeout)
    timeout_ms = max(1, int(timeout * 1000))
    with k.admin(bootstrap_servers, kafka_config) as admin:
        count = admin.partition_count(topic, timeout_ms)
        if count < 0:
            raise KafkaError(f"topic {topic!r} does not exist")
        if count == 0:
            raise KafkaError(f"topic {topic!r} has partitions without a leader; try again shortly")
        chosen = sorted(set(partitions)) if partitions is not None else list(range(count))
        if partitions is not None and len(chosen) != len(partitions):
            raise ValueError(f"partitions: lists a partition twice: {partitions}")
        missing = [p for p in chosen if not 0 <= p < count]
        if missing:
            raise ValueError(f"partitions: topic {topic!r} has partitions 0..{count - 1}, not {missing}")
        if not chosen:
            raise ValueError("partitions: must name at least one partition")

        _wait_until_empty(admin, group, allow_active, dry_run, active_timeout, timeout_ms)

        # The time target is taken now (after any wait), so by_duration means "the last <duration>".
        at_ms: int | None = None
        if to_datetime is not None:
            at_ms = _epoch_ms(to_datetime)
        elif by_duration is not None:
            at_ms = _epoch_ms(datetime.now(UTC) - by_duration)
        marks = {p: admin.watermarks(topic, p, timeout_ms) for p in chosen}
        by_time: dict[int, int] = {}
        if at_ms is not None:
            found = admin.offsets_for_times([(topic, p, at_ms) for p in chosen], timeout_ms)
            by_time = {p: offset for _, p, offset in found}

        resets: list[OffsetReset] = []
        committed = {
            p: o for _, p, o in admin.committed_offsets(group, [(topic, p) for p in chosen], timeout_ms)
        }
        for p in chosen:
            low, high = marks[p]
            if to_offset == "earliest":
                target = low
            elif to_offset == "latest":
                target = high
            elif isinstance(to_offset, int):
                target = to_offset
            else:
                target = by_time.get(p, -1)
                target = high if target < 0 else target
            old = committed.get(p, _NO_OFFSET)
            resets.append(OffsetReset(topic, p, None if old < 0 else old, min(max(target, low), high)))
        if dry_run:
            return resets
        try:
            admin.alter_committed_offsets(
                group, [(topic, r.partition, r.new_offset) for r in resets], timeout_ms
            )
        except KafkaError:
            # A member may have joined between the check and the change: say so rather than
            # passing on the broker's "unknown member" per partition.
            description = admin.describe_group(group, timeout_ms)
            if description.members:
                raise _active_error(group, description, None) from None
            raise
        return resets


def _wait_until_empty(
    admin: k.AdminClient,
    group: str,
    allow_active: bool,
    dry_run: bool,
    active_timeout: float,
    timeout_ms: int,
) -> None:
    description = admin.describe_group(group, timeout_ms)
    if not description.members:
        return
    if not allow_active:
        raise _active_error(group, description, None)
    if dry_run:
        return
    started = time.monotonic()
    deadline = started + active_timeout
    while description.members:
        if time.monotonic() >= deadline:
            raise _active_error(group, description, round(time.monotonic() - started, 1))
        time.sleep(_ACTIVE_POLL_S)
        description = admin.describe_group(group, timeout_ms)
