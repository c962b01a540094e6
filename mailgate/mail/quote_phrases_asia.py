"""Phrase tables for Japanese, Chinese and Korean, whose clients write no space before the verb."""

from __future__ import annotations

from mailgate.mail.quote_table import Phrases

# Phrases here are matched without a word boundary before them: "于2013年7月20日 下午3:22写道："
# puts the verb right after a digit.
TABLES: dict[str, Phrases] = {
    "ja": Phrases(
        # Apple Mail: "2013/07/20 15:22、Ann <a@x> のメッセージ:"; Thunderbird: "Ann さんは書きました:".
        wrote=("のメッセージ", "書きました", "書き込みました"),
        headers={
            "from": ("差出人", "送信者"),
            "date": ("送信日時", "日付"),
            "to": ("宛先", "cc"),
            "subject": ("件名",),
        },
        separators=("元のメッセージ", "転送メッセージ", "転送されたメッセージ"),
        mobile=(r"[\w\-]{1,30}から送信",),
    ),
    "zh": Phrases(
        wrote=("写道", "寫道"),
        headers={
            "from": ("发件人", "寄件者", "寄件人"),
            "date": ("发送时间", "日期", "寄件日期", "傳送時間"),
            "to": ("收件人", "收件者", "抄送", "副本"),
            "subject": ("主题", "主旨"),
        },
        separators=("原始邮件", "原始郵件", "转发邮件", "轉寄郵件", "以下是转发的邮件", "以下為轉寄的郵件"),
        mobile=(r"(?:发自|來自|来自|從)我的 ?[\w\-]{1,30}(?: 傳送)?",),
    ),
    "ko": Phrases(
        wrote=("작성",),
        headers={
            "from": ("보낸 사람",),
            "date": ("보낸 날짜",),
            "to": ("받는 사람", "참조"),
            "subject": ("제목",),
        },
        separators=("원본 메시지", "전달된 메시지"),
        mobile=(r"[\w\-]{1,30}에서 보냄",),
    ),
}

# Scripts written without spaces between words: a phrase may follow any character.
UNSPACED = frozenset(TABLES)
