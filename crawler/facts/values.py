"""Canonical values: numbers (digits, Chinese and English numerals), ISO durations, dates, and the
traditional→simplified folding that lets one set of phrasings read both scripts.

Folding maps single characters one to one, so positions in the folded text are positions in the
original and evidence is always cut from what the page said.
"""

from __future__ import annotations

import re

NUM = r"[0-9]+|[零〇一二两三四五六七八九十百千]+|半"
UNIT = r"个月|月|日|天|年|周|days?|months?|years?|weeks?"
ISO_UNIT = {"个月": "M", "月": "M", "日": "D", "天": "D", "年": "Y", "周": "W", "day": "D", "month": "M", "year": "Y", "week": "W"}
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "fifteen": 15, "eighteen": 18, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_TENS = r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
EN_NUM = (rf"\d+|(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|eighteen|{_TENS})(?:-five)?"
          rf"(?:[- ](?:hundred(?:\s+and)?(?:\s+(?:{_TENS}))?))?")

# Traditional characters that appear in visa rules, folded to simplified (one character each).
_TRADITIONAL = str.maketrans(
    "簽證種類數兩單隨屬須護辦將為應當該並長換補發續則條規實於從動經濟華國學歷碩機構創務術與門關屆滿內無"
    "個歲週費請錄驗處決讀業親偶許達過滯間請認識聯絡體職稱齡歸簡領館區灣網頁點擊閱覽標準額幣圓說憑際",
    "签证种类数两单随属须护办将为应当该并长换补发续则条规实于从动经济华国学历硕机构创务术与门关届满内无"
    "个岁周费请录验处决读业亲偶许达过滞间请认识联络体职称龄归简领馆区湾网页点击阅览标准额币圆说凭际",
)


def fold(text: str) -> str:
    """Traditional → simplified, character for character (lengths are kept)."""
    return text.translate(_TRADITIONAL)


def number(text: str) -> int:
    """'180', '一百八十', '两', 'five', 'one hundred and eighty' → int."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if text[:1].isascii():
        return _english(text)
    import cn2an  # imported here: only a Chinese numeral needs it, and it takes a tenth of a second to import

    return int(cn2an.cn2an(text.replace("两", "二").replace("〇", "零"), "smart"))


def _english(text: str) -> int:
    total = 0
    for word in re.split(r"[\s-]+", text):
        if word in ("", "and"):
            continue
        if word == "hundred":
            total = max(total, 1) * 100
        elif word in _WORDS:
            total += _WORDS[word]
        else:
            raise ValueError(f"not a number: {text!r}")
    return total


def duration(num: str, unit: str) -> str:
    """ISO-8601 duration: ('一百八十', '日') → 'P180D'; ('半', '年') → 'P6M'; ('five', 'years') → 'P5Y'."""
    unit = unit.lower().rstrip("s") if unit.isascii() else unit
    if num == "半":
        return {"Y": "P6M", "M": "P15D", "D": "PT12H"}.get(ISO_UNIT[unit], "P0D")
    return f"P{number(num)}{ISO_UNIT[unit]}"


def english_date(text: str) -> str | None:
    """'October 1, 2025' / '1 October 2025' → '2025-10-01'."""
    parts = text.replace(",", " ").split()
    words = [p for p in parts if not p.isdigit()]
    digits = [int(p) for p in parts if p.isdigit()]
    month = MONTHS.get(words[0][:3].lower()) if words else None
    if not month or len(digits) != 2:
        return None
    day, year = sorted(digits)
    return f"{year:04d}-{month:02d}-{day:02d}"
