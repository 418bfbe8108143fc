"""The phrasing matrix: every field × every phrasing × script (simplified, traditional, English) ×
container (own line, label–value, multi-visa paragraph, table row, Q&A, PDF-wrapped, PDF page break).

Each case states the K visa's value next to another type's different value; the K value must come
out exactly, and the other type's never. A new phrasing is one line in PHRASES.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from crawler.facts import extract
from crawler.facts.values import _TRADITIONAL
from crawler.normalize import normalize_line

# (field, language, template, K's arguments, K's canonical value, the other type's arguments)
PHRASES: list[tuple[str, str, str, dict[str, str], str, dict[str, str]]] = [
    ("stay_duration", "zh", "每次停留不超过{n}日", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "zh", "每次停留期限为{n}天", {"n": "180"}, "P180D", {"n": "90"}),
    ("stay_duration", "zh", "每次停留期不超过{n}日", {"n": "一百八十"}, "P180D", {"n": "三十"}),
    ("stay_duration", "zh", "每次入境停留期最长为{n}个月", {"n": "６"}, "P6M", {"n": "３"}),
    ("stay_duration", "zh", "每次入境后可停留{n}年", {"n": "半"}, "P6M", {"n": "1"}),
    ("stay_duration", "zh", "停留期：{n}日", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "en", "the duration of each stay is up to {n} days", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "en", "Duration of each stay: {n} days", {"n": "180"}, "P180D", {"n": "90"}),
    ("stay_duration", "en", "each stay not exceeding {n} days", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "en", "holders may stay for up to {n} days per entry", {"n": "180"}, "P180D", {"n": "60"}),
    ("stay_duration", "zh", "停留期限为自入境之日起{n}日", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "zh", "持证人可在中国境内停留{n}天", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "en", "each stay shall not exceed {n} days", {"n": "180"}, "P180D", {"n": "30"}),
    ("stay_duration", "en", "the maximum duration of stay per entry: {n} days", {"n": "180"}, "P180D", {"n": "30"}),
    ("validity", "zh", "签发{n}年多次有效签证", {"n": "5"}, "P5Y", {"n": "1"}),
    ("validity", "en", "applicants may be issued a {n}-year multiple-entry visa", {"n": "five"}, "P5Y", {"n": "one"}),
    ("entries", "zh", "持证人可{n}出入境", {"n": "多次"}, "multiple", {"n": "一次"}),
    ("effective_date", "en", "the rules are effective {m} {d}, {y}", {"m": "November", "d": "1", "y": "2026"}, "2026-11-01", {"m": "January", "d": "1", "y": "2024"}),
    ("effective_date", "en", "the rules entered into force on {d} {m} {y}", {"d": "1", "m": "November", "y": "2026"}, "2026-11-01", {"d": "1", "m": "January", "y": "2024"}),
    ("validity", "zh", "有效期为{n}年", {"n": "5"}, "P5Y", {"n": "1"}),
    ("validity", "zh", "签证有效期最长为{n}年", {"n": "五"}, "P5Y", {"n": "两"}),
    ("validity", "zh", "有效期：{n}个月", {"n": "６０"}, "P60M", {"n": "3"}),
    ("validity", "zh", "签发有效期不超过{n}年", {"n": "5"}, "P5Y", {"n": "2"}),
    ("validity", "en", "Validity: {n} years", {"n": "5"}, "P5Y", {"n": "1"}),
    ("validity", "en", "the visa is valid for up to {n} years", {"n": "five"}, "P5Y", {"n": "two"}),
    ("validity", "en", "a period of validity of {n} years", {"n": "5"}, "P5Y", {"n": "3"}),
    ("entries", "zh", "可{n}入境", {"n": "多次"}, "multiple", {"n": "一次"}),
    ("entries", "zh", "入境次数：{n}", {"n": "多次"}, "multiple", {"n": "一次"}),
    ("entries", "zh", "入境次数为{n}", {"n": "两次"}, "double", {"n": "单次"}),
    ("entries", "zh", "持证人可{n}入境", {"n": "单次"}, "single", {"n": "多次"}),
    ("entries", "en", "Number of entries: {n}", {"n": "multiple"}, "multiple", {"n": "single"}),
    ("entries", "en", "it is a {n}-entry visa", {"n": "multiple"}, "multiple", {"n": "single"}),
    ("entries", "en", "holders may make {n} entries", {"n": "multiple"}, "multiple", {"n": "double"}),
    ("age_limit", "zh", "申请人年龄为{a}至{b}周岁", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "zh", "申请人年龄为{a}-{b}岁", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "zh", "申请人应当年满{a}周岁、不超过{b}周岁", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "zh", "申请人年龄应当在{a}周岁以上、{b}周岁以下", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "zh", "申请人年龄不超过{b}周岁", {"b": "四十五"}, "-45", {"b": "六十"}),
    ("age_limit", "en", "applicants must be aged {a} to {b}", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "en", "applicants must be between {a} and {b} years of age", {"a": "18", "b": "45"}, "18-45", {"a": "20", "b": "60"}),
    ("age_limit", "en", "applicants must be no older than {b}", {"b": "45"}, "-45", {"b": "60"}),
    ("age_limit", "en", "applicants must be under the age of {b}", {"b": "45"}, "-45", {"b": "60"}),
    ("education", "zh", "申请人须具有{d}", {"d": "学士及以上学位"}, "bachelor or above", {"d": "硕士及以上学位"}),
    ("education", "zh", "申请人须具有{d}", {"d": "硕士学位及以上学历"}, "master or above", {"d": "本科及以上学历"}),
    ("education", "en", "applicants must hold {d}", {"d": "a bachelor's degree or above"}, "bachelor or above", {"d": "a master's degree or higher"}),
    ("education", "en", "applicants must hold {d}", {"d": "a doctoral degree"}, "doctorate", {"d": "a bachelor's degree or above"}),
    ("effective_date", "zh", "本规定自{y}年{m}月{d}日起施行", {"y": "2026", "m": "11", "d": "1"}, "2026-11-01", {"y": "2024", "m": "1", "d": "1"}),
    ("effective_date", "zh", "自{y}年{m}月{d}日起实施", {"y": "二〇二六", "m": "十一", "d": "一"}, "2026-11-01", {"y": "2024", "m": "1", "d": "1"}),
    ("effective_date", "en", "the rules take effect on {m} {d}, {y}", {"m": "November", "d": "1", "y": "2026"}, "2026-11-01", {"m": "January", "d": "1", "y": "2024"}),
    ("effective_date", "en", "the measures are effective from {d} {m} {y}", {"d": "1", "m": "November", "y": "2026"}, "2026-11-01", {"d": "1", "m": "January", "y": "2024"}),
    ("sponsor", "zh", "申请{x}", {"x": "不要求境内有聘用或邀请单位"}, "not required", {"x": "须提交境内聘用单位出具的邀请函"}),
    ("sponsor", "zh", "申请人{x}", {"x": "无需国内雇主邀请"}, "not required", {"x": "须提供国内邀请单位的证明"}),
    ("sponsor", "en", "applicants {x}", {"x": "do not require a domestic employer or inviting entity"}, "not required",
     {"x": "require an invitation letter from an employer in China"}),
    ("sponsor", "en", "{x}", {"x": "No domestic employer or inviting entity is required"}, "not required", {"x": "A letter of invitation from an entity in China is required"}),
    ("activities", "zh", "持证人入境后可从事{x}等活动", {"x": "教育、科技、文化等领域交流及创业、商务"},
     "business; culture; education; entrepreneurship; exchange; science and technology", {"x": "工作"}),
    ("activities", "en", "holders may engage in {x} activities", {"x": "education, science and technology, culture exchange, entrepreneurship and business"},
     "business; culture; education; entrepreneurship; exchange; science and technology", {"x": "paid work"}),
    ("residence_permit", "zh", "入境后需要办理居留证件的，应当自入境之日起{a}日内申请，自受理之日起{b}个工作日内作出决定",
     {"a": "30", "b": "15"}, "deadline=P30D; processing=P15D", {"a": "30", "b": "15"}),
    ("residence_permit", "zh", "持证人入境后{a}日内申请居留许可", {"a": "三十"}, "deadline=P30D", {"a": "30"}),
    ("residence_permit", "en", "holders must apply for a residence permit within {a} days of entry; it is processed within {b} working days",
     {"a": "30", "b": "15"}, "deadline=P30D; processing=P15D", {"a": "30", "b": "15"}),
]
SENTENCE_FIELDS_OF_OTHERS = {"residence_permit"}  # the other type's statement here is about the same thing: only K's must count
TABLE_CELLS = {  # field → (Chinese header, English header, K cell, other cell, K value)
    "stay_duration": ("每次停留期", "Duration of each stay", "180日", "30日", "P180D"),
    "validity": ("有效期", "Validity", "5年", "1年", "P5Y"),
    "entries": ("入境次数", "Entries", "多次", "一次", "multiple"),
}
_SIMPLIFIED_TO_TRADITIONAL = {v: k for k, v in _TRADITIONAL.items()}


def traditional(text: str) -> str:
    return text.translate(_SIMPLIFIED_TO_TRADITIONAL)


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    text: str
    pdf: bool
    field: str
    value: str
    other: str


def _k(lang: str) -> tuple[str, str]:
    return ("K字签证", "Z字签证") if lang != "en" else ("K visa", "Z visa")


def _end(lang: str) -> str:
    return "。" if lang != "en" else "."


def _containers(lang: str, k_sentence: str, z_sentence: str) -> Iterator[tuple[str, str, bool]]:
    k, z = _k(lang)
    e = _end(lang)
    cap = (lambda s: s[:1].upper() + s[1:]) if lang == "en" else (lambda s: s)
    if lang == "en":
        yield "own-line", f"{z}: {cap(z_sentence)}.\nFor the {k}, {k_sentence}.", False
        yield "label-value", f"Z Visa: issued to foreign workers. {cap(z_sentence)}.\nK Visa: issued to young foreign science and technology talents. {cap(k_sentence)}. Other rules apply.", False
        yield "multi-visa-paragraph", f"Visa types\n1. Z Visa (employment). {cap(z_sentence)}.\n2. K Visa (young talents). Granted on application. {cap(k_sentence)}.\n3. L Visa (tourism). Apply in person.", False
        yield "q-and-a", f"Q: What applies to the Z visa?\nA: {cap(z_sentence)}.\nQ: What applies to the K visa?\nA: {cap(k_sentence)}.", False
        half = len(k_sentence) // 2
        cut = k_sentence.rfind(" ", 0, half) if " " in k_sentence[:half] else half
        yield "pdf-wrapped", f"{cap(z_sentence)} for the {z}.\nFor the {k}, {k_sentence[:cut]}\n{k_sentence[cut:].strip()}.", True
        yield "pdf-page-break", f"{cap(z_sentence)} for the {z}.\nFor the {k}, {k_sentence[:cut]}\n[page 2]\n{k_sentence[cut:].strip()}.", True
        return
    yield "own-line", f"{z}{z_sentence}{e}\n{k}{k_sentence}{e}", False
    yield "label-value", f"二、{z}（工作）：发给来华工作的人员。{z_sentence}；\n三、{k}（外国青年科技人才）：发给入境的外国青年科技人才。{k_sentence}；其他事项另行规定{e}", False
    yield "multi-visa-paragraph", f"签证种类说明\n一、{z}：{z_sentence}{e}\n二、{k}：发给外国青年科技人才{e}{k_sentence}{e}\n三、L字签证：发给旅游人员{e}", False
    yield "q-and-a", f"问：{z}有哪些规定？\n答：{z_sentence}{e}\n问：{k}有哪些规定？\n答：{k_sentence}{e}", False
    cut = max(len(k_sentence) // 2, 1)
    yield "pdf-wrapped", f"{z}{z_sentence}{e}\n{k}{k_sentence[:cut]}\n{k_sentence[cut:]}{e}", True
    yield "pdf-page-break", f"{z}{z_sentence}{e}\n{k}{k_sentence[:cut]}\n[page 2]\n{k_sentence[cut:]}{e}", True


def cases() -> Iterator[Case]:
    for field, lang, template, k_args, value, z_args in PHRASES:
        for script in (("zh", "zh-Hant") if lang == "zh" else ("en",)):
            convert: Callable[[str], str] = traditional if script == "zh-Hant" else (lambda s: s)
            k_sentence, z_sentence = convert(template.format(**k_args)), convert(template.format(**z_args))
            for container, text, pdf in _containers(lang, k_sentence, z_sentence):
                text = convert(text)
                title = convert("签证说明") if lang != "en" else "Visa information"
                yield Case(f"{field}-{script}-{container}-{template[:14]}", title, text, pdf, field, value, z_sentence)
    for field, (zh, en, k_cell, z_cell, value) in TABLE_CELLS.items():
        for script, head, kind in (("zh", f"签证种类｜{zh}", ("K字签证", "Z字签证")), ("zh-Hant", traditional(f"签证种类｜{zh}"), ("K字簽證", "Z字簽證")),
                                   ("en", f"Visa type｜{en}", ("K visa", "Z visa"))):
            cells = (k_cell, z_cell) if script != "en" else (k_cell.replace("日", " days").replace("年", " years").replace("多次", "multiple").replace("一次", "single"),
                                                                z_cell.replace("日", " days").replace("年", " years").replace("多次", "multiple").replace("一次", "single"))
            text = f"{head}\n{kind[1]}｜{cells[1]}\n{kind[0]}｜{cells[0]}\nL字签证｜{cells[1]}"
            yield Case(f"{field}-{script}-table-row", "签证种类一览", text, False, field, value, cells[1])
            bare = f"{head}\nZ｜{cells[1]}\nK｜{cells[0]}\nL｜{cells[1]}"  # the type column gives only the code
            yield Case(f"{field}-{script}-table-row-bare-code", "签证种类一览", bare, False, field, value, cells[1])


CASES = list(cases())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_phrasing(case: Case) -> None:
    text = "\n".join(normalize_line(line) for line in case.text.splitlines())
    facts = {f.field: f for f in extract(case.title, text, (), pdf=case.pdf)}
    assert case.field in facts, f"nothing found in:\n{text}"
    assert facts[case.field].value == case.value, (facts[case.field], text)


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 300, len(CASES)


NON_FACTS = [
    "与现有的12类普通签证相比，K字签证在入境次数、有效期、停留期方面为持证人提供更多便利。",
    "與現有的12類普通簽證相比，K字簽證在入境次數、有效期、停留期方面為持證人提供更多便利。",
    "Compared with the other 12 ordinary visa types, the K visa offers more convenience in terms of the number of entries, validity period and duration of stay.",
    "K字签证持有人需要延长停留期限的，应当在停留期限届满7日前申请。",
    "申请K字签证须提交有效期6个月以上的护照。",
    "Z字签证停留期为30日。\n另有K字签证。",
]


@pytest.mark.parametrize("text", NON_FACTS)
def test_statements_without_a_value_are_not_facts(text: str) -> None:
    facts = {f.field: f.value for f in extract("签证说明", normalize_line(text) if "\n" not in text else text)}
    assert not {"stay_duration", "validity", "entries"} & set(facts), facts


def _typed_ungated(text: str) -> list[tuple[int, str]]:
    from crawler.facts.scope import _K_WORDS, _VISA

    found = {m.start(): m.group(1) or m.group(2) or "TRANSIT" for m in _VISA.finditer(text)}
    for m in _K_WORDS.finditer(text):
        if not any(kind == "K" and abs(m.start() - at) <= 2 for at, kind in found.items()):
            found[m.start()] = "K"
    return sorted(found.items())


def test_the_type_gate_never_changes_which_types_a_text_names() -> None:
    """`_typed` skips its patterns when a text has none of their literal words: over every line of the
    phrasing matrix, in every script, it must name exactly what the patterns alone name."""
    from crawler.facts.scope import _typed
    from crawler.facts.values import fold

    lines = {line for case in CASES for text in (case.text, case.title) for line in text.splitlines()} | set(NON_FACTS)
    checked = 0
    for line in lines:
        for variant in (line, fold(line), line.upper(), line.lower()):
            assert _typed(variant) == _typed_ungated(variant), variant
            checked += bool(_typed_ungated(variant))
    assert checked > 500  # the matrix names types in many shapes
