import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bot.opml import MAX_OPML_BYTES, OpmlFeed, export_opml, parse_opml

DATA = Path(__file__).parent / "data" / "opml"
WHERE = "import[opml]"


def load(name):
    return parse_opml((DATA / name).read_bytes(), where=WHERE)


# --- import --------------------------------------------------------------------------------------

def test_feedly_export_nested_folders():
    feeds = load("feedly_export.opml")
    by_url = {f.url: f for f in feeds}
    assert [f.url for f in feeds] == [
        "https://lwn.net/headlines/rss",
        "https://news.ycombinator.com/rss",
        "https://www.jiqizhixin.com/rss",
        "https://www.qbitai.com/feed?lang=zh&format=rss",
        "https://sspai.com/feed",
        "http://padded.example/rss.xml",
    ]
    assert by_url["https://lwn.net/headlines/rss"] == OpmlFeed(
        url="https://lwn.net/headlines/rss", title="LWN.net", html_url="https://lwn.net", categories=("Tech",))
    assert by_url["https://www.jiqizhixin.com/rss"].categories == ("Tech/AI",)
    assert by_url["https://www.jiqizhixin.com/rss"].title == "机器之心"
    assert by_url["https://www.qbitai.com/feed?lang=zh&format=rss"].html_url is None
    assert by_url["https://sspai.com/feed"].title == "少數派"
    assert by_url["https://sspai.com/feed"].categories == ("中文新聞",)


def test_duplicate_url_kept_once_with_both_folders():
    feeds = load("feedly_export.opml")
    hn = [f for f in feeds if f.url == "https://news.ycombinator.com/rss"]
    assert len(hn) == 1
    assert hn[0].title == "Hacker News"  # first occurrence wins
    assert hn[0].categories == ("Tech", "中文新聞")


def test_non_http_urls_dropped_and_whitespace_stripped():
    feeds = load("feedly_export.opml")
    urls = {f.url for f in feeds}
    assert not any(u.startswith(("gopher:", "file:", "javascript:")) for u in urls)
    padded = next(f for f in feeds if f.url == "http://padded.example/rss.xml")
    assert padded.title == "Padded"
    assert padded.html_url is None  # javascript: htmlUrl dropped


def test_opml2_category_attributes():
    feeds = load("opml2_categories.opml")
    assert [f.url for f in feeds] == [
        "https://blog.rust-lang.org/feed.xml", "https://title-only.example/atom.xml", "https://untitled.example/feed"]
    rust, title_only, untitled = feeds
    assert rust.categories == ("programming", "rust")
    assert rust.html_url == "https://blog.rust-lang.org/"
    assert title_only.title == "Only title attr"
    assert title_only.categories == ("Tech/Languages",)
    assert untitled.title is None
    assert untitled.categories == ()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "OPML file is empty"),
    (b"   \n", "OPML file is empty"),
    (b"not xml at all", "not an OPML document"),
    (b"<html><body><p>hello</p></body></html>", "not an OPML document"),
    (b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', "not an OPML document"),
    (b'<opml version="2.0"><head/><body></body></opml>', "no http\\(s\\) feed URLs"),
    (b'<opml version="2.0"><body><outline type="rss" xmlUrl="ftp://x/f"/></body></opml>', "no http\\(s\\) feed"),
    (b'<opml version="2.0"><body><outline text="folder"><outline text="site" htmlUrl="https://x/"/>'
     b"</outline></body></opml>", "no http\\(s\\) feed"),
    (b"\xff\xfe\x00garbage<<<", "not an OPML document"),
])
def test_unusable_documents(data, message):
    with pytest.raises(ValueError, match=r"^import\[opml\]: " + message):
        parse_opml(data, where=WHERE)


def test_size_cap():
    data = b'<opml version="2.0"><body>' + b" " * MAX_OPML_BYTES + b"</body></opml>"
    with pytest.raises(ValueError, match=r"import\[opml\]: OPML file is 5,242,9\d\d bytes; the limit is 5 MB"):
        parse_opml(data, where=WHERE)


def test_str_refused():
    with pytest.raises(TypeError, match="bytes"):
        parse_opml("https://example.com/list.opml", where=WHERE)  # type: ignore[arg-type]


def test_malformed_but_recoverable():
    data = b'<opml version="2.0"><body><outline type="rss" text="A & B" xmlUrl="https://a.example/rss">'
    assert parse_opml(data, where=WHERE) == [
        OpmlFeed(url="https://a.example/rss", title="A & B", html_url=None, categories=())]


# --- hostile XML ---------------------------------------------------------------------------------

def test_external_entity_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    data = f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file://{secret}">]>
<opml version="2.0"><body>
<outline type="rss" text="&xxe;" xmlUrl="https://a.example/rss" htmlUrl="https://a.example/&xxe;"/>
</body></opml>""".encode()
    feeds = parse_opml(data, where=WHERE)
    assert "TOP-SECRET-VALUE" not in repr(feeds)
    assert feeds[0].url == "https://a.example/rss"
    assert feeds[0].title == "&xxe;"  # left as literal text, never expanded


def test_billion_laughs_not_expanded():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    data = f"""<?xml version="1.0"?>
<!DOCTYPE opml [{entities}]>
<opml version="2.0"><body><outline type="rss" text="&lol9;" xmlUrl="https://a.example/rss"/></body></opml>""".encode()
    start = time.monotonic()
    feeds = parse_opml(data, where=WHERE)
    assert time.monotonic() - start < 2.0
    assert feeds[0].title == "&lol9;"


def test_network_entity_not_fetched():
    data = b"""<?xml version="1.0"?>
<!DOCTYPE opml SYSTEM "http://127.0.0.1:9/evil.dtd" [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x">%remote;]>
<opml version="2.0"><body><outline type="rss" text="ok" xmlUrl="https://a.example/rss"/></body></opml>"""
    start = time.monotonic()
    assert parse_opml(data, where=WHERE)[0].title == "ok"
    assert time.monotonic() - start < 2.0


# --- export --------------------------------------------------------------------------------------

FEEDS = [
    OpmlFeed(url="https://www.qbitai.com/feed?lang=zh&format=rss", title="量子位 <AI> & \"更多\"",
             html_url="https://www.qbitai.com/?a=1&b=2", categories=("科技/人工智能", "news")),
    OpmlFeed(url="https://lwn.net/headlines/rss", title="LWN.net", html_url=None, categories=()),
    OpmlFeed(url="http://untitled.example/feed", title=None, html_url=None, categories=("misc",)),
    OpmlFeed(url="https://sspai.com/feed", title="少數派", html_url="https://sspai.com", categories=("中文新聞",)),
]


def test_export_is_opml2_utf8():
    data = export_opml(FEEDS, title="我的订阅")
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert "量子位".encode() in data  # raw UTF-8, not character references
    root = ET.fromstring(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "我的订阅"
    outlines = root.findall("body/outline")
    assert len(outlines) == 4
    first = outlines[0]
    assert first.attrib == {
        "type": "rss", "text": "量子位 <AI> & \"更多\"", "title": "量子位 <AI> & \"更多\"",
        "xmlUrl": "https://www.qbitai.com/feed?lang=zh&format=rss", "htmlUrl": "https://www.qbitai.com/?a=1&b=2",
        "category": "科技/人工智能,news"}
    assert b"&amp;format=rss" in data
    assert outlines[2].get("text") == "http://untitled.example/feed" and "title" not in outlines[2].attrib


def test_round_trip():
    assert parse_opml(export_opml(FEEDS), where=WHERE) == FEEDS


def test_round_trip_of_imported_file():
    feeds = load("feedly_export.opml")
    assert parse_opml(export_opml(feeds), where=WHERE) == feeds


def test_export_commas_in_category():
    data = export_opml([OpmlFeed(url="https://a.example/rss", title="A", html_url=None, categories=("x, y", "z"))])
    assert parse_opml(data, where=WHERE)[0].categories == ("x y", "z")


def test_export_empty_list_is_valid_xml():
    root = ET.fromstring(export_opml([]))
    assert root.findall("body/outline") == []
