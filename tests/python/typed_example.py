# typed_example.py — a typed program using the ctx API; `make test` runs
# mypy --strict on it to check that the shipped stubs describe the package.
import asyncio
import datetime
import threading
from typing import List, Optional

import ctx


def fetch(c: ctx.Context, url: str) -> str:
    c.check()
    ctx.sleep(0, c)
    return f"{url}: {c.value('request-id', 'none')}"


def cancel_later(cancel: ctx.CancelCauseFunc) -> None:
    threading.Timer(0.01, cancel, args=(ValueError("shutting down"),)).start()


@ctx.timeout(5)
def decorated(n: int) -> int:
    return n + 1


async def task() -> Optional[float]:
    async with ctx.timeout(datetime.timedelta(seconds=1)) as c:
        await asyncio.sleep(0)
        await ctx.background().wait_async() if c.done() else None
        return c.remaining()


def main() -> List[str]:
    root = ctx.with_value(ctx.background(), "request-id", 42)
    c, cancel = ctx.with_timeout(root, 2.5)
    out = [fetch(c, "a")]
    cancel()
    err: Optional[ctx.ContextError] = c.err()
    cause: Optional[BaseException] = ctx.cause(c)
    out.append(f"{err} / {cause}")
    d, cancel_cause = ctx.with_cancel_cause(root)
    cancel_later(cancel_cause)
    done: bool = d.wait(1.0)
    stop = ctx.after_func(d, lambda: None)
    stopped: bool = stop()
    out.append(f"{done} {stopped} {d.fileno() >= 0}")
    with ctx.timeout(1.5, interrupt=False) as s:
        s.cancel(KeyError("x"))
        dl: Optional[float] = s.deadline()
        out.append(str(dl))
    with ctx.deadline(datetime.datetime.now() + datetime.timedelta(seconds=3)):
        out.append(str(ctx.current()))
    with ctx.scope(parent=c):
        pass
    # every parameter by the name the SPEC gives it
    k, cancel_k = ctx.with_deadline_cause(parent=root, when=datetime.datetime.now(),
                                          cause=TimeoutError("late"))
    out.append(str(ctx.cause(c=k)))
    cancel_k()
    out.append(str(ctx.with_value(parent=root, key="a", value=1).value(key="a", default=0)))
    out.append(str(ctx.after_func(c=k, fn=lambda: None)()))
    out.append(str(decorated(1)))
    out.append(str(asyncio.run(task())))
    try:
        ctx.with_timeout(ctx.background(), 0)[0].check()
    except ctx.DeadlineExceeded as e:
        out.append(str(e))
    return out


if __name__ == "__main__":
    print(main())
