"""The columns of sphinx's outputs: the rows of `data/lang=<xx>/` and `rejected/` (`FIELDS`, after the shared
provenance columns), the `sources/` table (`SOURCE_SCHEMA`), and the provenance a row copies from its first
completion (`PROVENANCE_KEYS`)."""
from __future__ import annotations

import pyarrow as pa

from filters.protected_spans import SPAN_RECORD_TYPE

STRING, FLOAT, STRINGS = pa.string(), pa.float64(), pa.list_(pa.string())
MESSAGE_TYPE = pa.struct([("role", STRING), ("content", STRING)])
FIELDS = [pa.field("src_id", STRING), pa.field("src_origin", STRING),
          pa.field("lang", pa.dictionary(pa.int32(), STRING)), pa.field("tier", STRING),
          pa.field("instruction", STRING), pa.field("response", STRING), pa.field("instruction_en", STRING),
          pa.field("response_en", STRING), pa.field("protected_spans", pa.list_(SPAN_RECORD_TYPE)),
          pa.field("rule", STRING), pa.field("lid_instruction", STRING), pa.field("lid_response", STRING),
          pa.field("lid_score", FLOAT), pa.field("len_ratio", FLOAT), pa.field("translator_model", STRING),
          pa.field("nshot_ids", STRINGS), pa.field("status", STRING), pa.field("reason", STRING),
          pa.field("messages", pa.list_(MESSAGE_TYPE))]
SOURCE_SCHEMA = pa.schema([("src_id", STRING), ("src_origin", STRING), ("instruction_en", STRING),
                           ("response_en", STRING), ("rule", STRING), ("code_math_share", FLOAT), ("problem", STRING),
                           ("drawn_by", STRINGS), ("spans", pa.int32())])
PROVENANCE_KEYS = ("model", "backend", "sampling_params", "template_id", "request_id", "finish_reason", "round")

