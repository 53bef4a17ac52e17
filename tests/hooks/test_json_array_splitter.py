from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from hook_fakes import API, Exchange, FakeService, Reply

from airflow_provider_centralmon.exceptions import ProtocolError
from airflow_provider_centralmon.hooks._batch_files import JsonArraySplitter

TRICKY: list[Any] = [
    {"_source": {"msg": 'closing "}," and "]" inside a string', "nested": {"a": [1, {"b": "}"}]}}},
    {"escaped": 'quote \\" then },', "unicode": "caf\u00e9 \u2603"},
    [1, [2, [3]], {"x": "],"}],
    "a plain string, with a comma",
    12.5e3,
    -7,
    True,
    None,
    {},
    [],
    {"deep": {"er": {"est": {}}}, "after": 1},
]


def split(data: bytes, chunk_size: int) -> list[Any]:
    splitter = JsonArraySplitter("test file")
    elements: list[Any] = []
    for start in range(0, len(data), chunk_size):
        elements.extend(splitter.feed(data[start : start + chunk_size]))
    splitter.close()
    return elements


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64, 100_000])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_element_comes_back_whatever_the_chunking(
    chunk_size: int, indent: int | None
) -> None:
    data = json.dumps(TRICKY, indent=indent).encode()

    assert split(data, chunk_size) == TRICKY


@pytest.mark.parametrize("data", [b"[]", b"  [ \n ]  ", b"[\n]\n"])
def test_empty_array_gives_nothing(data: bytes) -> None:
    assert split(data, 1) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"not": "an array"}', "does not hold a JSON array"),
        (b"[1, 2", "ended before its JSON array was complete"),
        (b'[{"a": 1}', "ended before"),
        (b"[1,,2]", "malformed JSON array"),
        (b"[1,]", "malformed JSON array"),
        (b"[1] [2]", "data after its JSON array"),
        (b"", "ended before"),
    ],
)
def test_malformed_arrays_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        split(data, 3)


def test_elements_are_yielded_before_the_stream_ends() -> None:
    pulled = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        yield b"["
        for i in range(1000):
            pulled += 1
            yield json.dumps({"n": i}).encode() + b","
        yield b'{"n": 1000}]'

    splitter = JsonArraySplitter("lazy")
    stream = chunks()
    first: list[Any] = []
    while not first:
        first = splitter.feed(next(stream))

    assert first == [{"n": 0}]
    assert pulled <= 2


@pytest.mark.slow
def test_hundred_thousand_records_stream_through_the_hook(
    make_hook: Callable[..., Any], service: FakeService
) -> None:
    record = {"_index": "logs-2026", "_id": "", "_source": {"@timestamp": "2026-11-30T00:00:00Z"}}
    body = json.dumps(
        [
            {**record, "_id": str(i), "_source": {**record["_source"], "n": i}}
            for i in range(100_000)
        ]
    ).encode()

    def s3(exchange: Exchange) -> Reply:
        return Reply(200, body)

    service.on("/big.json", s3)
    total = 0
    last = -1
    for element in make_hook().iter_batch_file(f"{API}/big.json?sig=x"):
        assert element["_source"]["n"] == last + 1
        last = element["_source"]["n"]
        total += 1

    assert total == 100_000


def test_every_split_position_of_a_tricky_array_gives_the_same_elements() -> None:
    data = json.dumps(TRICKY).encode() + b" \n"

    for position in range(len(data) + 1):
        splitter = JsonArraySplitter("test file")
        elements = splitter.feed(data[:position]) + splitter.feed(data[position:])
        splitter.close()
        assert elements == TRICKY, position


def test_each_element_is_decoded_once_however_many_brackets_it_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nested objects and arrays in a record (or JSON text in its message) used to make the
    # splitter decode the element again from its start at every "}," inside it.
    spans = [{"i": i, "tags": ["x", "y"]} for i in range(2000)]
    hits = [
        {"_id": str(n), "_source": {"spans": spans, "message": json.dumps(spans)}} for n in (1, 2)
    ]
    data = json.dumps(hits).encode()
    decode = msgspec.json.decode
    calls: list[int] = []

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return decode(*args, **kwargs)

    monkeypatch.setattr(msgspec.json, "decode", counting_decode)

    assert split(data, 4096) == hits
    assert len(calls) == 2


@pytest.mark.parametrize(
    "data",
    [b'[{"a": 1]', b'[{"a": [1}]', b'[{"a": "\\q"}]', b"[tru]", b'[{"a": 1}}]', b'["x"y]'],
)
def test_an_element_that_does_not_decode_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="malformed"):
        split(data, 2)
