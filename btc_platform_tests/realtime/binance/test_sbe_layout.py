"""The codec's layout table against the schema's facts, and both against stream_1_0.xml.

``SCHEMA_FACTS`` is written out from Binance's SBE stream documentation (SPEC 1.6-1.7) by
hand; the XML cross-check re-derives every offset and block length from the schema file
itself, independently of the codec, so neither a typo in the table nor a schema change
goes unnoticed.
"""

from __future__ import annotations

import hashlib
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

from realtime.binance.sbe.layout import (
    DIMENSIONS,
    HEADER,
    MESSAGES,
    SCHEMA_ID,
    SCHEMA_VERSION,
    block_struct,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "binance"
VENDORED_SCHEMA = FIXTURES / "stream_1_0.xml"
SCHEMA_SHA256 = "6ea328467e144311b1f1efff38e9fe613829997f041dd02a3b7077885d10a1f7"

# template id: (name, root block length, {field: offset},
#               [(group, dimension, entry length, {field: offset})])
SCHEMA_FACTS = {
    10000: (
        "TradesStreamEvent",
        18,
        {"eventTime": 0, "transactTime": 8, "priceExponent": 16, "qtyExponent": 17},
        [("trades", "groupSizeEncoding", 25, {"id": 0, "price": 8, "qty": 16, "isBuyerMaker": 24})],
    ),
    10001: (
        "BestBidAskStreamEvent",
        50,
        {
            "eventTime": 0,
            "bookUpdateId": 8,
            "priceExponent": 16,
            "qtyExponent": 17,
            "bidPrice": 18,
            "bidQty": 26,
            "askPrice": 34,
            "askQty": 42,
        },
        [],
    ),
    10002: (
        "DepthSnapshotStreamEvent",
        18,
        {"eventTime": 0, "bookUpdateId": 8, "priceExponent": 16, "qtyExponent": 17},
        [
            ("bids", "groupSize16Encoding", 16, {"price": 0, "qty": 8}),
            ("asks", "groupSize16Encoding", 16, {"price": 0, "qty": 8}),
        ],
    ),
    10003: (
        "DepthDiffStreamEvent",
        26,
        {
            "eventTime": 0,
            "firstBookUpdateId": 8,
            "lastBookUpdateId": 16,
            "priceExponent": 24,
            "qtyExponent": 25,
        },
        [
            ("bids", "groupSize16Encoding", 16, {"price": 0, "qty": 8}),
            ("asks", "groupSize16Encoding", 16, {"price": 0, "qty": 8}),
        ],
    ),
}
DIMENSION_FACTS = {"groupSizeEncoding": (6, "<HI"), "groupSize16Encoding": (4, "<HH")}


def codec_facts() -> dict:
    return {
        template_id: (
            layout.name,
            layout.block_length,
            {field.name: field.offset for field in layout.fields},
            [
                (
                    group.name,
                    group.dimension,
                    group.block_length,
                    {field.name: field.offset for field in group.fields},
                )
                for group in layout.groups
            ],
        )
        for template_id, layout in MESSAGES.items()
    }


def test_codec_layout_equals_the_schema_facts():
    assert codec_facts() == SCHEMA_FACTS
    assert (SCHEMA_ID, SCHEMA_VERSION) == (1, 0)


def test_block_structs_read_exactly_the_documented_bytes():
    assert block_struct(HEADER).format == "<HHHH"
    for name, (size, fmt) in DIMENSION_FACTS.items():
        assert block_struct(DIMENSIONS[name]).format == fmt
        assert block_struct(DIMENSIONS[name]).size == size
    for template_id, layout in MESSAGES.items():
        root = block_struct(layout.fields)
        assert root.size == SCHEMA_FACTS[template_id][1], layout.name
        for group in layout.groups:
            assert block_struct(group.fields).size == group.block_length, (layout.name, group.name)
    # The struct formats SPEC 1.8 names for the root blocks and entries.
    formats = {layout.name: block_struct(layout.fields).format for layout in MESSAGES.values()}
    assert formats == {
        "TradesStreamEvent": "<qqbb",
        "BestBidAskStreamEvent": "<qqbbqqqq",
        "DepthSnapshotStreamEvent": "<qqbb",
        "DepthDiffStreamEvent": "<qqqbb",
    }
    assert block_struct(MESSAGES[10000].groups[0].fields).format == "<qqqB"
    assert struct.calcsize("<qqqB") == 25


SIZES = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
}


def facts_from_xml(path: Path) -> tuple[tuple[int, int], dict]:
    """Derive ids, offsets and block lengths from an SBE schema file, independently of the codec."""
    ns = {"sbe": "http://fixprotocol.io/2016/sbe"}
    root = ET.parse(path).getroot()
    types = root.find("types")
    primitive = {}
    for element in types:
        if element.tag == "type":
            primitive[element.get("name")] = element.get("primitiveType")
        elif element.tag == "enum":
            primitive[element.get("name")] = element.get("encodingType")

    def dimension(name: str) -> tuple[int, str]:
        composite = types.find(f"composite[@name='{name}']")
        codes = {"uint16": "H", "uint32": "I"}
        parts = [child.get("primitiveType") for child in composite]
        return sum(SIZES[p] for p in parts), "<" + "".join(codes[p] for p in parts)

    def lay_out(fields) -> tuple[int, dict]:
        offset, offsets = 0, {}
        for field in fields:
            if field.get("presence") == "constant":
                continue  # constants occupy no bytes on the wire
            offsets[field.get("name")] = int(field.get("offset", offset))
            offset = offsets[field.get("name")] + SIZES[primitive[field.get("type")]]
        return offset, offsets

    messages = {}
    for message in root.findall("sbe:message", ns):
        block_length, offsets = lay_out(message.findall("field"))
        groups = []
        for group in message.findall("group"):
            entry_length, group_offsets = lay_out(group.findall("field"))
            dimension_type = group.get("dimensionType", "groupSizeEncoding")
            groups.append((group.get("name"), dimension_type, entry_length, group_offsets))
            assert dimension(dimension_type) == DIMENSION_FACTS[dimension_type]
        messages[int(message.get("id"))] = (message.get("name"), block_length, offsets, groups)
        assert [data.get("name") for data in message.findall("data")] == list(
            MESSAGES[int(message.get("id"))].var_data
        )
    return (int(root.get("id")), int(root.get("version"))), messages


def test_vendored_schema_is_binance_stream_1_0():
    assert hashlib.sha256(VENDORED_SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_codec_layout_equals_the_xml_schema():
    # The vendored copy is pinned by its hash above: the tests never read outside the project.
    (schema_id, version), messages = facts_from_xml(VENDORED_SCHEMA)
    assert (schema_id, version) == (SCHEMA_ID, SCHEMA_VERSION)
    assert messages == SCHEMA_FACTS == codec_facts()
