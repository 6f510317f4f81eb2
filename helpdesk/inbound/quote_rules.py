"""Line rules that recognise quoted history and signatures in plain-text replies.

Each rule looks at one line (or a short window of lines) with patterns anchored at the
line start and bounded in length, so splitting a reply stays linear in its size.
"""

from __future__ import annotations

import re

# An attribution line is short; longer lines are never examined as one.
MAX_ATTRIBUTION = 300

_QUOTED = re.compile(r"[ \t]*>")
_ORIGINAL_MESSAGE = re.compile(
    r"\s*-{2,}\s*(?:original message|reply message|ursprüngliche nachricht|original-nachricht"
    r"|message d'origine|mensaje original|messaggio originale|mensagem original"
    r"|oorspronkelijk bericht|originalmeddelande|oprindelig meddelelse|opprinnelig melding"
    r"|wiadomość oryginalna|původní zpráva|alkuperäinen viesti|eredeti üzenet"
    r"|исходное сообщение|оригинальное сообщение)\s*-{2,}\s*",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"\s*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré"
    r"|mensaje reenviado|messaggio inoltrato|mensagem encaminhada|doorgestuurd bericht"
    r"|vidarebefordrat meddelande|пересланное сообщение)\s*-{2,}|begin forwarded message:"
    r"|anfang der weitergeleiteten nachricht:|début du message réexpédié\s*:)\s*",
    re.IGNORECASE,
)
_RULE = re.compile(r"\s*(?:-{8,}|_{8,}|={8,})\s*")
# "Key: value" as Outlook and webmails write it, keys optionally in *bold* or _bold_.
_HEADER_FIELD = re.compile(
    r"\s*[*_]{0,2}([^\W\d_][^\W\d_ .-]*(?:[ .-][^\W\d_]+){0,2})[*_]{0,2}\s*:"
)
# Field names of quoted header blocks, by the field they stand for, in the languages
# mail clients write them in.
_FIELD_KINDS = {
    "from": "from|de|von|van|da|från|fra|od|от|від|lähettäjä|feladó|kimden|发件人|寄件者"
    "|差出人|expéditeur|remitente|mittente|afzender|avsändare|nadawca|absender",
    "date": "sent|date|datum|fecha|data|envoyé|envoyé le|gesendet|enviado|inviato|verzonden"
    "|skickat|sendt|wysłano|отправлено|дата|odesláno|lähetetty|küldve|tarih|发送时间|日付"
    "|送信日時|sent at",
    "to": "to|à|a|an|aan|para|till|til|do|кому|komu|vastaanottaja|címzett|kime|收件人|宛先"
    "|destinataire|destinatario|empfänger",
    "subject": "subject|objet|betreff|asunto|oggetto|onderwerp|ämne|emne|temat|тема|předmět"
    "|aihe|tárgy|konu|主题|件名|assunto|sujet",
    "cc": "cc|kopie|копия|kopia|cópia",
}
_FIELD_KIND = {key: kind for kind, keys in _FIELD_KINDS.items() for key in keys.split("|")}
_WROTE = re.compile(
    r".*(?:\bwrote|\bwrites|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev"
    r"|napisał|napsal|kirjoitti|írta|yazdı|пишет|написал|написала|написав)\s*:\s*",  # noqa: RUF001
    re.IGNORECASE,
)
# German, Dutch and Scandinavian clients put the verb before the name:
# "Am 26.06.2014 um 14:41 schrieb Alexander <a@b.c>:".
_VERB_BEFORE_NAME = re.compile(
    r"(?:am|op|den|på)\s.{0,300}\b(?:schrieb|schreef|skrev)\b.{0,300}:\s*", re.IGNORECASE
)
_DATE_OR_TIME = re.compile(
    r"\b\d{1,2}:\d{2}\b|\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,4}\b"
    r"|\b\d{1,2}\.?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+")
_ATTRIBUTION_OPENERS = re.compile(r"(?:on|le|am|el|il|op|em|den|på|w dniu|dne)\s", re.IGNORECASE)
_SIGNATURE_DELIMITER = re.compile(r"--\s*")
# "-Abhishek" or "-- Tim"; a dash and a space is a bullet, not a signature.
_DASH_NAME = re.compile(r"(?:-[^\W\d_]|--\s?[^\W\d_])[\w .'-]{0,40}")
_UNDERSCORES = re.compile(r"_{2,}\s*")
_MOBILE_SIGNATURE = re.compile(
    r"(?:sent from my |sent with |sent from (?:mail|outlook|yahoo|samsung|gmail|aol)\b"
    r"|get outlook for |envoyé de mon |von meinem |enviado desde mi |inviato da |"
    r"verzonden met |skickat från min )[^,;!]{1,80}",
    re.IGNORECASE,
)


def is_quoted(line: str) -> bool:
    """A line quoted with ">" (any depth, optional indentation)."""
    return _QUOTED.match(line) is not None


def is_blank(line: str) -> bool:
    """A line with nothing but whitespace."""
    return not line.strip()


def is_original_message(line: str) -> bool:
    """Outlook-style "-----Original Message-----" in the common languages."""
    return len(line) <= MAX_ATTRIBUTION and _ORIGINAL_MESSAGE.fullmatch(line) is not None


def is_forward_marker(line: str) -> bool:
    """A forwarded-message marker: dashed "Forwarded message" or "Begin forwarded message:"."""
    return len(line) <= MAX_ATTRIBUTION and _FORWARD_MARKER.fullmatch(line) is not None


def is_rule(line: str) -> bool:
    """A horizontal rule of dashes, underscores or equals signs."""
    return _RULE.fullmatch(line) is not None


def header_field(line: str) -> str | None:
    """Which header a "From:"/"Sent:"/"Betreff:"-style line is (from, date, to...), or None."""
    match = _HEADER_FIELD.match(line[:80])
    if match is None:
        return None
    return _FIELD_KIND.get(match.group(1).lower())


def is_header_block(lines: list[str], start: int) -> bool:
    """A quoted mail's header block starting at ``start`` (Outlook and webmail replies).

    At least three different fields among From/Date/To/Subject/Cc, one of them From,
    each on its own line; one wrapped line between fields is tolerated.
    """
    kinds: set[str] = set()
    loose = 0
    for line in lines[start : start + 8]:
        kind = header_field(line)
        if kind is not None:
            kinds.add(kind)
            loose = 0
        elif is_blank(line) or loose:
            break
        else:
            loose = 1
    return len(kinds) >= 3 and "from" in kinds


def is_reply_attribution(window: str) -> bool:
    """An "On <date>, <name> wrote:" line (any language): text ending in a "wrote" verb."""
    if len(window) > MAX_ATTRIBUTION * 3:
        return False
    return _WROTE.fullmatch(window) is not None or _VERB_BEFORE_NAME.fullmatch(window) is not None


def is_dated_attribution(window: str) -> bool:
    """An attribution without a verb: a line ending in ":" that carries a date or address."""
    window = window.rstrip()
    if not window.endswith(":") or len(window) > MAX_ATTRIBUTION * 3:
        return False
    return _DATE_OR_TIME.search(window) is not None or _ADDRESS.search(window) is not None


def continues_attribution(line: str) -> bool:
    """Whether a line just above an attribution is its wrapped beginning."""
    if len(line) > MAX_ATTRIBUTION or is_blank(line):
        return False
    return (
        _DATE_OR_TIME.search(line) is not None
        or _ADDRESS.search(line) is not None
        or _ATTRIBUTION_OPENERS.match(line.lstrip()) is not None
        or line.rstrip().endswith("<")
    )


def is_signature_delimiter(line: str) -> bool:
    """The conventional "-- " signature separator (also without the space)."""
    return _SIGNATURE_DELIMITER.fullmatch(line) is not None


def is_signature_start(line: str) -> bool:
    """A paragraph start that begins a signature: "--", "-Name", "__", "Sent from my ..."."""
    if len(line) > MAX_ATTRIBUTION:
        return False
    return (
        is_signature_delimiter(line)
        or _DASH_NAME.fullmatch(line.rstrip()) is not None
        or _UNDERSCORES.fullmatch(line) is not None
        or _MOBILE_SIGNATURE.fullmatch(line.strip()) is not None
    )
