"""What every route shares: errors as HTTPExceptions (answered as {"error": "one line"}), and
request bodies read within their limits."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_BODY = 8 * 1024 * 1024  # an 8 MB photo is plenty for one digit; the pad's PNG is a few kB


def error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def read_body(request: Request) -> bytes:
    """The request's body, refused with 413 as soon as it is known to exceed MAX_BODY."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise error(413, f"the body of {int(declared):,} bytes is above the limit of {MAX_BODY:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise error(413, f"the body is above the limit of {MAX_BODY:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request):
    """The request's JSON body; 415 unless it says it is JSON (a plain cross-site form cannot)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise error(415, "send the options as JSON, with Content-Type: application/json")
    body = await read_body(request)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(400, f"the body is not valid JSON: {exc}") from None


