"""Units: the sizes, percentages and durations people write in profiles."""

import pytest

from agent.units import (
    Amount,
    format_duration,
    format_kb,
    is_off,
    parse_amount,
    parse_duration,
    parse_percent,
    parse_size,
)

# --- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("100", 100),
    ("512K", 512 * 1024),
    ("40M", 40 * 1024 * 1024),
    ("1G", 1 << 30),
    ("1T", 1 << 40),
    ("1.5M", 1536 * 1024),
    ("40m", 40 * 1024 * 1024),
    ("40MB", 40 * 1024 * 1024),
    ("40MiB", 40 * 1024 * 1024),
    (" 40 M ", 40 * 1024 * 1024),
])
def test_sizes_are_binary_units_as_proc_and_dal_use(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "40X", "-1M", "M", "4 0M", "40M extra", "1e3"])
def test_a_bad_size_is_refused_with_examples_of_good_ones(text):
    with pytest.raises(ValueError) as info:
        parse_size(text)
    message = str(info.value)
    assert repr(text) in message
    assert "is not a size" in message
    assert "40M" in message   # shows the user what a size looks like


# --- amounts: a size or a share of the ceiling -----------------------------------


def test_an_amount_may_be_a_share_of_the_ceiling_resolved_later():
    amount = parse_amount("15%")
    assert amount.fraction == pytest.approx(0.15)
    assert amount.resolve(100000) == 15000
    assert amount.resolve(200000) == 30000
    assert str(amount) == "15%"


def test_an_absolute_amount_is_kilobytes_whatever_the_ceiling():
    amount = parse_amount("24M")
    assert amount.kb == 24 * 1024
    assert amount.resolve(100000) == amount.resolve(1) == 24 * 1024
    assert str(amount) == "24M"


def test_amount_edges_of_the_percentage_range():
    assert parse_amount("0%").resolve(1000) == 0
    assert parse_amount("100%").resolve(1000) == 1000
    assert parse_amount(" 15 % ").resolve(1000) == 150


def test_an_amount_over_100_percent_is_refused():
    with pytest.raises(ValueError) as info:
        parse_amount("150%")
    assert "'150%'" in str(info.value)
    assert "more than 100%" in str(info.value)


def test_a_bad_amount_names_both_accepted_forms():
    with pytest.raises(ValueError) as info:
        parse_amount("lots")
    message = str(info.value)
    assert "'lots'" in message
    assert "size or a percentage" in message
    assert "24M" in message and "15%" in message


def test_a_percentage_can_be_forbidden_where_only_a_size_makes_sense():
    with pytest.raises(ValueError) as info:
        parse_amount("15%", allow_percent=False)
    assert "percentage is not allowed" in str(info.value)
    assert parse_amount("15M", allow_percent=False) == Amount(kb=15 * 1024)


# --- percentages ------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("5%", 0.05), ("0%", 0.0), ("100%", 1.0), ("2.5 %", 0.025)])
def test_percentages_become_shares(text, expected):
    assert parse_percent(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["5", "101%", "abc", "-5%", "%", ""])
def test_a_bad_percentage_says_what_range_is_accepted(text):
    with pytest.raises(ValueError) as info:
        parse_percent(text)
    assert repr(text) in str(info.value)
    assert "between 0% and 100%" in str(info.value)


# --- durations ----------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5),
    ("30s", 30.0),
    ("15m", 900.0),
    ("2h", 7200.0),
    ("1d", 86400.0),
    ("10", 10.0),          # a bare number is seconds
    ("1.5h", 5400.0),
    (" 30 S ", 30.0),
])
def test_durations_become_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-1s", "1w", "15 minutes", "s"])
def test_a_bad_duration_is_refused_with_examples(text):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    message = str(info.value)
    assert repr(text) in message
    assert "is not a duration" in message
    assert "15m" in message


# --- words and formatting for people ---------------------------------------------------


@pytest.mark.parametrize("text", ["off", "OFF", " no ", "never", "None"])
def test_off_words_switch_a_setting_off(text):
    assert is_off(text)


@pytest.mark.parametrize("text", ["0", "30s", "yes", ""])
def test_other_words_do_not_switch_a_setting_off(text):
    assert not is_off(text)


@pytest.mark.parametrize("kb, text", [(512, "512K"), (1536, "1.5M"), (40 * 1024, "40M"), (2 << 20, "2G")])
def test_sizes_are_shown_short(kb, text):
    assert format_kb(kb) == text


@pytest.mark.parametrize("seconds, text", [(900.0, "15m"), (0.5, "500ms"), (90.0, "90s"),
                                           (3600.0, "1h"), (86400.0, "1d")])
def test_durations_are_shown_short(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["500ms", "30s", "15m", "2h", "1d"])
def test_formatted_durations_parse_back_to_the_same_seconds(text):
    assert format_duration(parse_duration(text)) == text


def test_absurdly_large_values_are_value_errors_with_a_reason():
    from agent.units import parse_duration, parse_size
    for parse in (parse_size, parse_duration):
        with pytest.raises(ValueError, match=r"too large|ten years"):
            parse("9" * 400)
