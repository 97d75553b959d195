"""The timing-phrase parser: every phrase of the seed plan, its variants, and near misses."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines.phrases import PhraseError, parse_timing, split_timings
from deadlines.rules import (
    AfterEvent,
    Combined,
    Continuous,
    Fixed,
    OnDemand,
    Period,
    Recurring,
    Reference,
    RuleSettings,
    due_dates_for,
    rule_from_dict,
)


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(*texts: str) -> list[date]:
    return [d(t) for t in texts]


EVENT_QD_BO = "nhận được Quyết định công bố TTHC của bộ trưởng các Bộ, ngành Trung ương"  # II.1
EVENT_QD_TINH = (
    "ban hành Quyết định công bố TTHC hoặc Quyết định công bố danh mục TTHC của Chủ tịch "
    "UBND tỉnh"  # II.2
)
REFERENCE_1085 = (
    "Theo Quyết định số 1085/QĐ-TTg ngày 15/9/2022 của Thủ tướng Chính phủ và Kế hoạch số "
    "793/KH- UBND ngày 14/11/2022 của UBND tỉnh"  # III.2
)
MONTH_ENDS_2025 = days(
    "2025-01-24",  # 27-31/1 are Tết days off
    "2025-02-28",
    "2025-03-31",
    "2025-04-29",  # 30/4 is a holiday
    "2025-05-30",  # 31/5 is a Saturday
    "2025-06-30",
    "2025-07-31",
    "2025-08-29",  # 30-31/8 weekend
    "2025-09-30",
    "2025-10-31",
    "2025-11-28",  # 29-30/11 weekend
    "2025-12-31",
)
QUARTER_ENDS_2025 = days("2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31")
BEFORE_23RD_2025 = days(
    "2025-01-22",
    "2025-02-21",  # 22/2 is a Saturday: rolled back
    "2025-03-21",  # 22/3 Saturday
    "2025-04-22",
    "2025-05-22",
    "2025-06-20",  # 22/6 Sunday, 21/6 Saturday
    "2025-07-22",
    "2025-08-22",
    "2025-09-22",
    "2025-10-22",
    "2025-11-21",  # 22/11 Saturday
    "2025-12-22",
)
EVENT_DAY = d("2025-04-25")  # a Friday; Saturday 26/4/2025 was a worked day

# Every timing phrase of QĐ 384/QĐ-UBND (Nghệ An, 2025), appendix and body, with the rule
# it states and its due dates for plan year 2025 (after EVENT_DAY for event phrases).
SEED = [
    ("Tháng 02/2025", Period(d("2025-02-01"), d("2025-02-28"), "tháng 2/2025"), days("2025-02-28")),
    ("Trước ngày 05/3/2025", Fixed(d("2025-03-05"), before=True), days("2025-03-04")),
    ("Trong năm 2025", Period(d("2025-01-01"), d("2025-12-31"), "năm 2025"), days("2025-12-31")),
    ("Thường xuyên", Continuous(), []),
    ("Theo Kế hoạch của UBND tỉnh", Reference("Theo Kế hoạch của UBND tỉnh"), []),
    # 31/8/2025 is a Sunday and 30/8 a Saturday: rolled back to Friday 29/8.
    ("Hoàn thành trước ngày 01/9/2025", Fixed(d("2025-09-01"), before=True), days("2025-08-29")),
    ("Quý III/2025", Period(d("2025-07-01"), d("2025-09-30"), "Quý III/2025"), days("2025-09-30")),
    ("Quý II/2025", Period(d("2025-04-01"), d("2025-06-30"), "Quý II/2025"), days("2025-06-30")),
    ("Hàng tháng", Recurring("monthly"), MONTH_ENDS_2025),
    (
        "Quý II, III/2025",
        Period(d("2025-04-01"), d("2025-09-30"), "Quý II–III/2025"),
        days("2025-09-30"),
    ),
    ("Trong năm", Period(d("2025-01-01"), d("2025-12-31"), "năm 2025"), days("2025-12-31")),
    (
        "Hàng quý và đột xuất khi có yêu cầu",
        Combined((Recurring("quarterly"), OnDemand())),
        QUARTER_ENDS_2025,
    ),
    ("Trước ngày 23 hàng tháng", Recurring("monthly", before_day=23), BEFORE_23RD_2025),
    (
        f"Sau 03 ngày làm việc kể từ ngày {EVENT_QD_BO}",
        AfterEvent(EVENT_QD_BO, 3, "working_days"),
        days("2025-04-29"),  # 26/4 (worked Saturday), 28/4, 29/4
    ),
    (
        f"Chậm nhất 5 ngày làm việc  kể từ ngày {EVENT_QD_TINH}.",
        AfterEvent(EVENT_QD_TINH, 5, "working_days"),
        days("2025-05-06"),  # 26/4, 28/4, 29/4, 5/5, 6/5 (30/4-2/5 off)
    ),
    (
        "Ngay sau khi văn bản QPPL được ban hành.",
        AfterEvent("văn bản QPPL được ban hành", 1, "immediately"),
        days("2025-04-26"),
    ),
    (
        "Công khai ngay sau khi Quyết định công bố có hiệu lực thi hành",
        AfterEvent("Quyết định công bố có hiệu lực thi hành", 1, "immediately"),
        days("2025-04-26"),
    ),
    ("Sau kiểm tra", AfterEvent("kiểm tra", 0, "unspecified"), []),
    (
        "Sau khi nhận được phản ánh, kiến nghị và sau khi có Báo cáo kết quả giải quyết",
        Combined(
            (
                AfterEvent("nhận được phản ánh, kiến nghị", 0, "unspecified"),
                AfterEvent("có Báo cáo kết quả giải quyết", 0, "unspecified"),
            )
        ),
        [],
    ),
    (REFERENCE_1085, Reference(REFERENCE_1085), []),
    (
        "Theo Kế hoạch của UBND tỉnh và Kiểm tra đột xuất theo yêu cầu.",
        Combined((Reference("Theo Kế hoạch của UBND tỉnh"), OnDemand())),
        [],
    ),
    # Body of the plan (III.2.b).
    ("Định kỳ hằng tháng", Recurring("monthly"), MONTH_ENDS_2025),
    (
        "ngay sau khi được Chính phủ phê duyệt",
        AfterEvent("được Chính phủ phê duyệt", 1, "immediately"),
        days("2025-04-26"),
    ),
]
SEED_PHRASES = [phrase for phrase, _, _ in SEED]


@pytest.mark.parametrize(("phrase", "rule", "due"), SEED, ids=SEED_PHRASES)
def test_every_seed_phrase_gives_its_rule_and_2025_due_dates(cal, phrase, rule, due):
    parsed = parse_timing(phrase, plan_year=2025)
    assert parsed == rule
    assert parsed.to_dict() == rule.to_dict()  # wording of events and references included
    assert due_dates_for(parsed, cal, year=2025, event_date=EVENT_DAY) == due


def test_after_event_seed_phrase_keeps_the_event_wording_and_a_stable_code():
    rule = parse_timing(f"Sau 03 ngày làm việc kể từ ngày {EVENT_QD_BO}")
    assert rule.to_dict() == {
        "kind": "after_event",
        "event": EVENT_QD_BO,
        "event_code": "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong",
        "amount": 3,
        "unit": "working_days",
    }


def test_a_date_inside_a_reference_is_not_a_deadline(cal):
    rule = parse_timing(REFERENCE_1085, plan_year=2025)
    assert rule.kind == "reference"
    assert rule.text == REFERENCE_1085
    assert rule.due_dates(cal, year=2022) == []


def test_a_seed_cell_with_two_bullets_is_two_obligations(cal):
    cell = (
        "- Ngay sau khi văn bản QPPL được ban hành.\n"
        f"-  Sau 03 ngày làm việc  kể từ ngày {EVENT_QD_BO}"
    )
    items = split_timings(cell)
    assert items == [
        "Ngay sau khi văn bản QPPL được ban hành.",
        f"Sau 03 ngày làm việc kể từ ngày {EVENT_QD_BO}",
    ]
    rules = [parse_timing(item) for item in items]
    assert [r.unit for r in rules] == ["immediately", "working_days"]
    with pytest.raises(PhraseError, match="nhiều dòng") as err:
        parse_timing(cell)
    assert "Ngay sau khi văn bản QPPL được ban hành" in str(err.value)


def test_split_timings_joins_wrapped_lines_and_skips_blank_ones():
    cell = "- Sau khi nhận được phản ánh,\n  kiến nghị\n\n• Hàng quý"
    assert split_timings(cell) == ["Sau khi nhận được phản ánh, kiến nghị", "Hàng quý"]
    assert split_timings("Thường xuyên") == ["Thường xuyên"]
    assert split_timings("  \n ") == []


# ------------------------------------------------------------------------ tolerance


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("quy 3/2025", "Quý III/2025"),
        ("QUÝ 3 NĂM 2025", "Quý III/2025"),
        ("Quý III năm 2025", "Quý III/2025"),
        ("Trong quý III/2025", "Quý III/2025"),
        ("Quý 2 và 3 năm 2025", "Quý II, III/2025"),
        ("Quý II - III/2025", "Quý II, III/2025"),
        ("Quý II và Quý III năm 2025", "Quý II, III/2025"),
        ("tháng 2 năm 2025", "Tháng 02/2025"),
        ("Trong tháng 2/2025", "Tháng 02/2025"),
        ("Trước ngày 5/3/2025", "Trước ngày 05/3/2025"),
        ("Trước ngày 5 tháng 3 năm 2025", "Trước ngày 05/3/2025"),
        ("truoc ngay 05-03-2025", "Trước ngày 05/3/2025"),
        ("Hằng tháng", "Hàng tháng"),
        ("Định kỳ hàng tháng", "Hàng tháng"),
        ("mỗi tháng", "Hàng tháng"),
        ("Trước ngày 23 hằng tháng", "Trước ngày 23 hàng tháng"),
        ("Hằng tháng, trước ngày 23", "Trước ngày 23 hàng tháng"),
        ("- Thường xuyên.", "Thường xuyên"),
        ("thuong xuyen, lien tuc", "Thường xuyên"),
        ("Hàng quý; đột xuất khi có yêu cầu", "Hàng quý và đột xuất khi có yêu cầu"),
        ("Sau khi kiểm tra", "Sau kiểm tra"),
        (
            f"Sau 3 ngày làm việc, kể từ ngày {EVENT_QD_BO}",
            f"Sau 03 ngày làm việc kể từ ngày {EVENT_QD_BO}",
        ),
        (
            f"Trong vòng 03 ngày làm việc tính từ ngày {EVENT_QD_BO}",
            f"Sau 03 ngày làm việc kể từ ngày {EVENT_QD_BO}",
        ),
    ],
)
def test_written_variants_read_the_same(variant, canonical):
    assert parse_timing(variant, plan_year=2025) == parse_timing(canonical, plan_year=2025)


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@st.composite
def written_like(draw, phrase: str) -> str:
    """`phrase` as someone might type or paste it: other case, no or decomposed
    diacritics, more or other spaces, a bullet, a trailing dot."""
    text = phrase
    if draw(st.booleans()):
        text = _strip_diacritics(text)
    case = draw(st.sampled_from(["keep", "lower", "upper", "mixed"]))
    if case == "lower":
        text = text.lower()
    elif case == "upper":
        text = text.upper()
    elif case == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        text = "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))
    if draw(st.booleans()):
        text = unicodedata.normalize("NFD", text)
    space = st.sampled_from([" ", "  ", "\t", "\u00a0", " \u00a0 "])
    words = text.split(" ")
    text = words[0] + "".join(draw(space) + word for word in words[1:])
    if draw(st.booleans()):
        text = draw(st.sampled_from(["- ", "-  ", "– ", "+ "])) + text
    if draw(st.booleans()):
        text = text + draw(st.sampled_from([".", " .", ";", "  "]))
    return draw(space) + text if draw(st.booleans()) else text


@settings(max_examples=1200)
@given(data=st.data(), phrase=st.sampled_from(SEED_PHRASES))
def test_case_diacritics_spacing_and_bullets_do_not_change_the_rule(cal, data, phrase):
    variant = data.draw(written_like(phrase))
    rule = parse_timing(phrase, plan_year=2025)
    assert parse_timing(variant, plan_year=2025) == rule, variant
    assert due_dates_for(
        parse_timing(variant, plan_year=2025), cal, year=2025, event_date=EVENT_DAY
    ) == due_dates_for(rule, cal, year=2025, event_date=EVENT_DAY)


def test_event_wording_is_kept_as_typed_but_identity_is_the_code():
    accented = parse_timing("Ngay sau khi văn bản QPPL được ban hành")
    bare = parse_timing("ngay sau khi van ban qppl duoc ban hanh")
    decomposed = parse_timing(
        unicodedata.normalize("NFD", "Ngay sau khi văn bản QPPL được ban hành")
    )
    assert accented == bare == decomposed
    assert accented.event == decomposed.event == "văn bản QPPL được ban hành"
    assert bare.event == "van ban qppl duoc ban hanh"
    assert accented.event_code == bare.event_code == "van-ban-qppl-duoc-ban-hanh"


# --------------------------------------------------------------------- more grammar


@pytest.mark.parametrize(
    ("phrase", "rule"),
    [
        ("Chậm nhất ngày 05/3/2025", Fixed(d("2025-03-05"), before=False)),
        ("Chậm nhất là ngày 5/3/2025", Fixed(d("2025-03-05"), before=False)),
        ("Trước 05/3", Fixed(d("2025-03-05"), before=True)),  # the plan's year
        ("Tháng 2, 3/2025", Period(d("2025-02-01"), d("2025-03-31"), "tháng 2–3/2025")),
        ("Quý IV", Period(d("2025-10-01"), d("2025-12-31"), "Quý IV/2025")),
        ("6 tháng đầu năm 2025", Period(d("2025-01-01"), d("2025-06-30"), "6 tháng đầu năm 2025")),
        ("6 tháng cuối năm", Period(d("2025-07-01"), d("2025-12-31"), "6 tháng cuối năm 2025")),
        ("Năm 2026", Period(d("2026-01-01"), d("2026-12-31"), "năm 2026")),
        ("Hàng quý", Recurring("quarterly")),
        ("Định kỳ 6 tháng", Recurring("half_yearly")),
        ("6 tháng", Recurring("half_yearly")),
        ("Hằng năm", Recurring("yearly")),
        ("Đột xuất", OnDemand()),
        ("khi có yêu cầu", OnDemand()),
        ("Kiểm tra đột xuất theo yêu cầu", OnDemand()),
        ("Liên tục", Continuous()),
        ("Trong vòng 10 ngày kể từ ngày nhận hồ sơ", AfterEvent("nhận hồ sơ", 10, "days")),
        ("Trong thời hạn 15 ngày kể từ khi có kết luận", AfterEvent("có kết luận", 15, "days")),
        ("Ngay khi có kết quả", AfterEvent("có kết quả", 1, "immediately")),
        ("Theo lịch của Bộ", Reference("Theo lịch của Bộ")),
    ],
)
def test_other_known_forms(phrase, rule):
    assert parse_timing(phrase, plan_year=2025) == rule


def test_a_phrase_naming_its_year_ignores_the_plan_year():
    assert parse_timing("Quý III/2025", plan_year=2030) == parse_timing("Quý III/2025")


def test_a_known_reference_or_event_joined_by_va_stays_one_rule():
    assert parse_timing("Sau khi nhận được đơn và hồ sơ") == AfterEvent(
        "nhận được đơn và hồ sơ", 0, "unspecified"
    )
    # "và" joins two timings only when both sides are timings.
    rule = parse_timing("Sau khi nhận được đơn và hồ sơ và hàng quý")
    assert rule == Combined(
        (AfterEvent("nhận được đơn và hồ sơ", 0, "unspecified"), Recurring("quarterly"))
    )


def test_the_same_timing_twice_is_one_rule():
    assert parse_timing("Hàng quý và hằng quý") == Recurring("quarterly")


def test_settings_fill_what_the_phrase_leaves_open(cal):
    chosen = RuleSettings(monthly_due=20, quarterly_due=15, immediately_working_days=2)
    assert parse_timing("Hàng tháng", settings=chosen) == Recurring("monthly", before_day=20)
    assert parse_timing("Hàng quý", settings=chosen) == Recurring("quarterly", before_day=15)
    assert parse_timing("Hàng năm", settings=chosen) == Recurring("yearly")  # left at default
    # A stated day wins over the setting.
    assert parse_timing("Trước ngày 23 hàng tháng", settings=chosen).before_day == 23
    soon = parse_timing("Ngay sau khi có kết quả", settings=chosen)
    assert soon.due_after(cal, EVENT_DAY) == d("2025-04-28")  # 26/4 (worked), 28/4


# ----------------------------------------------------------------------- near misses


@pytest.mark.parametrize(
    ("phrase", "reason"),
    [
        ("Trước ngày 32/3/2025", "32/3/2025 không tồn tại"),
        ("Trước ngày 31/2/2025", "31/2/2025 không tồn tại"),
        ("Chậm nhất ngày 0/3/2025", "0/3/2025 không tồn tại"),
        ("Trước ngày 5/13/2025", "5/13/2025 không tồn tại"),
        ("Quý V/2025", "quý V không tồn tại"),
        ("Quý 0/2025", "quý 0 không tồn tại"),
        ("Quý IIII/2025", "không phải số quý"),
        ("Quý I, III/2025", "liền nhau"),
        ("Quý III, II/2025", "liền nhau"),
        ("Tháng 13/2025", "tháng 13 không tồn tại"),
        ("Tháng 0/2025", "tháng 0 không tồn tại"),
        ("Trước ngày 0 hàng tháng", "từ 2 đến 29"),
        ("Trước ngày 31 hàng tháng", "từ 2 đến 29"),
        ("Sau khi vài ngày", "không phải một sự kiện"),
        ("Sau 3 ngày làm việc kể từ ngày 05/3/2025", "không phải một sự kiện"),
        ("Trong 0 ngày kể từ ngày nhận hồ sơ", "từ 1 trở lên"),
        ("Trước ngày 32/3/2025 và hàng quý", "32/3/2025 không tồn tại"),
        ("", "trống"),
        ("  - . ", "trống"),
    ],
)
def test_impossible_phrases_say_what_is_wrong(phrase, reason):
    with pytest.raises(PhraseError) as err:
        parse_timing(phrase, plan_year=2025)
    message = str(err.value)
    assert f'"{" ".join(phrase.split())}"' in message
    assert reason in message
    assert err.value.reason is not None


@pytest.mark.parametrize(
    "phrase",
    [
        "Hàng tuần lễ hội",
        "Hàng tuần",
        "Sau vài ngày",
        "Sau 3 ngày",
        "Sau đó",
        "Sớm",
        "Năm",
        "Theo ý kiến chỉ đạo",
        "Chậm nhất ngày 20 hàng tháng",
        "Trước ngày 15 hàng quý",
        "Sau 8 giờ làm việc kể từ khi nhận hồ sơ",
        "Quý III/25",
        "ngày 05/3/2025",
        "Hàng quý và linh tinh",
    ],
)
def test_unknown_phrases_are_refused_not_guessed(phrase):
    with pytest.raises(PhraseError) as err:
        parse_timing(phrase, plan_year=2025)
    assert str(err.value).startswith(f'Không hiểu cụm thời hạn: "{phrase}"')
    assert err.value.phrase == phrase
    assert err.value.reason is None


@pytest.mark.parametrize("phrase", ["Trong năm", "Quý III", "Tháng 2", "Trước ngày 05/3"])
def test_a_phrase_without_a_year_needs_the_plan_year(phrase):
    with pytest.raises(PhraseError, match="năm của kế hoạch") as err:
        parse_timing(phrase)
    assert phrase in str(err.value)


@settings(max_examples=2000)
@given(text=st.text(max_size=80), plan_year=st.none() | st.integers(1, 9999))
def test_any_text_gives_a_rule_or_a_phrase_error(text, plan_year):
    try:
        rule = parse_timing(text, plan_year=plan_year)
    except PhraseError as err:
        assert err.phrase in str(err)
    else:
        assert rule.to_dict()["kind"] == rule.kind


@settings(max_examples=800)
@given(
    words=st.lists(
        st.sampled_from(
            [
                "Sau",
                "khi",
                "và",
                "hàng",
                "quý",
                "tháng",
                "ngày",
                "03",
                "Quý",
                "II",
                ",",
                "III/2025",
                "Trước",
                "23",
                "đột xuất",
                "Theo",
                "Kế hoạch",
                "kể từ",
                "làm việc",
                "năm",
                "2025",
            ]
        ),
        max_size=14,
    )
)
def test_word_salad_gives_a_rule_or_a_phrase_error(words):
    phrase = " ".join(words)
    try:
        rule = parse_timing(phrase, plan_year=2025)
    except PhraseError as err:
        assert err.phrase == " ".join(phrase.split())
    else:
        assert rule_from_dict(rule.to_dict()) == rule
