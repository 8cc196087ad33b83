"""Report URLs split by hand (agent.lean) give exactly what urllib.parse gives.

urllib.parse costs the application RSS on the device (docs/footprint.md), so
the agent splits plain URLs itself and hands the rest to urllib.parse.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.lean import encode_query, query_items, split_url

PIECES = ["file:", "mqtt:", "mqtts:", "drm:", "loop:", "//", "/", "///", "?", "#", "&", "=", "+", "%20",
          "%", "[", "]", "::1", "user:pw@", "host", ":1883", "1883", "max", "10M", "keep", " ", "\t", "é",
          "a", "x.y"]
urls = st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=20)


def urllib_split(url):
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, parts.query


def test_the_urls_the_agent_reads_split_as_urllib_splits_them():
    for url in ("file:///tmp/m.jsonl", "file:///var/log/gc.jsonl?max=10M&keep=2", "file://host/x",
                "file:relative", "mqtt://user:pw@broker.example:8883/x?a=1#frag", "drm:?interval=60s",
                "loop://?logging=debug&timeout", "stdout:", "/dev/ttyS1?baud=115200", "file:///a%20b?max=1+M"):
        assert split_url(url) == urllib_split(url), url
        assert query_items(split_url(url)[3]) == parse_qsl(urllib_split(url)[3], keep_blank_values=True)


@settings(max_examples=400, deadline=None)
@given(urls)
def test_any_url_splits_as_urllib_splits_it(url):
    try:
        expected = urllib_split(url)
    except ValueError:   # urllib.parse refuses it (bad brackets): so must we
        try:
            split_url(url)
        except ValueError:
            return
        raise AssertionError("accepted %r" % url)
    assert split_url(url) == expected
    assert query_items(expected[3]) == parse_qsl(expected[3], keep_blank_values=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(urls, urls), max_size=4))
def test_a_query_is_encoded_as_urllib_encodes_it(pairs):
    assert encode_query(pairs) == urlencode(pairs)
