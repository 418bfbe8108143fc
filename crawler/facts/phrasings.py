"""The phrasings officials use, one extractor per field: (K-attributed text, its sentence) → value.

Every pattern runs on folded text (traditional → simplified, see `values.fold`); full-width
digits and letters are already ASCII after normalization. A new phrasing is one alternative in one
pattern here, and one line in the phrasing matrix (tests/test_phrasings.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from crawler.facts.values import EN_NUM, NUM, UNIT, duration, english_date, number

_EN_UNIT = r"days?|months?|years?|weeks?"
_UPTO_ZH = r"(?:不超过|不得超过|最长不超过|最长为|最长|最多|可达|达|累计不超过|为期|共)?"
_UPTO_EN = r"(?:up to|no more than|not more than|not exceeding|not to exceed|(?:shall|must|may|does|cannot|can) not exceed|a maximum of|maximum of|of up to|at most|for up to|for)?"
_NOT_THIS = re.compile(r"护照|passport|居留许可|居留证件|residence permit", re.I)

_STAY_ZH = re.compile(rf"(?:每次)?(?:入境后?)?(?:可在华)?停留(?:期限?|时间|期间)?\s*(?:为|是|：|:)?\s*(?:自?入境之日起)?"
                      rf"\s*{_UPTO_ZH}\s*为?\s*({NUM})\s*({UNIT})(?!前|内|以内|之内)")
_STAY_EN = re.compile(
    rf"(?:duration of (?:each |every )?stay|each stay|length of (?:each )?stay|maximum stay|stays?(?: of| for)?|may stay(?: in China)?)"
    rf"(?:\s*(?:is|:|：|of|per entry|per visit|each time|in China))*\s*{_UPTO_EN}\s*({EN_NUM})\s*({_EN_UNIT})"
    rf"|({EN_NUM})\s*({_EN_UNIT})\s+(?:per|for each|each) (?:stay|entry)", re.I)
_VALIDITY_ZH = re.compile(rf"(?<!剩余)(?:签证|签发)?有效期(?:限)?\s*(?:为|是|：|:)?\s*{_UPTO_ZH}\s*为?\s*({NUM})\s*({UNIT})"
                          rf"|({NUM})\s*(年|个月)\s*(?:多次|一次|两次|单次)?(?:入境|往返)?有效")
_VALIDITY_EN = re.compile(
    rf"(?<!remaining )(?:period of validity|validity period|validity|valid for|valid)\s*(?:\([^)]*\))?\s*(?:is|:|：|of|for)?\s*{_UPTO_EN}\s*({EN_NUM})\s*({_EN_UNIT})"
    rf"|({EN_NUM})[- ](years?|months?)[- ](?:(?:multiple|single|double)[- ]entry )?visa", re.I)
_ENTRIES = (
    ("multiple", re.compile(r"多次入境|多次入出境|多次出入境|可多次|多次往返|多次有效|入境次数\s*(?:为|是)?\s*[:：]?\s*多次"
                            r"|multiple[- ]entr|entries\s*(?:is|are)?\s*[:：]?\s*multiple|multiple times", re.I)),
    ("double", re.compile(r"两次入境|二次入境|入境次数\s*(?:为|是)?\s*[:：]?\s*[两二]次|double[- ]entr|two entries|entries\s*[:：]?\s*(?:double|two|2)\b", re.I)),
    ("single", re.compile(r"一次入境|单次入境|入境次数\s*(?:为|是)?\s*[:：]?\s*[一单]次|single[- ]entr|one entry|entries\s*[:：]?\s*(?:single|one|1)\b", re.I)),
)
_AGE = rf"(?:{NUM}|\d+)"
_AGE_RANGE = re.compile(
    rf"({_AGE})\s*(?:周岁|岁)?\s*(?:至|到|-|—|－|~|～)\s*({_AGE})\s*(?:周岁|岁)"
    rf"|aged (?:between )?(\d+) (?:and|to|-) (\d+)|between (?:the ages of )?(\d+) and (\d+)(?: years)?|(\d+)\s*(?:-|to)\s*(\d+) years? (?:old|of age)", re.I)
_AGE_MAX = re.compile(
    rf"(?:不超过|不满|未满|不得超过|不超过年龄)\s*({_AGE})\s*(?:周岁|岁)|({_AGE})\s*(?:周岁|岁)\s*(?:以下|以内|及以下)"
    rf"|(?:under|below|not older than|no older than|not over|younger than)(?: the age of)? (\d+)|(\d+) (?:years? (?:old|of age) )?or (?:younger|under|below)", re.I)
_AGE_MIN = re.compile(
    rf"年满\s*({_AGE})\s*(?:周岁|岁)|({_AGE})\s*(?:周岁|岁)\s*(?:以上|及以上)"
    rf"|(?<!no )(?<!not )(?:at least|over|older than) (\d+)(?: years)?|(\d+) (?:years? (?:old )?)?or (?:older|above)", re.I)
_EDUCATION = (
    ("doctorate", re.compile(r"博士(?!后)(?:学位)?|doctoral|doctorate|ph\.?d", re.I)),
    ("master or above", re.compile(r"硕士(?:学位)?(?:及|或)以上|master'?s degree or (?:above|higher)|at least a master", re.I)),
    ("bachelor or above", re.compile(r"学士(?:学位)?(?:及|或)以上|本科(?:学历)?及以上|bachelor'?s degree or (?:above|higher)|at least a bachelor", re.I)),
)
_EXTENSION = re.compile(r"延期|延长停留|换发|补发|续签|extension of stay|extend (?:the|their|your|his|her) stay|renew|extension", re.I)
_FAMILY = re.compile(r"随行|配偶|子女|家属|family members?|spouse|dependants?|dependents?|accompanying", re.I)
_FEE = re.compile(r"(?:签证费|收费标准|收费|费用|fees?\b).{0,30}?\d|\d.{0,10}?(?:元|美元|USD|RMB|CNY|AUD|EUR|GBP)", re.I)
_DATE_ZH = re.compile(rf"({NUM})\s*年\s*({NUM})\s*月\s*({NUM})\s*日\s*起?\s*(?:施行|实施|生效|执行|正式实施|起施行)")
_DATE_EN = re.compile(r"(?:takes?|took|take|come|comes|came|enters?|entered) (?:effect|into force) (?:on|from|as of) (\w+ \d{1,2},? \d{4}|\d{1,2} \w+ \d{4})"
                      r"|(?:effective|with effect)(?: (?:from|on|as of))? (\w+ \d{1,2},? \d{4}|\d{1,2} \w+ \d{4})", re.I)
_SPONSOR_NOT = re.compile(r"不要求(?:国内|境内|在华)?有?(?:聘用|邀请|雇主|用人)|无需(?:国内|境内)?(?:聘用|邀请|雇主|用人)(?:单位)?|不需要(?:国内|境内)?(?:聘用|邀请)"
                          r"|(?:do|does|will) not (?:require|need) (?:a |an )?(?:domestic |Chinese )?(?:employer|inviting|invitation|sponsor)"
                          r"|no (?:domestic |Chinese )?(?:employer|inviting entity|invitation|sponsor)[^.]{0,40}(?:is )?(?:required|needed)"
                          r"|without (?:a |an )?(?:job offer|employer|invitation|sponsor)", re.I)
_SPONSOR_YES = re.compile(r"(?:须|需|应当?)(?:提供|提交|持有)?(?:国内|境内|在华)?(?:聘用|邀请|用人)单位(?:出具)?的?(?:邀请函|证明|担保)"
                          r"|(?:require|requires|must (?:have|provide|submit)) (?:a |an )?(?:letter of )?(?:invitation|sponsorship)(?: letter)?"
                          r" from (?:an? )?(?:employer|entity|organi[sz]ation)", re.I)
ACTIVITIES = (
    ("education", r"教育|education"), ("science and technology", r"科技|science and technology|scientific and technological"),
    ("culture", r"文化|cultur"), ("exchange", r"交流|exchange"), ("entrepreneurship", r"创业|entrepreneur|start(?:ing)? a business|start-?ups?"),
    ("business", r"商务|商业|business"), ("research", r"科研|research"), ("academic", r"学术|academic"),
)
_ACTIVITY_CONTEXT = re.compile(r"活动|activities", re.I)
_RP_CONTEXT = re.compile(r"居留(?:许可|证件)|residence permit", re.I)
_RP_DEADLINE = re.compile(rf"(?:入境(?:之日起|后)|自入境之日起)\s*({NUM})\s*(日|天)\s*(?:内|以内)|within ({EN_NUM}) days (?:of|after) (?:entry|arrival|entering)", re.I)
_RP_PROCESSING = re.compile(rf"(?:受理之日起|受理后)?\s*({NUM})\s*个?工作日\s*(?:内|以内)(?:作出|办结|审批|决定)?|(?:within|in) ({EN_NUM}) (?:working|business) days", re.I)


def _stay(text: str, sentence: str) -> str | None:
    if _NOT_THIS.search(text):
        return None
    if m := _STAY_ZH.search(text):
        return duration(*m.groups())
    if m := _STAY_EN.search(text):
        groups = [g for g in m.groups() if g]
        return duration(groups[0], groups[1])
    return None


def _validity(text: str, sentence: str) -> str | None:
    if _NOT_THIS.search(text):
        return None
    m = _VALIDITY_ZH.search(text) or _VALIDITY_EN.search(text)
    return duration(*[g for g in m.groups() if g][:2]) if m else None


def _entries(text: str, sentence: str) -> str | None:
    return next((value for value, pattern in _ENTRIES if pattern.search(text)), None)


def _age(text: str, sentence: str) -> str | None:
    if not re.search(r"年龄|申请人|\bage|周岁|岁|aged|years old|applicant", sentence, re.I) or _FAMILY.search(text) or re.search(r"child", text, re.I):
        return None
    if m := _AGE_RANGE.search(text):
        low, high = [g for g in m.groups() if g][:2]
        return f"{number(low)}-{number(high)}"
    high, low = _AGE_MAX.search(text), _AGE_MIN.search(text)
    if high or low:
        lo = number(next(g for g in low.groups() if g)) if low else ""
        hi = number(next(g for g in high.groups() if g)) if high else ""
        return f"{lo}-{hi}"
    return None


def _education(text: str, sentence: str) -> str | None:
    return next((value for value, pattern in _EDUCATION if pattern.search(text)), None)


def _sentence_if(pattern: re.Pattern[str], unless: re.Pattern[str] | None = None) -> Callable[[str, str], str | None]:
    def extract(text: str, sentence: str) -> str | None:
        return sentence if pattern.search(text) and not (unless and unless.search(text)) else None
    return extract


def _effective_date(text: str, sentence: str) -> str | None:
    if m := _DATE_ZH.search(text):
        year, month, day = (number(g) for g in m.groups())
        return f"{year:04d}-{month:02d}-{day:02d}"
    if m := _DATE_EN.search(text):
        return english_date(next(g for g in m.groups() if g))
    return None


def _sponsor(text: str, sentence: str) -> str | None:
    if _SPONSOR_NOT.search(text):
        return "not required"
    return "required" if _SPONSOR_YES.search(text) else None


def _activities(text: str, sentence: str) -> str | None:
    if not _ACTIVITY_CONTEXT.search(text):
        return None
    found = [name for name, pattern in ACTIVITIES if re.search(pattern, text, re.I)]
    return "; ".join(sorted(found)) if len(found) >= 2 else None


def _residence_permit(text: str, sentence: str) -> str | None:
    if not _RP_CONTEXT.search(text):
        return None
    parts = []
    if m := _RP_DEADLINE.search(text):
        parts.append(f"deadline=P{number(next(g for g in m.groups() if g and g not in ('日', '天')))}D")
    if m := _RP_PROCESSING.search(text):
        parts.append(f"processing=P{number(next(g for g in m.groups() if g))}D")
    if parts:
        return "; ".join(parts)
    converts = re.search(r"入境后|入境之日|after (?:entry|arrival|entering)", text, re.I) and re.search(r"申请|办理|apply", text, re.I)
    return sentence if converts and not _FAMILY.search(text) else None


SENTENCE_FIELDS: dict[str, Callable[[str, str], str | None]] = {
    "stay_duration": _stay,
    "validity": _validity,
    "entries": _entries,
    "age_limit": _age,
    "education": _education,
    "extension": _sentence_if(_EXTENSION),
    "family": _sentence_if(_FAMILY),
    "fee": _sentence_if(_FEE, unless=_NOT_THIS),
    "effective_date": _effective_date,
    "sponsor": _sponsor,
    "activities": _activities,
    "residence_permit": _residence_permit,
}
