"""When the buffering worker considers a request whole (turnout/serving/gunicorn_worker.py)."""

from __future__ import annotations

from turnout.serving.gunicorn_worker import BUFFER_LIMIT, HEADER_LIMIT, request_complete

HEAD = b"PUT /sync/W:A HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def test_body_of_known_length_is_whole_only_when_all_of_it_arrived() -> None:
    request = HEAD + b"Content-Length: 10\r\n\r\n"
    assert request_complete(request + b"{") == (False, False)
    assert request_complete(request + b"0123456789") == (True, False)


def test_headers_must_end_before_a_request_is_whole() -> None:
    assert request_complete(b"GET / HTTP/1.1\r\nHost: x\r\n") == (False, False)
    assert request_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == (True, False)


def test_chunked_body_is_whole_at_its_last_chunk_and_trailer() -> None:
    request = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    assert request_complete(request + b"5\r\nhello\r\n") == (False, False)
    assert request_complete(request + b"5\r\nhello\r\n0\r\n") == (False, False)
    assert request_complete(request + b"5\r\nhello\r\n0\r\n\r\n") == (True, False)
    assert request_complete(request + b"5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n") == (True, False)


def test_expect_continue_is_reported_so_the_worker_can_answer_it() -> None:
    request = HEAD + b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    assert request_complete(request) == (False, True)
    assert request_complete(request + b"abcd") == (True, True)


def test_what_gunicorn_must_refuse_is_handed_over_not_held() -> None:
    assert request_complete(HEAD + b"Content-Length: nope\r\n\r\n")[0]
    assert request_complete(HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")[0]
    assert request_complete(b"GET /" + b"a" * (HEADER_LIMIT + 1))[0]


def test_a_large_body_is_handed_over_after_the_buffer_limit() -> None:
    request = HEAD + f"Content-Length: {BUFFER_LIMIT * 4}\r\n\r\n".encode()
    assert not request_complete(request + b"x" * (BUFFER_LIMIT - 1))[0]
    assert request_complete(request + b"x" * BUFFER_LIMIT)[0]
