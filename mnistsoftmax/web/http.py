"""What every route shares: errors as HTTPExceptions (answered as {"error": "one line"}), request
bodies read within their limits, and JSON in (depth-limited) and out (never NaN or Infinity)."""

from __future__ import annotations

from starlette import responses
from starlette.exceptions import HTTPException
from starlette.requests import Request

from mnistsoftmax import jsontext

MAX_BODY = 8 * 1024 * 1024  # an 8 MB photo is plenty for one digit; the pad's PNG is a few kB


def encode(content) -> bytes:
    """An answer's JSON bytes, through jsontext: a non-finite number is null, never a 500."""
    return jsontext.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JSONResponse(responses.JSONResponse):
    """Starlette's JSONResponse written by encode()."""

    def render(self, content) -> bytes:
        return encode(content)


def error(status: int, message: str, close: bool = False) -> HTTPException:
    """An HTTP error with its one-line message; `close` ends the connection after it (a body left
    unread is not drained)."""
    return HTTPException(status_code=status, detail=message, headers={"Connection": "close"} if close else None)


def small_int(text) -> int | None:
    """A header's or query's ASCII digits as an int (at most 18 of them), else None: str.isdigit
    takes '²', which int() refuses."""
    if isinstance(text, str) and text.isascii() and text.isdecimal() and len(text) <= 18:
        return int(text)
    return None


def parse_json(body: bytes):
    """A request's JSON document, or 400 naming what is wrong (not JSON, not UTF-8, nested deep)."""
    try:
        return jsontext.loads(body, max_depth=8, strict=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(400, f"the body is not valid JSON: {str(exc)[:200]}") from None


async def read_body(request: Request) -> bytes:
    """The request's body, refused with 413 as soon as it is known to exceed MAX_BODY."""
    declared = small_int(request.headers.get("content-length"))
    if declared is not None and declared > MAX_BODY:
        raise error(413, f"the body of {declared:,} bytes is above the limit of {MAX_BODY:,} bytes", close=True)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise error(413, f"the body is above the limit of {MAX_BODY:,} bytes", close=True)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request):
    """The request's JSON body; 415 unless it says it is JSON (a plain cross-site form cannot)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise error(415, "send the options as JSON, with Content-Type: application/json")
    return parse_json(await read_body(request))
