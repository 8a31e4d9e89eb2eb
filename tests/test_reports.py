"""report.html of real runs (dolma on the bundled sample, textbooks on replayed answers, diachronic on small books),
of a per-language table in sphinx's layout and of an unknown layout, rendered in headless Chromium: the expected
sections and figures are in the page, no console errors, nothing loaded from the network. `flows report` rebuilds a
report; `flows inspect` prints why rows were removed.

Set FLOWS_REPORT_SCREENSHOTS=DIR to keep the screenshots (bench/results/report-*.png were made that way)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install matplotlib): no figures to test")

from corpora.report_kit import ReportSection, Section, load_outputs  # noqa: E402
from flows.run_report import build_report, write_report  # noqa: E402

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y "
                                                             "chromium): the page is not rendered")


# ---- real runs, built once per session (tests/test_dataset_card.py reuses them) ---------------------------------
def _once(base: Path, name: str, build) -> Path:
    out = base / name
    if not (out / "manifest.json").is_file():
        build(out)
    return out


def dolma_output(base: Path) -> Path:
    def build(out):
        from flows.config import load_config
        from flows.dolma import DolmaConfig, dolma_flow

        dolma_flow(load_config(DolmaConfig, output=str(out)))
    return _once(base, "dolma", build)


GOOD = [
    "Rivers shape the land they cross. Over thousands of years, flowing water carries sand and gravel downstream, "
    "cutting valleys and building wide plains where the current slows. Floods spread fine silt over the fields, "
    "which is why river valleys have fed farmers since the first villages were built along their banks.",
    "A vaccine trains the immune system without causing the disease. It shows the body a harmless piece of a "
    "germ, and white blood cells learn to recognise it. When the real germ arrives later, the body already has "
    "antibodies ready and can fight the infection before it makes the person seriously ill.",
    "The printing press changed how ideas travelled. Before it, books were copied by hand and were rare and "
    "expensive. Movable type let printers make hundreds of identical pages in a day, so pamphlets, maps and "
    "scientific papers spread across Europe and many more people learned to read and argue in print.",
    "Bees tell each other where flowers are by dancing. A forager returning to the hive walks a figure-eight "
    "pattern, and the angle of the straight run shows the direction of the food relative to the sun, while the "
    "length of the waggle tells the other bees how far they will have to fly to reach it.",
    "Glass is made by melting sand with soda and lime at very high temperatures. The hot liquid can be blown, "
    "pressed or floated on molten tin to make flat windows. As it cools it becomes rigid without forming "
    "crystals, which is why glass is transparent and breaks with sharp, curved edges when it is dropped.",
]
FRENCH = ("Les rivières façonnent les terres qu'elles traversent. Pendant des milliers d'années, l'eau transporte "
          "du sable et du gravier vers l'aval, creuse des vallées et construit de larges plaines fertiles.")
TOPICS = ["rivers", "vaccines", "printing press", "bees", "glass", "tides", "volcanoes", "french rivers", "deserts"]


def textbooks_output(base: Path) -> Path:
    """Nine topics, answers replayed: five kept, one exact duplicate, one too short, one French (langid), one with no
    answer in the file (generation_failed)."""
    def build(out):
        from flows.config import load_config
        from generators.textbooks import TextbooksConfig, build_requests, load_topics
        from flows.textbooks import textbooks_flow

        base_dir = out.parent / "textbooks_inputs"
        base_dir.mkdir(parents=True, exist_ok=True)
        topics = base_dir / "topics.yaml"
        topics.write_text("".join(f"- {t}\n" for t in TOPICS))
        cfg = TextbooksConfig()
        requests, _ = build_requests(load_topics(topics), cfg.mixture, cfg.sampling)
        texts = GOOD + [GOOD[0], "Too short.", None, FRENCH]
        replay = [{"request_id": r.id, "text": t, "model": "replay-model", "completion_tokens": len(t.split()),
                   "finish_reason": "length" if i == 4 else "stop"}
                  for i, (r, t) in enumerate(zip(requests, texts)) if t is not None]
        path = base_dir / "answers.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in replay))
        textbooks_flow(load_config(TextbooksConfig, output=str(out), sets=[
            f"topics={topics}", "generation.backend.kind=replay", f"generation.backend.path={path}",
            "cleanup.min_tokens=20"]))
    return _once(base, "textbooks", build)


PARA = ("The rain came down over the hills all that afternoon, and the children sat by the window watching the "
        "water run along the lane while their mother sewed and the old dog slept in front of the fire.")


def _book(ebook: int, title: str, front: str) -> str:
    chapters = "\n\n\n".join(f"CHAPTER {r}.\n\n" + "\n\n".join(f"{title} chapter {r} paragraph {j}. {PARA}"
                                                             for j in range(6)) for r in ("I", "II", "III"))
    return (f"The Project Gutenberg EBook of {title}, by Jane Doe\n\nTitle: {title}\n\nAuthor: Jane Doe\n\n"
            f"Release Date: May 1, 2005 [EBook #{ebook}]\n\nLanguage: English\n\n*** START OF THIS PROJECT GUTENBERG "
            f"EBOOK {title.upper()} ***\n\n\n\n{front}\n\n\n{chapters}\n\n\n*** END OF THIS PROJECT GUTENBERG EBOOK "
            f"{title.upper()} ***\n")


def diachronic_output(base: Path) -> Path:
    def build(out):
        from flows.config import load_config
        from flows.diachronic import DiachronicConfig, diachronic_flow

        books = out.parent / "books"
        books.mkdir(parents=True, exist_ok=True)
        (books / "101.txt").write_text(_book(101, "The Old Mill", "THE OLD MILL\n\nLONDON\nJOHN MURRAY\n1855."))
        (books / "102.txt").write_text(_book(102, "The New Mill", "THE NEW MILL\n\nCopyright, 1912, by Jane Doe"))
        (books / "103.txt").write_text(_book(103, "A Third Mill", "A THIRD MILL\n\nFirst published 1914"))
        (books / "104.txt").write_text("A plain book with no header and no dates.\n\n" + PARA)
        authors = out.parent / "authors.csv"
        authors.write_text("author,birthdate,deathdate\n\"Doe, Jane\",1820,1915\n")
        diachronic_flow(load_config(DiachronicConfig, inputs=[str(books)], output=str(out), sets=[
            f"authors.path={authors}", "slicing.budgets.train=300", "slicing.budgets.dev=40",
            "slicing.budgets.test=150"]))
    return _once(base, "diachronic", build)


SPAN = pa.struct([("field", pa.string()), ("marker", pa.string()), ("kind", pa.string()), ("text", pa.string()),
                  ("sha256", pa.string()), ("status", pa.string())])


def sphinx_layout(base: Path) -> Path:
    """A table in the layout sphinx publishes (`data/lang=<xx>/part-*.parquet` named `data/lang=<xx>` in the
    manifest; `lang` dictionary-encoded, `status` pass/fail, `reason` the failed checks joined by "; ",
    `protected_spans` with a status per span)."""
    out = base / "sphinx_layout"
    if out.exists():
        return out
    rates = {"de": (10, 9), "fr": (10, 6), "sw": (8, 2)}
    outputs = {}
    for lang, (n, ok) in rates.items():
        rows = []
        for i in range(n):
            spans = [{"field": "response", "marker": f"<s{j}>", "kind": "code", "text": "x = 1", "sha256": "h",
                      "status": "restored" if (i < ok or j == 0) else "missing"} for j in range(2)]
            spans.append({"field": "instruction", "marker": "<k>", "kind": "name", "text": "Ada", "sha256": "h",
                          "status": "kept"})  # kept in English: not counted
            rows.append({"id": f"{lang}-{i}", "text": f"text {i} in {lang}", "lang": lang,
                         "status": "pass" if i < ok else "fail",
                         "reason": None if i < ok else "spans:<s1>:missing; lid=en" if i % 2 else "len_ratio=3.1",
                         "protected_spans": spans})
        schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("lang", pa.dictionary(pa.int32(), pa.string())),
                            ("status", pa.string()), ("reason", pa.string()), ("protected_spans", pa.list_(SPAN))])
        d = out / "data" / f"lang={lang}"
        d.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), d / "part-00000.parquet")
        outputs[f"data/lang={lang}"] = [{"path": f"data/lang={lang}/part-00000.parquet", "rows": n}]
    (out / "manifest.json").write_text(json.dumps({"pipeline": "sphinx", "status": "complete", "outputs": outputs}))
    return out


def sphinx_output(base: Path) -> Path:
    """The real sphinx pipeline on its bundled sample with the hand-written translations of tests/test_sphinx_flow.py
    (replayed): pass and fail rows in three languages."""
    def build(out):
        from flows.config import load_config
        from flows.sphinx import SphinxConfig, sphinx_flow
        from tests.test_sphinx_flow import THREE, replay_file

        inputs = out.parent / "sphinx_inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        sphinx_flow(load_config(SphinxConfig, output=str(out), sets=THREE + [
            "generation.backend.kind=replay", f"generation.backend.path={replay_file(inputs)}",
            "generation.max_retries=0", "generation.backoff_s=0", "keep_failed=true"]))
    return _once(base, "sphinx", build)


def unknown_layout(base: Path) -> Path:
    out = base / "mystery"
    if out.exists():
        return out
    (out / "things").mkdir(parents=True)
    pq.write_table(pa.table({"id": [f"t{i}" for i in range(12)], "colour": ["red", "blue", "red"] * 4,
                             "weight": [float(i) for i in range(12)]}), out / "things" / "part-00000.parquet")
    (out / "manifest.json").write_text(json.dumps({"pipeline": "mystery", "status": "complete", "outputs": {
        "things": [{"path": "things/part-00000.parquet", "rows": 12}]}}))
    # stats.json the report cannot understand: a section that fails must not cost the others
    (out / "stats.json").write_text(json.dumps({"generation": {"rounds": {"r1": 5}}, "score": {"accuracy": 0.75}}))
    return out


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "report_runs"


@pytest.fixture(scope="module")
def runs(runs_dir, prefect_harness) -> dict[str, Path]:
    return {"dolma": dolma_output(runs_dir), "textbooks": textbooks_output(runs_dir),
            "diachronic": diachronic_output(runs_dir), "sphinx": sphinx_layout(runs_dir),
            "sphinx_run": sphinx_output(runs_dir),
            "mystery": unknown_layout(runs_dir)}


# ---- headless Chromium -----------------------------------------------------------------------------------------
def render(page: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """(the DOM after load, the console messages Chromium logged)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={page.parent / '.chromium'}"]
    url = page.resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None and (screenshot.name == "report-dolma.png" or os.environ.get("FLOWS_REPORT_SCREENSHOTS")):
        subprocess.run(flags + ["--window-size=1200,2600", f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=120, check=True)
        keep = os.environ.get("FLOWS_REPORT_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(screenshot, Path(keep) / screenshot.name)
    return dom.stdout, console


def headings(dom: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", dom)


def figures(dom: str) -> int:
    return len(re.findall(r'<figure class="fig"><svg', dom))


def assert_self_contained(html_text: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html_text), "the page loads from the network"
    assert "<script" not in html_text and "<link" not in html_text and "@import" not in html_text


@needs_chromium
def test_the_console_check_sees_errors(tmp_path):
    """The detector itself: a page that logs an error is caught (so an empty list below means something)."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><h2>x</h2><script>console.error("boom-19")</script></body></html>')
    dom, console = render(page)
    assert "<h2>x</h2>" in dom and any("boom-19" in c for c in console)


@needs_chromium
def test_dolma_report_in_chromium(runs, tmp_path):
    out = runs["dolma"]
    page = out / "report.html"
    assert page.is_file(), "Run.finish did not write report.html"
    assert_self_contained(page.read_text())
    dom, console = render(page, tmp_path / "report-dolma.png")
    assert console == []
    assert headings(dom) == ["Outputs", "Filter funnel", "Scores: kept vs rejected", "Languages",
                             "Duplicate clusters", "PII"]
    stats = json.loads((out / "stats.json").read_text())
    # funnel + rules, one histogram per score column present, languages, cluster sizes, PII
    scores = [c for c in ("language_score", "gopher_words", "fineweb_line_punct_ratio", "toxic_word_ratio",
                          "c4_lines_removed", "paragraphs_removed") if c in pq.read_schema(out / "data" /
                                                                                            "part-00000.parquet").names]
    assert figures(dom) == 2 + len(scores) + 3
    for step, s in stats["filters"].items():  # the funnel table shows stats.json's numbers
        assert f"<td class=\"\">{step}</td><td class=\"num\">{s['docs_in']:,}</td>" in dom
    assert "threshold 0.65" in dom  # filters.langid.threshold drawn on the language_score histogram
    assert (tmp_path / "report-dolma.png").stat().st_size > 10_000


@needs_chromium
def test_textbooks_report_in_chromium(runs, tmp_path):
    out = runs["textbooks"]
    page = out / "report.html"
    dom, console = render(page, tmp_path / "report-textbooks.png")
    assert console == []
    hs = headings(dom)
    assert hs[:2] == ["Outputs", "Post-processing funnel (generated rows)"]
    assert {"Generation", "Rejected rows by reason", "Languages"} <= set(hs)
    gen = dom.split("<h2>Generation</h2>")[1].split("</section>")[0]
    # requests per round, tokens per completion, finish reasons; the failure table names the replay error
    assert figures(gen) == 3 and "replay: 0 of 1 completion(s)" in gen and "generation_failed" in gen
    rej = dom.split("<h2>Rejected rows by reason</h2>")[1].split("</section>")[0]
    rejected = pq.read_table(out / "rejected" / "part-00000.parquet", columns=["reason"]).column(0).to_pylist()
    assert sorted(rejected) == ["exact", "generation_failed", "langid", "too_short"]
    for reason in set(rejected):
        assert f">{reason}</text>" in rej or f"{reason}<" in rej


@needs_chromium
def test_diachronic_report_in_chromium(runs, tmp_path):
    out = runs["diachronic"]
    dom, console = render(out / "report.html", tmp_path / "report-diachronic.png")
    assert console == []
    assert "Works and time slices" in headings(dom)
    sec = dom.split("<h2>Works and time slices</h2>")[1].split("</section>")[0]
    # works per slice, year histogram, deciding evidence, evidence sources, confidence, words per slice and split
    assert figures(sec) >= 5 and "works per slice" in sec and "confidence" in sec
    works = pq.read_table(out / "works" / "part-00000.parquet", columns=["year"]).column(0).to_pylist()
    assert f"works ({sum(y is not None for y in works)})" in sec  # the year histogram's legend counts dated works


@needs_chromium
def test_per_language_report_on_the_sphinx_layout(runs, tmp_path):
    out = runs["sphinx"]
    path, report = write_report(out)
    dom, console = render(path, tmp_path / "report-sphinx.png")
    assert console == []
    assert headings(dom) == ["Outputs", "Languages", "Per language"]
    sec = dom.split("<h2>Per language</h2>")[1]
    # status per language, pass rate per language, span preservation per language
    assert figures(sec) == 3
    assert "90.0%" in sec and "60.0%" in sec and "25.0%" in sec  # pass rates 9/10, 6/10, 2/8
    # spans: 2 per row counted ("kept" is not); a failing row loses one of its two -> sw: 10 of 16 intact
    assert '<td class="">sw</td><td class="num">8</td><td class="num">0.25</td><td class="num">16</td>' \
           '<td class="num">0.625</td>' in sec
    assert "<td class=\"\">sw: spans</td><td class=\"num\">3</td>" in sec and "sw: len_ratio" in sec


@needs_chromium
def test_sphinx_run_report_matches_its_stats(runs):
    """On the real pipeline's output: pass rate and span preservation per language, recomputed from the shards,
    equal what the generator counted in stats.json."""
    out = runs["sphinx_run"]
    dom, console = render(out / "report.html")
    assert console == []
    assert {"Generation", "Per language"} <= set(headings(dom))
    sec = dom.split("<h2>Per language</h2>")[1]
    langs = json.loads((out / "stats.json").read_text())["sphinx"]["languages"]
    assert len(langs) == 3
    for lang, st in langs.items():
        assert (f'<td class="">{lang}</td><td class="num">{st["rows"]}</td><td class="num">{st["pass_rate"]:.4g}'
                f'</td><td class="num">{st["spans"]}</td><td class="num">{st["span_preservation_rate"]:.4g}</td>'
                in sec), lang
    gen = dom.split("<h2>Generation</h2>")[1].split("</section>")[0]
    assert "data: status per round" in gen  # acceptance over the translate#<lang> rounds
    # failing rows stay in data/ with their checks joined by "; ": inspect finds them by check name
    from flows.cli import app

    failed = [r for r in pq.read_table(out / "data").to_pylist() if r["status"] == "fail"]
    check = failed[0]["reason"].split("; ")[0].split("=")[0].split(":")[0]
    res = CliRunner().invoke(app, ["inspect", str(out), "--reason", check, "--limit", "1"], env={"COLUMNS": "140"})
    assert res.exit_code == 0 and "data/ of" in res.output and "status=fail" in res.output, res.output


def test_without_a_manifest_every_parquet_folder_is_an_output(runs, tmp_path):
    from corpora.report_kit import find_kinds

    copy = tmp_path / "copy"
    shutil.copytree(runs["sphinx"], copy)
    (copy / "manifest.json").unlink()
    kinds = find_kinds(copy, {})
    assert list(kinds) == ["data"] and [f.parent.name for f in kinds["data"]] == ["lang=de", "lang=fr", "lang=sw"]
    assert headings(build_report(copy).html) == ["Outputs", "Languages", "Per language"]


@needs_chromium
def test_unknown_layout_degrades_to_a_generic_report(runs, tmp_path):
    out = runs["mystery"]
    path, report = write_report(out)
    dom, console = render(path)
    assert console == []
    hs = headings(dom)
    assert hs[:2] == ["Outputs", "Outputs at a glance"] and "generation (not drawn)" in hs
    assert len(report.errors) == 1 and report.errors[0].startswith("generation: AttributeError")
    glance = dom.split("<h2>Outputs at a glance</h2>")[1].split("</section>")[0]
    assert figures(glance) == 3 and "things: colour" in glance and "score.accuracy" in glance


def test_sections_are_declared_beside_what_they_describe():
    """The registry resolves to ReportSection declarations that live outside flows/ (beside their pipeline or
    generator), each name once; the kit knows no pipeline (imports nothing from flows/, filters/ or generators/)."""
    import ast

    from flows.run_report import GENERIC_SECTION, REPORT_SECTIONS, report_section

    decls = [report_section(t) for t in (*REPORT_SECTIONS, GENERIC_SECTION)]
    assert all(isinstance(d, ReportSection) for d in decls)
    assert len({d.name for d in decls}) == len(decls)
    assert not any(t.startswith("flows.") for t in (*REPORT_SECTIONS, GENERIC_SECTION))
    root = Path(__file__).resolve().parents[1]
    for kit in ("corpora/report_kit.py", "corpora/report_figures.py", "corpora/report_sections.py"):
        tree = ast.parse((root / kit).read_text())
        mods = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
               [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in mods if m and m.split(".")[0] in ("flows", "filters", "generators")], kit


def _probe(run) -> Section:
    s = Section("Probe section")
    s.text(f"{run.pipeline}: {sorted(run.kinds)}")
    return s


PROBE = ReportSection("probe", _probe, explains_layout=True)


def test_a_new_section_is_one_registry_line(tmp_path, monkeypatch):
    """A section added to REPORT_SECTIONS is drawn in its place; one that explains the layout replaces the generic
    "Outputs at a glance"; the others stay as they were."""
    import flows.run_report as rr

    out = unknown_layout(tmp_path)
    before = build_report(out)
    assert [s.title for s in before.sections][:2] == ["Outputs", "Outputs at a glance"]
    monkeypatch.setattr(rr, "REPORT_SECTIONS", (*rr.REPORT_SECTIONS, "tests.test_reports:PROBE"))
    after = build_report(out)
    titles = [s.title for s in after.sections]
    assert "Outputs at a glance" not in titles and titles[-1] == "Probe section"
    assert titles[:-1] == [t for t in (s.title for s in before.sections) if t != "Outputs at a glance"]
    assert "mystery: [&#x27;things&#x27;]" in after.html and after.errors == before.errors


def test_reports_read_only_what_they_need(runs):
    """Sampling: at most N rows per column, an even stride over the shards; absent columns are simply absent."""
    run = load_outputs(runs["dolma"])
    vals, sampled = run.columns("data", ["language_score", "no_such_column"], max_rows=7)
    assert set(vals) == {"language_score"} and sampled and 1 <= len(vals["language_score"]) <= 7
    full, sampled = run.columns("data", ["id"], max_rows=None)
    ids = pq.read_table(runs["dolma"] / "data" / "part-00000.parquet", columns=["id"]).column(0).to_pylist()
    assert not sampled and full["id"] == ids
    for cap in (len(ids) // 3, len(ids) // 2 - 1, len(ids) - 1):
        some, sampled = run.columns("data", ["id"], max_rows=cap)
        step = -(-len(ids) // cap)
        assert sampled and some["id"] == ids[::step] and len(some["id"]) <= cap


def test_run_finish_never_fails_on_a_report(tmp_path, monkeypatch, prefect_harness):
    """A report that raises is logged; stats, manifest and the card are still written."""
    import flows.run_report as rr
    from flows.config import RunConfig
    from flows.scaffold import Run

    def broken(out_dir):
        raise RuntimeError("figure exploded")

    monkeypatch.setattr(rr, "build_report", broken)
    run = Run.start("toy", RunConfig(output=str(tmp_path / "toy")))
    staged = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"]}), staged)
    run.publish("data", [staged], pa.schema([("id", pa.string()), ("text", pa.string())]))
    stats = run.finish({"note": 1}, records_read=2)
    assert stats["invariant"]["holds"] and not (run.out_dir / "report.html").exists()
    assert json.loads((run.out_dir / "manifest.json").read_text())["status"] == "complete"
    assert "config_name: default" in (run.out_dir / "README.md").read_text()


def test_flows_report_rebuilds_and_inspect_shows_why(runs, tmp_path):
    from flows.cli import app

    out = tmp_path / "copy"
    shutil.copytree(runs["dolma"], out, ignore=shutil.ignore_patterns("_work"))
    (out / "report.html").unlink()
    (out / "README.md").unlink()
    cli = CliRunner()
    res = cli.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and (out / "README.md").is_file() and "11 figures" in res.output
    res = cli.invoke(app, ["inspect", str(out), "--kind", "rejected", "--reason", "gopher_quality", "--limit", "2"],
                     env={"COLUMNS": "140"})
    assert res.exit_code == 0, res.output
    rejected = pq.read_table(out / "rejected" / "part-00000.parquet").to_pylist()
    first = [r for r in rejected if r["reason"] == "gopher_quality"][:2]
    for r in first:
        assert r["id"] in res.output and r["reason_detail"] in res.output
        assert f"gopher_words={r['gopher_words']}" in res.output
        assert " ".join(r["text"].split())[:30] in " ".join(res.output.split())
    assert "2 of 150 rows" in res.output
    # a rule name works as the reason too; unknown reasons list the ones present; a bad kind names the outputs
    res = cli.invoke(app, ["inspect", str(out), "--reason", "lorem_ipsum", "--limit", "1"], env={"COLUMNS": "140"})
    assert res.exit_code == 0 and "lorem_ipsum" in res.output
    res = cli.invoke(app, ["inspect", str(out), "--reason", "nope"])
    assert res.exit_code == 1 and "no rows with reason 'nope' in rejected/" in res.output and "langid 34" in res.output
    res = cli.invoke(app, ["inspect", str(out), "--kind", "nope"])
    assert res.exit_code == 2 and "outputs: data, rejected" in res.output
    res = cli.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a folder" in res.output


def test_a_model_folder_gets_a_report_but_no_dataset_card(tmp_path, prefect_harness):
    """quality-train / diachronic-train write a model, not tables: manifest (inputs with sha256), stats and a report
    of the metrics beside it; a dataset card there would be wrong."""
    from corpora.hashing import sha256_file
    from flows.config import RunConfig
    from flows.run_report import write_model_report

    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text('{"text": "a page", "label": 1}\n')
    model = tmp_path / "model"
    model.mkdir()
    write_model_report(model, "quality-train", RunConfig(inputs=[str(labelled)], output=str(model)),
                       {"n": 499, "cv_auc_fasttext": 0.855, "cv_auc_model": 0.891}, "2026-12-01T00:00:00+00:00")
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["inputs"] == [{"path": str(labelled.resolve()), "sha256": sha256_file(labelled)}]
    assert json.loads((model / "stats.json").read_text())["cv_auc_model"] == 0.891
    page = (model / "report.html").read_text()
    assert "<h2>Outputs at a glance</h2>" in page and "0.891" in page and "cv_auc_fasttext" in page
    assert not (model / "README.md").exists()
