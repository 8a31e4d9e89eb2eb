"""Our filters as plain datatrove steps, mixed with datatrove's own reader/writer and executor."""
import gzip
import json

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from filters.gopher import GopherQualityConfig
from filters.pii import PIIConfig
from filters.web_steps import GopherQualityStep, PIIStep

PROSE = ("The library opened in a former schoolhouse with a few hundred donated books. Volunteers catalogued them "
         "by hand, and children came after school to read by the large windows. Over the years the collection grew "
         "to include maps, local newspapers and recordings of older residents telling stories of the valley. It is "
         "still the busiest building in the village on winter evenings, and the staff answer letters sent to "
         "librarian@example.org within a week.")


def test_steps_drop_and_annotate_inside_a_datatrove_pipeline(tmp_path):
    docs = [Document(text=PROSE, id="keep"), Document(text="Too short.", id="drop")]
    pipeline = [
        docs,
        GopherQualityStep(GopherQualityConfig(), drop=True),
        PIIStep(PIIConfig(), drop=True),
        JsonlWriter(str(tmp_path / "out"), compression="gzip"),
    ]
    LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    (out,) = list((tmp_path / "out").glob("*.jsonl.gz"))
    rows = [json.loads(x) for x in gzip.open(out, "rt")]
    assert [r["id"] for r in rows] == ["keep"]
    assert "|||EMAIL_ADDRESS|||" in rows[0]["text"]
    assert rows[0]["metadata"]["pii_emails"] == 1 and rows[0]["metadata"]["gopher_words"] > 50
    stats = json.loads(next((tmp_path / "logs" / "stats").glob("*.json")).read_text())
    gopher = next(s for s in stats if s["name"].endswith(GopherQualityStep.name))
    assert gopher["stats"] == {"docs_in": 2, "removed": 1}
