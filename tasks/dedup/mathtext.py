"""The numbers a math prompt states, however they are written, for the semantic dedup guard.

Two wordings of one problem state the same quantities, but not always in the same form: "12" or
"twelve", "50%" or "half", "2^5" or "2 to the fifth power", "twice" or "two times", "64 m²" or
"64 square meters". A text's numbers are split in two kinds:

- *stated* numbers: digits ("12", "3.5"; "50%" states 50);
- *worded* numbers: cardinals spelled out ("twelve", "twenty-five"), fractions ("half", "one
  quarter", "three fifths"), ordinals of a power or root ("the fifth power"), multipliers
  ("twice", "double", "triple") and powers ("squared", "cubed"). Each has its readings: "half"
  reads 2, 0.5 and 50 (percent), "quarter" 4, 0.25 and 25, "twelve" 12.

Two texts agree on their numbers (`numbers_agree`) when, after cancelling equal stated numbers,
every stated number left on one side is a reading of a worded number left on the other, and not
both sides keep worded numbers of their own ("3 cubed" / "3 squared": 3 against 2). So a changed
number never agrees ("3 eggs" / "4 eggs", "two dice" / "three dice", "5" / "four"), and a number
written in words agrees with its digits. A count left on one side blocks when the other text has one
of the counted thing ("two blue marbles" / "a blue marble"); a fraction in words also reads as its
value and its percentage ("three quarters": 0.75 and 75, so "75%" agrees). A duration is stated in seconds, whatever its unit ("2 weeks" and
"14 days" are '1209600s', "in a week" is '604800s'), so a paraphrase may choose another unit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from tasks.common.text import normalize_text

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
CARDINALS = {w: i for i, w in enumerate(_UNITS)} | _TENS
# Fractions: "half" is 1/2, "quarter" 1/4, "third" .. "tenth" 1/k (as a fraction, or the k-th power).
_FRACTIONS = {"half": 2, "halves": 2, "quarter": 4, "quarters": 4, "third": 3, "thirds": 3, "fourth": 4, "fourths": 4,
              "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
              "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10}
_MULTIPLIERS = {"twice": 2, "double": 2, "doubled": 2, "doubles": 2, "triple": 3, "tripled": 3, "thrice": 3,
                "squared": 2, "cubed": 3, "cube": 3, "cubic": 3, "dozen": 12, "dozens": 12}
_WORD = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|%")
_WORD_HYPHEN = re.compile(r"(\d+(?:\.\d+)?|[^\W\d_]+|%)(-(?=[^\W\d_]))?")  # (word, '-' when it opens a compound)
# Time units in seconds: a number of them is stated as one duration ("2 weeks" and "14 days" are '1209600s').
_TIME_UNITS = {"second": 1, "seconds": 1, "sec": 1, "secs": 1, "minute": 60, "minutes": 60, "min": 60, "mins": 60,
               "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "day": 86400, "days": 86400, "week": 604800,
               "weeks": 604800}
_DURATION_AFTER = frozenset({"in", "for", "within", "after"})  # "in a week" states one week; "a day" alone is a rate
# Unit symbols of one letter: after a number and away from operators ("5 m long", "2 h"), a unit, not an unknown.
UNIT_LETTERS = {"m": "meter", "g": "gram", "l": "liter", "s": "second", "h": "hour"}


def prepare(text: str | None) -> str:
    """Symbols that NFKC would turn into digits or that name units, as words; then normalised and
    case-folded.

    >>> prepare("A square of 64 m² has sides of 5²; 60° and 3 km/h.")
    'a square of 64 square m has sides of 5^2; 60 degrees and 3 km per hour.'
    >>> prepare("The x-intercept of y = x-3.")
    'the xintercept of y = x-3.'
    """
    text = text or ""
    text = re.sub(r"(?<![\w-])([A-Za-z])-([A-Za-z]{3,})\b", r"\1\2", text)  # x-intercept, y-axis: one word, no unknown
    text = re.sub(r"\b([^\W\d_]{1,3})²", r"square \1", text)  # m², cm²: a unit of area
    text = re.sub(r"\b([^\W\d_]{1,3})³", r"cubic \1", text)
    text = text.replace("²", "^2").replace("³", "^3")  # 5²: a power
    text = re.sub(r"°\s*([cCfF])\b", lambda m: " celsius" if m.group(1) in "cC" else " fahrenheit", text)
    text = text.replace("°", " degrees")
    text = re.sub(r"\b(km|m|mi|miles?)\s*/\s*(h|hr|hour)\b", r"\1 per hour", text)
    return normalize_text(text, casefold=True)


def _canon(number: str) -> str:
    """'3.50' -> '3.5', '12.0' -> '12'."""
    return number.rstrip("0").rstrip(".") if "." in number else number


def _fraction_readings(k: int) -> frozenset[str]:
    return frozenset({str(k), _canon(f"{1 / k:.6f}"), _canon(f"{100 / k:.6f}")})


def duration(words: Sequence[str], i: int) -> str | None:
    """The duration that starts at words[i], in seconds ('1209600s'), or None: a number or a cardinal before a time
    unit ("2 weeks", "two weeks"), or "a"/"an" before one after "in", "for", "within", "after" ("in a week").

    >>> duration(["in", "2", "weeks"], 1), duration(["in", "a", "week"], 1), duration(["20", "pages", "a", "day"], 2)
    ('1209600s', '604800s', None)
    """
    w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
    seconds = _TIME_UNITS.get(nxt)
    if not seconds or not (w[0].isdigit() or w in CARDINALS or (
            w in ("a", "an") and i and words[i - 1] in _DURATION_AFTER and words[i + 2:i + 3] != ["of"])):
        return None  # "a week of 7 days" states one duration, not two
    return _canon(f"{float(w if w[0].isdigit() else CARDINALS.get(w, 1)) * seconds:.6f}") + "s"


def number_signature(text: str | None) -> tuple[tuple[str, ...], tuple[frozenset[str], ...], frozenset[str]]:
    """(stated numbers sorted, worded numbers as reading sets sorted, the words a text counts as one) of a text.

    A cardinal that counts ("two blue marbles") also reads '#2:blue:marbles' (the two words after it); the words
    after "a", "an" or "one" ("a blue marble": 'blue', 'marble') are what the text has one of.

    >>> stated, worded, one = number_signature("Twelve workers build a wall in 6 days.")  # 6 days: in seconds
    >>> stated, [sorted(readings) for readings in worded], sorted(one)
    (('518400s',), [['#12:workers:build', '12']], ['in', 'wall'])
    >>> number_signature("What is 2 to the fifth power minus 3 squared?")[0]
    ('2', '3')
    >>> sorted(number_signature("What is half of 90?")[1][0])
    ['0.5', '2', '50']
    """
    found = _WORD_HYPHEN.findall(prepare(text))
    words = [w for w, _ in found]
    stated: list[str] = []
    worded: list[frozenset[str]] = []
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        seconds = duration(words, i)
        if seconds:
            stated.append(seconds)
        elif w[0].isdigit():
            stated.append(_canon(w))
        elif w in _TENS and nxt in CARDINALS and 0 < CARDINALS[nxt] < 10:  # twenty-five, twenty five
            n = _TENS[w] + CARDINALS[nxt]
            worded.append(frozenset({str(n)} if found[i + 1][1] else {str(n), _count(n, words, i + 1)}))
            i += 1
        elif w in CARDINALS and nxt in _FRACTIONS:
            k, n = _FRACTIONS[nxt], CARDINALS[w]  # "one quarter", "three fifths": the numerator and the fraction
            if n != 1:  # "three quarters" is also 0.75 and 75 percent
                worded.append(frozenset({str(n), _canon(f"{n / k:.6f}"), _canon(f"{100 * n / k:.6f}")}))
            worded.append(_fraction_readings(k))
            i += 1
        elif w in CARDINALS and w != "one":  # "one" is also a pronoun ("which one")
            n = CARDINALS[w]  # a count ("two marbles"), unless it qualifies a word ("a six-sided die")
            worded.append(frozenset({str(n)} if found[i][1] else {str(n), _count(n, words, i)}))
        elif w in ("half", "halves", "quarter", "quarters"):
            worded.append(_fraction_readings(_FRACTIONS[w]))
        elif w in _FRACTIONS and nxt in ("power", "root"):  # the fifth power, the third root
            worded.append(frozenset({str(_FRACTIONS[w])}))
        elif w in _FRACTIONS and i and words[i - 1] == "a":  # a third of 27
            worded.append(_fraction_readings(_FRACTIONS[w]))
        elif w in _MULTIPLIERS:
            worded.append(frozenset({str(_MULTIPLIERS[w])}))
        i += 1
    one = frozenset(words[k] for k in range(1, len(words)) for j in (1, 2)
                    if k >= j and words[k - j] in ("a", "an", "one") and words[k][0].isalpha())
    return tuple(sorted(stated)), tuple(sorted(worded, key=sorted)), one


def _count(n: int, words: Sequence[str], i: int) -> str:
    """The count reading of a cardinal at words[i]: '#n' and the two words after it."""
    return ":".join([f"#{n}", *words[i + 1:i + 3]])


def _counts_one(readings: frozenset[str], one: frozenset[str]) -> bool:
    """Whether a count ("two blue marbles") is of a thing the other text has one of ("a blue marble")."""
    counted = [w for r in readings if r.startswith("#") for w in r.split(":")[1:]]
    return any(w in (s + "s", s + "es") or (w.endswith("ies") and w[:-3] + "y" == s) for w in counted for s in one)


def numbers_agree(a: tuple, b: tuple) -> bool:
    """Whether two `number_signature`s may state the same numbers (see the module docstring).

    >>> numbers_agree(number_signature("Half of 64 is what number?"), number_signature("What is 64 divided by 2?"))
    True
    >>> numbers_agree(number_signature("Find the value of 3 cubed."), number_signature("Find the value of 3 squared."))
    False
    >>> numbers_agree(number_signature("Add 3 to 11."), number_signature("Add 4 to 11."))
    False
    >>> numbers_agree(number_signature("Pick a blue marble."), number_signature("Pick two blue marbles."))
    False
    >>> numbers_agree(number_signature("Find the mean of 4, 8 and 12."), number_signature("Average the three numbers 12, 4, 8."))
    True
    """
    (stated_a, worded_a, one_a), (stated_b, worded_b, one_b) = a, b
    if stated_a == stated_b and Counter(worded_a) == Counter(worded_b):
        return True
    left_a, left_b = Counter(stated_a) - Counter(stated_b), Counter(stated_b) - Counter(stated_a)
    worded_a, worded_b = list(worded_a), list(worded_b)
    for left, worded in ((left_a, worded_b), (left_b, worded_a)):
        for number in left.elements():  # a stated number must be a reading of a worded one on the other side
            k = next((k for k, readings in enumerate(worded) if number in readings), None)
            if k is None:
                return False
            worded.pop(k)
    for readings in list(worded_a):  # worded numbers with a common reading cancel
        k = next((k for k, other in enumerate(worded_b) if readings & other), None)
        if k is not None:
            worded_b.pop(k)
            worded_a.remove(readings)
    if any(_counts_one(r, one_b) for r in worded_a) or any(_counts_one(r, one_a) for r in worded_b):
        return False  # a count on one side of what the other has one of: "two blue marbles" / "a blue marble"
    return not (worded_a and worded_b)


_ORDINALS = {"second": 2, **{w: k for w, k in _FRACTIONS.items() if not w.endswith("s") and w not in ("half", "quarter")}}
_OPERAND = r"(\d+(?:\.\d+)?|[a-z]\b)"
_WORDED_MATH = [
    (re.compile(_OPERAND + r" squared\b"), lambda m: f"{m[1]}^2"),
    (re.compile(_OPERAND + r" cubed\b"), lambda m: f"{m[1]}^3"),
    (re.compile(_OPERAND + r" (?:raised )?to the power of " + _OPERAND), lambda m: f"{m[1]}^{m[2]}"),
    (re.compile(_OPERAND + r" (?:raised )?to the (?:(\d+)(?:st|nd|rd|th)|([a-z]+)) power\b"),
     lambda m: f"{m[1]}^{m[2]}" if m[2] else (f"{m[1]}^{_ORDINALS[m[3]]}" if m[3] in _ORDINALS else m[0])),
    (re.compile(r"\b(?:(?:one|a) )?(half|third|quarter|fourth|fifth|sixth|seventh|eighth|ninth|tenth) of " + _OPERAND),
     lambda m: f"{m[2]}/{_FRACTIONS[m[1]]}"),
    (re.compile(r"\b(two|three|four|five|six|seven|eight|nine) (thirds|quarters|fourths|fifths|sixths|sevenths|eighths|ninths|tenths) of "
                + _OPERAND), lambda m: f"{CARDINALS[m[1]]}*{m[3]}/{_FRACTIONS[m[2]]}"),
    # a fraction in words that is an operand itself: "27 divided by one third"
    (re.compile(r"\b(?:one|a) (half|third|quarter|fourth|fifth|sixth|seventh|eighth|ninth|tenth)\b(?! of)"),
     lambda m: f"(1/{_FRACTIONS[m[1]]})"),
    # an operation worded as an instruction on two numbers: "divide 27 by 3", "subtract 5 from 12"
    (re.compile(r"\b(divide|multiply) (\d+(?:\.\d+)?) by (\d+(?:\.\d+)?)\b"),
     lambda m: f"{m[2]}{'/' if m[1] == 'divide' else '*'}{m[3]}"),
    (re.compile(r"\b(add|subtract) (\d+(?:\.\d+)?) (to|from) (\d+(?:\.\d+)?)\b"),
     lambda m: f"{m[4]}{'+' if m[1] == 'add' else '-'}{m[2]}"),
]


def worded_math(text: str | None) -> str:
    """`prepare`d text with powers and fractions in words written as formulas, for the formula guard.

    >>> worded_math("What is 2 to the fifth power minus 3 squared?")
    'what is 2^5 minus 3^2?'
    >>> worded_math("If one quarter of x plus 2 equals 7, what is x? Half of 64; two thirds of 9; 3 to the power of 4.")
    'if x/4 plus 2 equals 7, what is x? 64/2; 2*9/3; 3^4.'
    """
    out = prepare(text)
    for pattern, write in _WORDED_MATH:
        out = pattern.sub(write, out)
    return out
