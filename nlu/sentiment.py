"""Real-time caller sentiment: from the words, from the voice, and from the run of the call.

Three measurements, each cheap enough to run on every turn (and while the caller speaks):

- :func:`text_sentiment` reads one turn's words as the recogniser wrote them. A valence lexicon
  (``nlu/data/sentiment_lexicon.tsv``: a word or phrase and its valence, −4…+4) is scored the
  VADER way: intensifiers ("really", "so") strengthen the next valence word, dampeners ("a bit")
  soften it, a negator up to three words before flips and shrinks it ("not happy"), the clause
  after "but" outweighs the one before, and the sum is squashed into [−1, 1]. On top sit the
  contact-centre patterns a general lexicon misses — repeat contact ("third time I've called"),
  unresolved problems ("nobody fixed", "still hasn't"), waiting ("on hold forever"), threats
  ("lawyer", "cancel everything"), sarcasm ("great, just great") and profanity, including the
  recogniser's censored forms ("f***ing"). Case carries nothing (ASR output has no shouting).
- :class:`VoiceTracker` (in :mod:`nlu.prosody`, re-exported here) turns the caller's audio
  frames into :class:`VoiceFeatures`: loudness, pitch and speaking rate against the caller's own
  first seconds of speech, and an ``arousal`` in [0, 1].
- :class:`ConversationSignals` counts what the dialogue sees: repeated questions, failed
  answers, requests for a person, barge-ins, profanity, threats.

:class:`SentimentTracker` (alias ``CallerMood``), one per call, combines them into a
:class:`TurnSentiment` per caller turn and keeps the trend; :mod:`nlu.escalation` turns that into
a decision. Everything here is plain synchronous Python over text, numbers and PCM bytes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nlu.prosody import VoiceFeatures, VoiceTracker

__all__ = [
    "LEXICON_FILE", "CallerMood", "ConversationSignals", "Lexicon", "SentimentTracker",
    "TextSentiment", "TurnSentiment", "VoiceFeatures", "VoiceTracker", "asks_for_human",
    "combine", "label_of", "text_sentiment",
]

LEXICON_FILE = Path(__file__).parent / "data" / "sentiment_lexicon.tsv"

NEGATIVE_AT, POSITIVE_AT = -0.25, 0.25  # label boundaries, as the call record uses them
_ALPHA = 15.0  # VADER's squashing constant: score = s / sqrt(s² + α)
_NEGATION = -0.74  # a negated valence flips and shrinks (VADER's factor)

Label = Literal["negative", "neutral", "positive"]


def label_of(score: float) -> Label:
    """The word for a score in [−1, 1]."""
    return "negative" if score <= NEGATIVE_AT else "positive" if score >= POSITIVE_AT else "neutral"


# --- words -----------------------------------------------------------------------------------

_NEGATORS = frozenset(
    "not no never nobody nothing none neither nor cannot cant dont doesnt didnt isnt arent "
    "wasnt werent wont wouldnt shouldnt couldnt havent hasnt hadnt aint without hardly".split()
)
_INTENSIFIERS = {
    "really": 1.3, "so": 1.3, "very": 1.3, "too": 1.2, "such": 1.2, "extremely": 1.5,
    "absolutely": 1.4, "totally": 1.4, "completely": 1.4, "utterly": 1.5, "incredibly": 1.5,
    "super": 1.3, "truly": 1.3, "seriously": 1.3, "most": 1.2, "quite": 1.1, "pretty": 1.1,
    "just": 1.1, "fucking": 1.4, "bloody": 1.3, "freaking": 1.3, "effing": 1.3, "frigging": 1.3,
    "damn": 1.3, "damned": 1.3, "insanely": 1.4, "ridiculously": 1.4, "way": 1.2,
}
_DAMPENERS = {
    "slightly": 0.6, "somewhat": 0.7, "kinda": 0.7, "fairly": 0.8, "mildly": 0.6,
    "a bit": 0.7, "a little": 0.7, "kind of": 0.7, "sort of": 0.7, "little bit": 0.6,
}
_CONTRAST = frozenset({"but", "however", "although", "though"})
_TOKEN = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)*(?:\*+[a-z]*)?|\*{2,}[a-z]*", re.IGNORECASE)
_BREAK = re.compile(r"[.,!?;:\u2026\u2014]")  # punctuation that ends a negation's reach


@dataclass(frozen=True, slots=True)
class _Pattern:
    category: str
    valence: float
    regex: re.Pattern[str]


def _pattern(category: str, valence: float, *alternatives: str) -> _Pattern:
    return _Pattern(category, valence, re.compile("|".join(rf"\b(?:{a})\b" for a in alternatives)))


_NTH = r"second|third|fourth|fifth|sixth|seventh|tenth|umpteenth|hundredth|\d+(?:st|nd|rd|th)"
_CONTACTED = r"called|rang|rung|phoned|contacted|emailed|spoke to|spoken to|talked to|chatted to"
_WHEN_BEFORE = (r"already|before|yesterday|last (?:week|month|night|time)|twice|(?:three|four|five|"
                r"six|several|multiple|many|so many|a few|a couple of|\d+) times|(?:a|two|three|"
                r"a few|\d+) (?:days|weeks) ago|this morning")
_NOT_DONE = r"fixed|resolved|sorted(?: out)?|refunded|repaired|replaced|answered|followed up"
_NICE = r"great|perfect|wonderful|fantastic|brilliant|lovely|marvell?ous|terrific|super|awesome"
_DURATION = (r"(?:\w+ )?(?:weeks|days|months|hours|years|minutes)|a (?:week|month|year)|an hour|"
             r"over an hour|half an hour|ages|forever|an age|an eternity|so long|too long|all day")

# Ordered: the first pattern to claim a word keeps it. Words a pattern claims are not scored
# again by the lexicon ("nobody fixed it" is one cue, not a negator and a positive word).
_PATTERNS = (
    _pattern("unresolved", -2.6,
             r"(?:you|they|he|she|someone|somebody|the agent|your colleague) (?:promised|said|"
             r"told me|assured me)(?: \w+){0,8}? (?:but|and) (?:it |that |then )?(?:never|"
             r"nothing|didnt|hasnt|havent|still|wasnt|isnt|no one|nobody)"),
    _pattern("repeat_contact", -2.6,
             rf"(?:this is|thats|its|it is|now) (?:the|my) (?:{_NTH}) time",
             rf"(?:{_NTH}) time (?:that )?(?:ive|i have|im|i am|i|weve|we have)? ?(?:had to |"
             r"been )?(?:call|calling|called|ring|ringing|rung|rang|phone|phoning|phoned|"
             r"contact|contacting|contacted|try|trying|tried|explain|explaining|explained|chase|"
             r"chasing|chased|ask|asking|asked)",
             r"i keep (?:calling|ringing|having to (?:call|ring|explain|repeat)|getting (?:cut "
             r"off|transferred|passed around))",
             r"every (?:single )?time i (?:call|ring|phone)",
             r"how many (?:more )?times (?:do|have|must|should|will) i"),
    _pattern("repeat_contact", -2.0, rf"(?:{_CONTACTED})(?: \w+){{0,4}}? (?:{_WHEN_BEFORE})"),
    _pattern("unresolved", -2.6,
             r"(?:nobody|no one|noone|no body|none of you)(?: has| have| had| ever| even|"
             r" actually){0,3} (?:fixed|fix|fixes|helped|help|helps|sorted|sort|resolved|"
             r"(?:called|call|calls|rang|rings|ring) (?:me |us )?back|(?:got|gets|get) back|"
             r"bothered|listens|listened|"
             r"cares|cared|did anything|does anything|done anything|answered|answers|replied|"
             r"responded|followed up)",
             r"still (?:not|no|nothing|hasnt|havent|isnt|doesnt|dont|didnt|wont|cant|cannot|"
             r"broken|missing|wrong|the same)",
             rf"(?:never|hasnt|has not|havent|have not|didnt|did not|wasnt|was not|werent|not) "
             rf"(?:been |ever been |even been |actually been )?(?:{_NOT_DONE})",
             r"nothing (?:has |have |had |ever )?(?:been |was |is )?(?:done|happened|changed|"
             r"fixed|sorted)",
             r"same (?:problem|issue|thing|error|fault|story|excuse|answer) (?:again|as before|"
             r"as last time|every time|over and over)",
             r"again and again|over and over|yet again"),
    _pattern("waiting", -2.3,
             rf"waiting (?:for |over |nearly |almost |more than |about |like )*(?:{_DURATION})",
             rf"on hold (?:for |over |nearly |almost |more than |about |like )*(?:{_DURATION})",
             r"(?:kept|left|held|put) (?:me )?on hold (?:for )?(?:ages|forever|again)",
             r"(?:weeks|days|months|hours) (?:and|later|now|on)(?: \w+)? (?:still|nothing|no)",
             r"how (?:much )?long (?:do|am|must|will|should|have) i (?:have to |supposed to |"
             r"going to |gonna )?(?:wait|be waiting|hold)",
             r"(?:taking|taken|takes|took) (?:forever|ages|so long|far too long|way too long)",
             r"still waiting"),
    _pattern("threat", -3.0,
             r"lawyers?|attorneys?|solicitors?|legal action|take (?:you|this|it) to court|"
             r"small claims|sue|suing|ombudsman|trading standards|better business bureau|bbb|"
             r"consumer protection|regulator",
             r"report(?:ing)? (?:you|this|your company|the company|it) (?:to|for)",
             r"(?:going to|gonna|will|ill|im going to) report (?:you|this company|your company|"
             r"the company|this to|it to)",
             r"(?:take|taking|move|moving) my (?:business|money|custom) (?:elsewhere|somewhere "
             r"else|to \w+)",
             r"never (?:buy|buying|order|ordering|shop|shopping|use|using)(?: \w+){0,3}? again",
             r"(?:one star|bad|terrible|negative|awful) review",
             r"(?:post|posting|put|putting|tweet|tweeting|share|sharing|tell|telling)(?: \w+){0,4}?"
             r" (?:on|all over) (?:social media|twitter|facebook|tiktok|reddit|instagram|the "
             r"internet|online)",
             r"cancel (?:everything|it all|all of it|the whole (?:thing|lot)|my whole account)",
             r"chargeback|charge back|(?:dispute it|dispute this|call|calling) (?:with )?my bank"),
    _pattern("sarcasm", -2.6,
             rf"({_NICE}|nice) (?:just|really|simply|absolutely|truly) \1",
             rf"(?:oh|well|yeah) (?:{_NICE}|joy|good|nice)(?: \w+){{0,2}}? (?:another|again|"
             r"here we go|now i|so now|just what i needed|thats all i need)",
             r"thanks for (?:nothing|absolutely nothing|all "
             r"nothing)|thanks a lot for nothing|yeah right|what a surprise|big surprise",
             r"(?:so|very|really|super) helpful not",
             r"(?:i )?(?:just )?love (?:how|that|it when)(?: \w+){0,8}? (?:have to|had to|keep|"
             r"again|every time|never|nobody|no one|cant|wont)"),
)
_CENSORED = -2.5  # "f***", "s***ing": the recogniser hides the word, not the mood
_CLEARLY_NEGATIVE = -1.0  # cues at or below this valence are worth quoting ("late" is not)


@dataclass(frozen=True, slots=True)
class _Entry:
    valence: float
    profanity: bool


class Lexicon:
    """Words and phrases with their valence (−4…+4), from a two- or three-column TSV file.

    Columns: the term (one or more words, written as the recogniser would after lower-casing
    and dropping apostrophes: "dont", "ive"), its valence, and optionally the tag ``profanity``.
    Lines starting with ``#`` and blank lines are skipped.
    """

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self._entries = {tuple(term.split()): entry for term, entry in entries.items()}
        self.longest = max((len(k) for k in self._entries), default=1)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, words: tuple[str, ...]) -> _Entry | None:
        return self._entries.get(words)

    @classmethod
    def load(cls, path: Path | str) -> Lexicon:
        entries: dict[str, _Entry] = {}
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                term, valence = " ".join(_words(parts[0])), float(parts[1])
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: expected 'term<TAB>valence[<TAB>tag]'") from exc
            if not term or not -4.0 <= valence <= 4.0:
                raise ValueError(f"{path}:{number}: empty term or valence outside -4..4")
            entries[term] = _Entry(valence, len(parts) > 2 and parts[2].strip() == "profanity")
        return cls(entries)

    @classmethod
    @functools.cache
    def default(cls) -> Lexicon:
        """The shipped lexicon, read once per process (it is never modified)."""
        return cls.load(LEXICON_FILE)


def _word(token: str) -> str:
    return token.lower().replace("'", "").replace("\u2019", "")


def _words(text: str) -> list[str]:
    return [_word(m.group(0)) for m in _TOKEN.finditer(text)]


@dataclass(frozen=True, slots=True)
class TextSentiment:
    """How one turn's words sound: ``score`` in [−1, 1] and the cues that moved it.

    ``cues`` are the words as said, in order ("third time I've called", "thank you");
    ``negative`` the ones that pulled the score clearly down (after negation and intensifiers,
    valence ≤ −1: "not happy", not "late"); ``categories`` the contact-centre
    patterns seen ("repeat_contact", "unresolved", "waiting", "threat", "sarcasm", "profanity").
    """

    score: float
    cues: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    categories: frozenset[str] = frozenset()
    profanity: int = 0
    flagged: list[tuple[str, str]] = field(default_factory=list)  # (category, cue)

    @property
    def label(self) -> Label:
        return label_of(self.score)


def text_sentiment(text: str, *, lexicon: Lexicon | None = None) -> TextSentiment:
    """Score one caller turn's words (see the module docstring for the rules)."""
    lexicon = lexicon or Lexicon.default()
    matches = list(_TOKEN.finditer(text))
    words = [_word(m.group(0)) for m in matches]
    n = len(words)
    if not n:
        return TextSentiment(0.0)
    # clause[i]: the index of the clause token i is in (punctuation between tokens starts one)
    clause = [0] * n
    for i in range(1, n):
        gap = text[matches[i - 1].end():matches[i].start()]
        clause[i] = clause[i - 1] + bool(_BREAK.search(gap))

    def said(a: int, b: int) -> str:  # the cue as the recogniser wrote it
        return text[matches[a].start():matches[b - 1].end()]

    joined, starts, offset = " ".join(words), [], 0
    for w in words:
        starts.append(offset)
        offset += len(w) + 1
    used = [False] * n
    items: list[tuple[int, float, str, str | None]] = []  # (position, valence, cue, category)
    for pattern in _PATTERNS:
        for m in pattern.regex.finditer(joined):
            a = next(i for i, s in enumerate(starts) if s >= m.start())
            b = next((i for i, s in enumerate(starts) if s >= m.end()), n)
            if a < b and not any(used[a:b]):
                used[a:b] = [True] * (b - a)
                items.append((a, pattern.valence, said(a, b), pattern.category))

    i = 0
    while i < n:
        if used[i]:
            i += 1
            continue
        for length in range(min(lexicon.longest, n - i), 0, -1):
            span = range(i, i + length)
            entry = lexicon.get(tuple(words[i:i + length]))
            if entry is not None and not any(used[j] for j in span):
                break
        else:
            if "*" in words[i]:
                used[i] = True
                items.append((i, _CENSORED, said(i, i + 1), "profanity"))
            i += 1
            continue
        for j in span:
            used[j] = True
        valence = entry.valence * _modifier(words, clause, used, i)
        items.append((i, valence, said(i, i + length), "profanity" if entry.profanity else None))
        i += length

    contrast = max((j for j, w in enumerate(words) if w in _CONTRAST and not used[j]), default=-1)
    total = 0.0
    for position, valence, _, _ in items:
        if contrast >= 0:
            valence *= 1.5 if position > contrast else 0.5
        total += valence
    score = max(-1.0, min(1.0, total / (total * total + _ALPHA) ** 0.5))
    items.sort(key=lambda item: item[0])
    return TextSentiment(
        score=score,
        cues=[cue for _, _, cue, _ in items],
        negative=[cue for _, valence, cue, _ in items if valence <= _CLEARLY_NEGATIVE],
        categories=frozenset(cat for *_, cat in items if cat),
        profanity=sum(cat == "profanity" for *_, cat in items),
        flagged=[(cat, cue) for _, _, cue, cat in items if cat],
    )


def _modifier(words: list[str], clause: list[int], used: list[bool], i: int) -> float:
    """Intensifiers, dampeners and negation in the (up to) three words before ``words[i]``,
    within its clause; a negator already part of a pattern or phrase ("nobody fixed") does not
    count again."""
    factor = 1.0
    before = [j for j in range(max(0, i - 3), i) if clause[j] == clause[i]]
    if before and before[-1] == i - 1:
        previous = words[i - 1]
        pair = " ".join(words[i - 2:i]) if i >= 2 and clause[i - 2] == clause[i] else ""
        if pair in _DAMPENERS:
            factor *= _DAMPENERS[pair]
        elif previous in _DAMPENERS:
            factor *= _DAMPENERS[previous]
        elif previous in _INTENSIFIERS:
            factor *= _INTENSIFIERS[previous]
            if i >= 2 and clause[i - 2] == clause[i] and words[i - 2] in _INTENSIFIERS:
                factor *= 1.1  # "really so happy"
    if any(words[j] in _NEGATORS and not used[j] for j in before):
        factor *= _NEGATION
    return factor


# --- asking for a person --------------------------------------------------------------------

_PERSON = (r"(?:a |an |the |some |your |one of your |to )?(?:real |actual |live |proper |human |"
           r"another |different |other |senior |customer service |customer care )?(?:person|"
           r"human(?: being)?|humans|people|someone|somebody|anyone|anybody|agent|representative|"
           r"rep|operator|manager|supervisor|advisor|adviser|team leader|staff|employee|"
           r"associate|specialist|boss|customer (?:service|services|care|support)|"
           r"(?:the )?(?:billing|support|complaints|returns) (?:team|department))")
_ROLE = (r"human|humans|agent|representative|operator|manager|supervisor|person|rep|"
         r"real person|customer (?:service|services|care|support)")
_MACHINE = r"robot|robots|machine|machines|bot|bots|computer|automated (?:system|thing)|recording"
_ASKS = re.compile("|".join(rf"\b(?:{p})\b" for p in (
    rf"(?:talk|speak|chat|speaking|talking|a word)(?: \w+)? (?:to|with) {_PERSON}",
    rf"(?:get|put|transfer|connect|pass|patch|give)(?: me)? (?:through |over |on |across )?"
    rf"(?:to |with )?{_PERSON}",
    r"(?:transfer|connect|put|patch) me(?: through| over| now)?",
    rf"(?:want|need|like|prefer|demand|request|insist on)(?: to (?:have|get))? {_PERSON}",
    rf"(?:can|could|may) i (?:have|get|see) {_PERSON}",
    rf"help from {_PERSON}",
    r"(?:real|actual|live) (?:person|human|people|agent)|human being",
    r"(?:is|are) (?:there )?(?:an? |any |some )?(?:agents?|person|people|humans?|someone|"
    r"somebody|anyone|anybody|representatives?)(?: \w+)? available",
    r"(?:is there|are there|do you have|have you got)(?: a| an| any)? (?:real |actual |live |"
    r"human )?(?:person|human|people|humans|agent|agents|someone|somebody|anybody|anyone)"
    r"(?: \w+){0,3}? (?:i can|to) (?:talk|speak)",
    rf"(?:{_ROLE}) (?:please|now|right now|immediately)",
    r"escalate (?:this|it|my|me|the)|escalated",
    r"(?:press|pressing|dial|dialling|dialing) (?:zero|0)",
    rf"(?:{_MACHINE})(?: \w+){{0,2}}? (?:please|enough|anymore|any more|stop)",
    rf"(?:no|no more|stop|enough|sick of|tired of|not)(?: talking to| with| this)?"
    rf"(?: a| the| your)? (?:{_MACHINE})",
    rf"(?:dont|do not) (?:want to |wanna )?(?:talk|speak|deal) (?:to|with) (?:a |the |this |"
    rf"your |some )?(?:{_MACHINE})",
)))
# The whole turn is a role, perhaps repeated: "representative", "agent agent", "stop, agent".
_ONLY_ROLE = re.compile(rf"^(?:(?:please|um|uh|er|erm|ok|okay|just|yes|no|stop) )*(?:(?:a |an |"
                        rf"the )?(?:real |live |human )?(?:{_ROLE})(?: |$))+(?:please|now| )*$")
_NOT_NOW = re.compile(r"\b(?:when|what time|what hours|which hours|how late|what days|opening "
                      r"hours|earliest|latest|until what|at the weekend|on (?:the )?(?:weekends?|"
                      r"(?:mon|tues|wednes|thurs|fri|satur|sun)days?))\b")
_REFUSED = re.compile(r"\b(?:dont|do not|didnt|never|no need to|not)(?: \w+){0,2}$")
_PAST = re.compile(r"\b(?:spoke|spoken|talked|chatted|was|were|had|got|met)(?: to| with)?"
                   r"(?: a| an| the| your)?$")


def asks_for_human(text: str) -> bool:
    """Whether the caller asks to be put through to a person now, in any common phrasing.

    A question about when people are available ("when can I talk to someone?") is not a
    request; neither is a refusal ("I don't want to talk to a person") nor a past contact
    ("I spoke to a real person yesterday").
    """
    said = " ".join(_words(text))
    if _ONLY_ROLE.match(said):
        return True
    if _NOT_NOW.search(said):
        return False
    for m in _ASKS.finditer(said):
        before = said[:m.start()].rstrip()
        if not _REFUSED.search(before) and not _PAST.search(before):
            return True
    return False


# --- the run of the conversation ---------------------------------------------------------------

_CHATTER = frozenset({"affirm", "deny", "greeting", "goodbye", "repeat", "hold", "agent"})


_STOPWORDS = frozenset(
    "the and you your for are was were this that with have has had can could would will just "
    "what when where why how who its about from but not any all they them then there here "
    "yes yeah okay please thanks thank hello well said say".split()
)


def _content(text: str) -> frozenset[str]:
    """The words that carry a turn's topic, for spotting a question asked again."""
    return frozenset(w for w in _words(text) if len(w) > 2 and w not in _STOPWORDS)


@dataclass(slots=True)
class ConversationSignals:
    """Per-call counts of what the dialogue sees; the dialogue calls the ``on_*`` methods.

    A caller turn repeats an earlier question when its words mostly match an earlier turn
    (≥ 60 % of content words shared, at least two) or when it has the same task or question
    intent as an earlier turn whose answer failed.
    """

    turns: int = 0
    repeated_questions: int = 0
    failed_answers: int = 0
    failed_in_a_row: int = 0
    asked_for_human: bool = False
    asked_for_human_now: bool = False  # in the latest caller turn
    barge_ins: int = 0
    profanity: int = 0
    threats: int = 0
    repeated_now: bool = False  # the latest caller turn repeated an earlier one
    barged_in_now: bool = False  # the caller interrupted the reply before the latest turn
    _said: list[frozenset[str]] = field(default_factory=list, repr=False)
    _failed_intents: set[str] = field(default_factory=set, repr=False)
    _last_intent: str | None = field(default=None, repr=False)
    _barge_pending: bool = field(default=False, repr=False)

    def on_caller_turn(self, text: str, intent: str | None, *,
                       words: TextSentiment | None = None) -> None:
        """A caller turn was recognised (``words``: its :func:`text_sentiment`, if known)."""
        if words is None:
            words = text_sentiment(text)
        content = _content(text)
        similar = len(content) >= 2 and any(
            len(content & old) >= 0.6 * max(len(content), len(old)) for old in self._said)
        self.repeated_now = similar or (intent is not None and intent in self._failed_intents)
        self.repeated_questions += self.repeated_now
        self.asked_for_human_now = intent == "agent" or asks_for_human(text)
        self.asked_for_human = self.asked_for_human or self.asked_for_human_now
        self.profanity += words.profanity
        self.threats += "threat" in words.categories
        self.turns += 1
        self._said.append(content)
        self._last_intent = intent
        self.barged_in_now, self._barge_pending = self._barge_pending, False

    def on_assistant_reply(self, intent: str | None, failed: bool) -> None:
        """The assistant answered the latest caller turn; ``failed``: it said it did not know,
        asked the caller to repeat, or had to clarify."""
        if failed:
            self.failed_answers += 1
            self.failed_in_a_row += 1
            topic = intent if intent not in (None, "unclear", "empty") else self._last_intent
            if topic is not None and topic not in _CHATTER and topic != "out_of_scope":
                self._failed_intents.add(topic)
        else:
            self.failed_in_a_row = 0

    def on_barge_in(self) -> None:
        """The caller started speaking over the assistant (before that caller turn arrives)."""
        self.barge_ins += 1
        self._barge_pending = True

    def features(self) -> dict[str, float]:
        """The counts as numbers, for models and the call record."""
        return {"turns": self.turns, "repeated_questions": self.repeated_questions,
                "failed_answers": self.failed_answers, "failed_in_a_row": self.failed_in_a_row,
                "asked_for_human": float(self.asked_for_human), "barge_ins": self.barge_ins,
                "profanity": self.profanity, "threats": self.threats}


# --- one call's mood ---------------------------------------------------------------------------

_VOICE_WEIGHT = 0.5  # full arousal pulls a neutral turn to −0.5
_REPEAT_PENALTY = 0.15  # asking the same thing again
_BARGE_PENALTY = 0.1  # cutting the assistant off


@dataclass(frozen=True, slots=True)
class TurnSentiment:
    """One caller turn, all signals combined: ``score`` in [−1, 1] and its ``label``.

    ``score`` is the words' score, pulled down by vocal arousal in proportion to how far the
    words are from positive (an excited "thank you so much!" stays positive, a loud neutral
    turn turns negative), and a little more when the turn repeats an earlier question or cut
    the assistant off.
    """

    score: float
    label: Label
    text_score: float
    voice_arousal: float
    cues: list[str]
    negative: list[str]
    categories: frozenset[str]
    voice: VoiceFeatures | None
    index: int  # 0 for the caller's first turn
    flagged: list[tuple[str, str]] = field(default_factory=list)  # (category, cue) of the words

    def as_dict(self) -> dict[str, object]:
        """The turn for the call record (``sentiment`` fields, events)."""
        return {"score": round(self.score, 3), "label": self.label,
                "text": round(self.text_score, 3), "arousal": round(self.voice_arousal, 3),
                "cues": list(self.cues)}


def combine(words: TextSentiment, voice: VoiceFeatures | None, *, repeated: bool = False,
            barged_in: bool = False, index: int = 0) -> TurnSentiment:
    """The :class:`TurnSentiment` of one turn's words, voice and conversation events."""
    arousal = voice.arousal if voice is not None else 0.0
    score = words.score - _VOICE_WEIGHT * arousal * (1.0 - max(words.score, 0.0))
    score -= _REPEAT_PENALTY * repeated + _BARGE_PENALTY * barged_in
    score = max(-1.0, min(1.0, score))
    return TurnSentiment(score, label_of(score), words.score, arousal, list(words.cues),
                         list(words.negative), words.categories, voice, index,
                         list(words.flagged))


class SentimentTracker:
    """One call's sentiment: the caller's voice, the conversation signals and the turn trend.

    The dialogue calls, as things happen:

    - ``tracker.voice.speech_started()`` / ``.feed(frame)`` / ``.speech_stopped()`` with the
      caller's audio (optional: without audio the voice is simply neutral);
    - :meth:`live` while the caller speaks, for a provisional reading;
    - :meth:`caller_turn` when the recogniser has the caller's turn (closes the voice turn);
    - :meth:`assistant_reply` once the reply is known, :meth:`barge_in` when the caller
      interrupts the assistant.
    """

    def __init__(self, *, lexicon: Lexicon | None = None,
                 voice: VoiceTracker | None = None) -> None:
        self.lexicon = lexicon or Lexicon.default()
        self.voice = voice or VoiceTracker()
        self.signals = ConversationSignals()
        self.turns: list[TurnSentiment] = []

    @property
    def trend(self) -> list[float]:
        """Every caller turn's score so far, in order."""
        return [t.score for t in self.turns]

    def caller_turn(self, text: str, intent: str | None = None, *,
                    voice: VoiceFeatures | None = None) -> TurnSentiment:
        """Measure a finished caller turn; ``voice`` overrides the tracked audio (tests, data)."""
        if voice is None and self.voice.has_audio:
            voice = self.voice.end_turn(words=len(text.split()) or None)
        words = text_sentiment(text, lexicon=self.lexicon)
        self.signals.on_caller_turn(text, intent, words=words)
        turn = combine(words, voice, repeated=self.signals.repeated_now,
                       barged_in=self.signals.barged_in_now, index=len(self.turns))
        self.turns.append(turn)
        return turn

    def live(self, partial_text: str = "") -> TurnSentiment:
        """A provisional reading of the turn in progress (nothing is recorded)."""
        voice = self.voice.live(words=len(partial_text.split()) or None) \
            if self.voice.has_audio else None
        return combine(text_sentiment(partial_text, lexicon=self.lexicon), voice,
                       index=len(self.turns))

    def assistant_reply(self, intent: str | None, failed: bool) -> None:
        self.signals.on_assistant_reply(intent, failed)

    def barge_in(self) -> None:
        self.signals.on_barge_in()

    def summary(self) -> dict[str, object]:
        """Label of the last turn and the trend, as the handoff and call record show them."""
        if not self.turns:
            return {}
        return {"label": self.turns[-1].label, "trend": [round(s, 2) for s in self.trend]}


CallerMood = SentimentTracker
