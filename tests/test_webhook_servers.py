"""The webhook endpoint behind the real servers, over raw sockets: how large bodies are refused (uvicorn streams
the body to the app, which refuses it before reading past 1 MiB; Daphne reads the whole body before it calls
the app, which README's "Request size limits" says), and header garbage answered with a 4xx on both."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.fixtures_live_server import LiveServer
from tests.telnyx_events import at, encode, event, leg, sign

MiB = 1024 * 1024
DECLARED = 10 * MiB


def connect(server: LiveServer, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    # A small send buffer: what the client could write is then close to what the server took in.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    return sock


def head(headers: dict[str, str | bytes], path: str = "/webhooks/telnyx") -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    lines += [name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()) for name, value in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and whatever followed, until the connection closes or the head and its body are in."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # after the answer: the server closed with the rest of the body unread
            break
        if not chunk:
            break
        data += chunk
        head_part, _, body = data.partition(b"\r\n\r\n")
        length = [int(line.split(b":")[1]) for line in head_part.split(b"\r\n") if line.lower().startswith(b"content-length:")]
        if length and len(body) >= length[0]:
            break
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ")[1]), data


def test_uvicorn_answers_a_declared_ten_mebibyte_body_with_413_at_once(uvicorn_dashboard):
    with connect(uvicorn_dashboard) as sock:
        started = time.monotonic()
        sock.sendall(head({"Content-Type": "application/json", "Content-Length": str(DECLARED)}) + b"{}")
        status, answer = read_answer(sock)
        assert time.monotonic() - started < 1
        assert status == 413 and b"larger than 1048576 bytes" in answer
        assert b"connection: close" in answer.lower()
        assert sock.recv(1) == b""  # and it does not wait for the other 10 MiB: the connection is closed


def test_uvicorn_refuses_a_chunked_body_growing_past_one_mebibyte_before_reading_much_more(uvicorn_dashboard):
    offered = 64 * MiB
    written = 0
    answered_at: list[int] = []
    answers: list[tuple[int, bytes]] = []
    with connect(uvicorn_dashboard, timeout=10) as sock:

        def read() -> None:
            answers.append(read_answer(sock))
            answered_at.append(written)

        sock.sendall(head({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        reader = threading.Thread(target=read)
        reader.start()
        chunk = b" " * (64 * 1024)
        frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        try:
            while written < offered:
                sock.sendall(frame)
                written += len(chunk)
        except OSError:  # the server closed the connection: what it took in is at most `written`
            pass
        reader.join(10)
    (status, answer), = answers
    assert status == 413 and b"larger than 1048576 bytes" in answer
    # Measured: answered after 1.2–1.4 MiB were written, closed at 1.2–1.5 MiB (Daphne takes all 64).
    assert answered_at[0] < 3 * MiB, f"answered after {answered_at[0] / MiB:.1f} MiB"
    assert written < 3 * MiB, f"the server took in {written / MiB:.1f} MiB of {offered / MiB:.0f}"


def signed_webhook(conference_id: str, padding: int = 0) -> tuple[bytes, dict[str, str]]:
    document = event("conference.created", {**leg("host"), "conference_id": conference_id}, at(1), occurred_in_payload=True)
    document["data"]["payload"]["client_state"] = "x" * padding
    body = encode(document)
    return body, sign(body)


def test_a_normal_webhook_still_works_on_uvicorn_and_is_applied(uvicorn_dashboard):
    body, headers = signed_webhook("conf-uvicorn")
    response = httpx.post(f"{uvicorn_dashboard.url}/webhooks/telnyx", content=body, headers=headers, timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "stored"}
    # The applier runs in the server (started through the ASGI lifespan): the conference shows up.
    client = uvicorn_dashboard.client()
    try:
        deadline = time.monotonic() + 10
        while client.get("/api/conferences/conf-uvicorn").status_code != 200:
            assert time.monotonic() < deadline, "the webhook was never applied"
            time.sleep(0.1)
    finally:
        client.close()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_signed_webhook_just_under_one_mebibyte_is_stored_by_either_server(any_server, framing):
    body, headers = signed_webhook(f"conf-big-{any_server.server}-{framing}", 0)
    body, headers = signed_webhook(f"conf-big-{any_server.server}-{framing}", MiB - len(body) - 16)
    assert MiB - 64 < len(body) <= MiB
    content = body if framing == "content-length" else iter([body[: len(body) // 2], body[len(body) // 2 :]])
    response = httpx.post(f"{any_server.url}/webhooks/telnyx", content=content, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def test_daphne_reads_a_declared_body_whole_before_the_app_can_refuse_it(dashboard):
    """The truth README's "Request size limits" tells: in front of Daphne, the proxy must limit bodies."""
    with connect(dashboard) as sock:
        sock.sendall(head({"Content-Type": "application/json", "Content-Length": str(DECLARED)}) + b"{}")
        sock.settimeout(2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing for 2 s: Daphne waits for the 10 MiB before it calls the app
        sock.settimeout(10)
        sock.sendall(b" " * (DECLARED - 2))
        status, answer = read_answer(sock)
        assert status == 413


def test_daphne_reads_a_chunked_body_to_its_end_before_the_app_can_refuse_it(dashboard):
    written = 0
    with connect(dashboard, timeout=10) as sock:
        sock.sendall(head({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        chunk = b" " * (256 * 1024)
        for _ in range(32):  # 8 MiB, all taken in
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            written += len(chunk)
        sock.settimeout(1)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # no answer while the body has not ended
        sock.settimeout(10)
        sock.sendall(b"0\r\n\r\n")
        assert read_answer(sock)[0] == 413
    assert written == 8 * MiB


SIGNED = sign(b"{}")
GARBAGE = {
    "latin-1 signature": {"telnyx-signature-ed25519": b"\xe9\xff\xfe", "telnyx-timestamp": SIGNED["telnyx-timestamp"]},
    "utf-8 signature": {"telnyx-signature-ed25519": "éé".encode(), "telnyx-timestamp": SIGNED["telnyx-timestamp"]},
    "empty headers": {"telnyx-signature-ed25519": b"", "telnyx-timestamp": b""},
    "5,000-digit timestamp": {"telnyx-signature-ed25519": SIGNED["telnyx-signature-ed25519"], "telnyx-timestamp": "9" * 5000},
    "NUL in a value": {"telnyx-signature-ed25519": b"a\x00b", "telnyx-timestamp": SIGNED["telnyx-timestamp"]},
    "Content-Length not a number": {"Content-Length": "abc"},
}


@pytest.mark.parametrize("garbage", list(GARBAGE), ids=list(GARBAGE))
def test_header_garbage_is_a_4xx_on_either_server(any_server, garbage):
    headers = {"Content-Type": "application/json", "Content-Length": "2", **GARBAGE[garbage]}
    with connect(any_server) as sock:
        sock.sendall(head(headers) + b"{}")
        status, _ = read_answer(sock)
    assert 400 <= status < 500


def test_a_repeated_signature_header_is_a_401_on_either_server(any_server):
    with connect(any_server) as sock:
        sock.sendall(
            b"POST /webhooks/telnyx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
            + b"".join(f"{name}: {value}\r\n".encode() for name, value in [*SIGNED.items(), *SIGNED.items()])
            + b"\r\n{}"
        )
        status, answer = read_answer(sock)
    assert status == 401 and b"more than one telnyx-" in answer
