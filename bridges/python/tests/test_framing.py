"""Bad frames of every kind, spoken as raw bytes to a real bridge process."""
import json

from conftest import EXAMPLE, TEST_ENV, frame, note, req


def ping(b, rid=77):
    """The bridge still answers after whatever came before."""
    assert "tasks" in b.result(rid, "env/tasks")


def test_bad_json_then_still_answering(garden):
    garden.send(frame(b'{"jsonrpc": "2.0", "id": 1, "method": '))
    msg = garden.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32700
    ping(garden)


def test_invalid_utf8_is_a_parse_error(garden):
    garden.send(frame(b'{"jsonrpc":"2.0","id":1,"method":"env/tasks","x":"\xff\xfe"}'))
    msg = garden.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32700
    assert "UTF-8" in msg["error"]["message"]
    ping(garden)


def test_non_json_constants_are_parse_errors(garden):
    garden.send(frame(b'{"jsonrpc":"2.0","id":1,"method":"env/tasks","params":{"x":NaN}}'))
    assert garden.recv()["error"]["code"] == -32700
    ping(garden)


def test_deeply_nested_json_is_a_parse_error_not_a_crash(garden):
    garden.send(frame(b"[" * 100_000 + b"]" * 100_000))
    assert garden.recv()["error"]["code"] in (-32700, -32600)
    ping(garden)


def test_oversized_frame_is_skipped_and_the_stream_resynchronises(spawn):
    b = spawn(TEST_ENV, env={"TESTENV_MAX_MESSAGE_SIZE": "1000"})
    b.initialize()
    big = json.dumps(req(1, "env/step", {"action": "x" * 5000})).encode()
    b.send(frame(big) + frame(req(2, "env/tasks")))
    msg = b.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32600
    assert msg["error"]["data"] == {"length": len(big), "limit": 1000}
    assert b.recv()["id"] == 2
    # exactly at the limit is fine
    body = json.dumps(req(3, "env/tasks", {"pad": ""})).encode()
    body = json.dumps(req(3, "env/tasks", {"pad": "p" * (1000 - len(body))})).encode()
    assert len(body) == 1000
    b.send(frame(body))
    assert b.recv()["id"] == 3


def test_oversized_frame_is_answered_before_its_body_arrives(garden):
    n = 5 * 1024 * 1024
    garden.send(b"Content-Length: %d\r\n\r\n" % n)
    assert garden.recv()["error"]["code"] == -32600  # no need to wait for 5 MiB
    garden.send(b" " * n)
    ping(garden)


def test_default_limit_is_4_mib(garden):
    n = 4 * 1024 * 1024 + 1
    garden.send(b"Content-Length: %d\r\n\r\n" % n + b" " * n)
    assert garden.recv()["error"]["code"] == -32600
    ping(garden)


def test_missing_content_length_answers_then_closes_cleanly(spawn):
    b = spawn(EXAMPLE)
    b.send(b'Content-Type: application/json\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"x"}')
    msg = b.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32600
    b.recv_eof()
    assert b.wait() == 1
    assert "Traceback" not in b.stderr


def test_garbage_header_answers_then_closes_cleanly(spawn):
    b = spawn(EXAMPLE)
    b.send(b"GET / HTTP/1.1\r\n\r\n")
    assert b.recv()["error"]["code"] == -32600
    b.recv_eof()
    assert b.wait() == 1


def test_non_numeric_content_length_closes(spawn):
    for bad in (b"abc", b"-5", b"1e3", b""):
        b = spawn(EXAMPLE)
        b.send(b"Content-Length: " + bad + b"\r\n\r\n{}")
        assert b.recv()["error"]["code"] == -32600
        b.recv_eof()
        assert b.wait() == 1


def test_endless_header_line_closes(spawn):
    b = spawn(EXAMPLE)
    b.send(b"X-Junk: " + b"a" * 20000)
    assert b.recv()["error"]["code"] == -32600
    b.recv_eof()


def test_bad_header_after_a_known_length_skips_the_body(garden):
    body = json.dumps(req(1, "env/tasks")).encode()
    garden.send(b"Content-Length: %d\r\nthis is not a header\r\n\r\n" % len(body) + body)
    msg = garden.recv()
    assert msg["id"] is None and msg["error"]["code"] == -32600
    ping(garden)


def test_non_utf8_charset_is_refused_but_skipped(garden):
    body = json.dumps(req(1, "env/tasks")).encode()
    garden.send(b"Content-Length: %d\r\nContent-Type: application/json; charset=latin-1\r\n\r\n" % len(body) + body)
    assert garden.recv()["error"]["code"] == -32600
    ping(garden)


def test_header_names_are_case_insensitive_and_content_type_is_optional(garden):
    body = json.dumps(req(5, "env/tasks")).encode()
    garden.send(
        b"content-length: %d\r\nCONTENT-TYPE: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" % len(body) + body
    )
    assert garden.recv()["id"] == 5
    garden.send(b"CoNtEnT-LeNgTh:%d\r\n\r\n" % len(body) + body.replace(b"5", b"6"))
    assert garden.recv()["id"] == 6


def test_frames_split_across_writes_and_joined_in_one_write(garden):
    data = frame(req(1, "env/tasks")) + frame(req(2, "env/tasks")) + frame(req(3, "env/tasks"))
    for i in range(0, len(data), 7):
        garden.send(data[i : i + 7])
    assert [garden.recv()["id"] for _ in range(3)] == [1, 2, 3]


def test_batch_is_not_supported(garden):
    garden.send(frame([req(1, "env/tasks"), req(2, "env/tasks")]))
    msg = garden.recv()
    assert msg["id"] is None and msg["error"] == {"code": -32600, "message": "batches not supported"}
    garden.send(frame([]))
    assert garden.recv()["error"]["code"] == -32600
    ping(garden)


def test_json_that_is_not_json_rpc(garden):
    for body, rid in [
        (42, None),
        ("hello", None),
        ({"id": 3, "method": "env/tasks"}, 3),  # no "jsonrpc"
        ({"jsonrpc": "1.0", "id": 4, "method": "env/tasks"}, 4),
        ({"jsonrpc": "2.0", "id": 5}, 5),  # neither method nor result
        ({"jsonrpc": "2.0", "id": 6, "method": 12}, 6),
        ({"jsonrpc": "2.0", "id": 7, "method": "env/tasks", "params": 3}, 7),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "env/tasks"}, None),
        ({"jsonrpc": "2.0", "id": True, "method": "env/tasks"}, None),
        ({"jsonrpc": "2.0", "id": None, "method": "env/tasks"}, None),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "env/tasks"}, None),
        ({"jsonrpc": "2.0", "id": 2**70, "method": "env/tasks"}, None),
    ]:
        garden.send(frame(json.dumps(body).encode()))
        msg = garden.recv()
        assert msg["error"]["code"] == -32600, (body, msg)
        assert msg["id"] == rid, (body, msg)
    ping(garden)


def test_responses_from_the_client_are_ignored(garden):
    garden.send(frame({"jsonrpc": "2.0", "id": 9, "result": None}))
    garden.no_message()
    ping(garden)


def test_blank_lines_between_frames_are_tolerated(garden):
    garden.send(b"\r\n\r\n" + frame(req(1, "env/tasks")))
    assert garden.recv()["id"] == 1


def test_eof_in_the_middle_of_a_frame_exits_cleanly(spawn):
    b = spawn(EXAMPLE)
    b.send(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"")
    b.close_stdin()
    b.recv_eof()
    assert b.wait() == 1
    assert "Traceback" not in b.stderr


def test_eof_in_the_middle_of_a_header_exits_cleanly(spawn):
    b = spawn(EXAMPLE)
    b.send(b"Content-Len")
    b.close_stdin()
    b.recv_eof()
    assert b.wait() == 1


def test_eof_after_requests_answers_them_first(spawn):
    b = spawn(EXAMPLE)
    b.send(frame(req(0, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "t"}})))
    b.send(frame(req(1, "env/tasks")) + frame(req(2, "shutdown")))
    b.close_stdin()
    assert [b.recv()["id"] for _ in range(3)] == [0, 1, 2]
    b.recv_eof()
    assert b.wait() == 0  # shutdown was answered before the end of input


def test_unicode_survives_both_ways(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    res = testenv.result(2, "env/step", {"action": "héllo ☃ \u2028 \U0001F331"})
    assert res["observation"]["text"] == "héllo ☃ \u2028 \U0001F331"


def test_stray_prints_never_reach_the_protocol_stream(testenv):
    # testenv prints at import time, in its constructor and in step, via sys.stdout and fd 1
    testenv.result(1, "env/reset", {"task": "count"})
    assert testenv.result(2, "env/step", {"action": "print"})["observation"]["text"] == "print"
    testenv.no_message()
    err = testenv.stderr
    for noise in ("import-time noise", "constructor noise", "fd-level noise", "stray print", "stray fd write"):
        assert noise in err, noise
    assert not testenv.frame_errors


def test_notification_with_garbage_params_is_ignored(garden):
    garden.send(frame(note("$/cancelRequest", {"id": [1]})))
    garden.send(frame(note("$/cancelRequest")))
    garden.send(frame(note("something/else", {"a": 1})))
    garden.no_message()
    ping(garden)


# A lone UTF-16 surrogate escape is valid JSON grammar but no Unicode character: Python decodes
# it to a str that cannot be encoded back, so echoing it used to hang the request or kill the
# bridge. Each is a parse error (-32700, id null, as serde_json's refusal on the Rust side).
LONE_SURROGATES = [
    rb'{"jsonrpc":"2.0","id":"\ud800","method":"x"}',  # in the id
    rb'{"jsonrpc":"2.0","id":"ok\uDFFF","method":"env/tasks"}',  # a low one, upper-case hex
    rb'{"jsonrpc":"2.0","id":1,"method":"\ud800"}',  # in the method
    rb'{"jsonrpc":"2.0","id":2,"method":"env/step","params":{"action":"go \udc00"}}',  # in params
    rb'{"jsonrpc":"2.0","id":3,"method":"env/tasks","params":{"\ud83d":1}}',  # in a key
    rb'{"jsonrpc":"2.0","id":"\udc00\ud800","method":"x"}',  # a pair in the wrong order
    rb'{"jsonrpc":"1.0","id":"\ud800","method":"x"}',  # rejected before the id is looked at
    rb'{"jsonrpc":"2.0","method":"\ud800"}',  # a notification
]


def test_lone_surrogates_are_parse_errors_and_the_bridge_goes_on(garden):
    for i, body in enumerate(LONE_SURROGATES):
        garden.send(frame(body))
        msg = garden.recv()
        assert msg["id"] is None and msg["error"]["code"] == -32700, (body, msg)
        assert "surrogate" in msg["error"]["message"], msg
        ping(garden, rid=100 + i)
    assert garden.proc.poll() is None


def test_lone_surrogates_back_to_back_each_get_one_answer(garden):
    garden.send(b"".join(frame(b) for b in LONE_SURROGATES) + frame(req(50, "env/tasks")))
    answers = [garden.recv() for _ in LONE_SURROGATES]
    assert all(a["id"] is None and a["error"]["code"] == -32700 for a in answers), answers
    assert garden.recv()["id"] == 50
    garden.no_message()


def test_a_surrogate_pair_escape_is_one_character(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    testenv.send(frame(rb'{"jsonrpc":"2.0","id":2,"method":"env/step","params":{"action":"\ud83c\udf31"}}'))
    msg = testenv.recv()
    assert msg["id"] == 2 and msg["result"]["observation"]["text"] == "\U0001F331", msg


def test_an_answer_no_utf8_can_carry_is_an_internal_error_not_a_hang(testenv):
    testenv.result(1, "env/reset", {"task": "count"})
    err = testenv.error(2, "env/step", {"action": "surrogate"}, code=-32603)
    assert "JSON text" in err["message"], err
    assert testenv.result(3, "env/step", {"action": "go"})["observation"]["text"] == "go"
