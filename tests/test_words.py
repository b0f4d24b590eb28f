"""Words in every language: Japanese and Chinese segmented, Korean particles, readings.

What a rule writer sees: a term in any script matches whole words of the text,
and NEAR counts words, whatever the script.
"""

from __future__ import annotations

import pytest

from monitor.match.query import Document, compile_query
from monitor.text.normalise import tokenize
from monitor.text.segment import words


def matched(query: str, text: str, title: str = "") -> list[str] | None:
    result = compile_query(query).match(Document.build(title=title, text=text))
    return None if result is None else result.words


def surfaces(text: str, japanese: bool | None = None) -> list[str]:
    return [text[w.start:w.end] for w in words(text, tokenize(text), japanese=japanese)
            if not w.aside]


@pytest.mark.parametrize("query, text, expected", [
    # Japanese: a term matches where the text's words spell it, start to end.
    ("日朝首脳会談", "政府は日朝首脳会談の早期実現を目指す", ["日朝首脳会談"]),
    ("首脳会談", "政府は日朝首脳会談の早期実現を目指す", ["首脳会談"]),
    ("会談", "政府は日朝首脳会談の早期実現を目指す", ["会談"]),
    ("拉致", "拉致被害者の家族会が会見した", ["拉致"]),
    ("金", "金曜日に発表した", None),                # not the middle of a word
    ("首脳会*", "日朝首脳会談を", ["首脳会"]),            # a * lets a CJK term end inside one
    ("金正恩", "金正恩氏と会う", ["金正恩"]),
    ("金正恩", "金正恩総書記との会談", ["金正恩"]),
    ("総書記", "金正恩総書記との会談", ["総書記"]),
    # Quotation brackets and punctuation are not words and break nothing.
    ("首脳会談", "首相は「首脳会談」に意欲を示した", ["首脳会談"]),
    ('"首脳会談 実現"', "『首脳会談』実現に向け", ["首脳会談』実現"]),
    # A reading in parentheses after a name is read through, and is findable itself.
    ("金正恩総書記", "北朝鮮の金正恩（キムジョンウン）総書記は",
     ["金正恩（キムジョンウン）総書記"]),
    ("キムジョンウン", "北朝鮮の金正恩（キムジョンウン）総書記は", ["キムジョンウン"]),
    ("金正恩総書記", "金正恩(キム・ジョンウン)総書記は", ["金正恩(キム・ジョンウン)総書記"]),
    ("金与正", "金与正（キムヨジョン）党副部長が談話", ["金与正"]),
    # Width is folded: full-width Latin, half-width katakana.
    ("Kishida", "ＫＩＳＨＩＤＡ首相", ["ＫＩＳＨＩＤＡ"]),
    ("ミサイル", "ﾐｻｲﾙを発射", ["ﾐｻｲﾙ"]),
    # Korean: a query word matches a word beginning with it (particles, endings).
    ("김정은", "김정은과 회담했다", ["김정은과"]),
    ("정상회담", "북일 정상회담을 추진한다", ["정상회담을"]),
    ('"북일 정상회담"', "북일 정상회담이 열릴지", ["북일 정상회담이"]),
    ("회담", "북일 정상회담을 추진한다", None),
    ('"북 일 정상회담"', "북·일 정상회담을", ["북·일 정상회담을"]),
    ('"북 일 정상회담"', "북한의 일본인 정상회담을", None),   # one syllable matches whole
    ("납치", "일본인 납치 피해자 가족", ["납치"]),
    ("NHK", "NHK는 보도했다", ["NHK"]),
    ("2002", "2002년 방북", ["2002"]),
    # Chinese (Han with no kana) is segmented by a Chinese segmenter.
    ("首相", "日本首相岸田文雄与朝鲜领导人金正恩举行首脑会谈", ["首相"]),
    ("金正恩", "日本首相岸田文雄与朝鲜领导人金正恩举行首脑会谈", ["金正恩"]),
])
def test_terms_in_every_script(query, text, expected):
    assert matched(query, text) == expected


@pytest.mark.parametrize("query, text, expected", [
    # NEAR counts words in Japanese: 首相 / は / 金正 / 恩 / 総 / 書記 / と / の / 会談
    ("首相 NEAR/2 金正恩", "岸田首相は金正恩総書記との会談に意欲", True),
    ("首相 NEAR/1 金正恩", "岸田首相は金正恩総書記との会談に意欲", False),
    ("金正恩 NEAR/5 会談", "岸田首相は金正恩総書記との会談に意欲", True),
    ("金正恩 NEAR/4 会談", "岸田首相は金正恩総書記との会談に意欲", False),
    # The reading is not counted between the name and what follows.
    ("金正恩 NEAR/2 書記", "金正恩（キムジョンウン）総書記", True),
    # Korean words are counted as written, particles included.
    ("총리 NEAR/2 김정은", "일본 총리가 김정은 위원장과 만나", True),
    ("총리 NEAR/2 정상회담", "총리가 김정은 위원장과 정상회담을", False),
    ("총리 NEAR/3 정상회담", "총리가 김정은 위원장과 정상회담을", True),
])
def test_near_counts_words_in_every_script(query, text, expected):
    assert (matched(query, text) is not None) is expected


def test_japanese_is_cut_into_short_words():
    assert surfaces("日朝首脳会談", japanese=True) == ["日朝", "首脳", "会談"]
    assert surfaces("拉致被害者の家族会") == ["拉致", "被害", "者", "の", "家族", "会"]


def test_a_reading_is_aside_only_after_a_han_name():
    text = "金正恩（キムジョンウン）氏と（カタカナ）の話"
    aside = "".join(text[w.start:w.end] for w in words(text, tokenize(text)) if w.aside)
    assert aside == "キムジョンウン"      # （カタカナ） follows の, not a name


def test_english_text_is_unchanged_by_segmentation():
    text = "Kishida, Kim Jong-un and the summit"
    assert surfaces(text) == ["Kishida", "Kim", "Jong", "un", "and", "the", "summit"]


def test_a_japanese_phrase_in_the_title_and_a_korean_one_in_the_text():
    doc = Document.build(title="岸田首相、日朝首脳会談に意欲",
                         text="기시다 총리는 북일 정상회담을 원한다")
    result = compile_query("日朝首脳会談 AND 정상회담").match(doc)
    assert result is not None
    assert result.words == ["日朝首脳会談", "정상회담을"]
    assert [h.field for h in result.hits] == ["title", "text"]


@pytest.mark.parametrize("query, text, expected", [
    # UniDic glues a name's last character to the next word (正副, 正党): a term of
    # three characters or more may end inside a word; shorter ones may not.
    ("金与正", "北朝鮮の金与正副部長が談話", ["金与正"]),
    ("金与正", "金与正党副部長", ["金与正"]),
    ("金", "金曜日に", None),
    ("金正恩", "金与正氏", None),
])
def test_a_long_term_may_end_inside_a_word(query, text, expected):
    assert matched(query, text) == expected


def test_thai_stays_a_run_and_a_huge_japanese_run_is_segmented():
    thai = "นายกรัฐมนตรีญี่ปุ่น"
    assert surfaces(thai) == [thai]
    # 240,000 characters of Japanese without punctuation (hostile, or a broken
    # page): cut into words in pieces, matched at its very end too.
    text = "首脳会談" * 60_000 + "金正恩"
    assert matched("金正恩", text) == ["金正恩"]
    assert len(compile_query("会談").match(Document.build(text=text)).hits) == 60_000
