"""Who acts on whom: whether a sentence has the US side acting (a US strike) or being acted on (an attack on US
forces, its embassy or its people), read from the normalised text of a headline or a lead.

The verb does not decide it: militias "strike" bases hosting US troops and the US "attacks" militia sites. What
decides it is where the US side stands: as the subject of an action ("US jets pound ...", "Pentagon strikes ..."),
as the object of one ("rocket attack on US base", "drones target American troops"), or in the passive ("US troops
wounded in ...", "Americans killed in ...", "base hosting coalition troops hit"). The first cue in reading order
wins, because a headline's main clause comes first ("US hits back after attack on American troops").

Arabic, Persian and Sorani headlines have cues of their own (``_arabic_script_cues``): the US side as an adjective
of the strike ("غارة أمريكية", "حمله هوایی آمریکا", "هێرشی ئەمریکا"), or as the owner of the base or forces attacked
("استهداف قاعدة ... الاحتلال الأمريكي", "حمله به پایگاه آمریکا", "هێرش کرایە سەر بنکەی ئەمریکی").

Pure and small: regular expressions over the normal form of ``monitor.detection.text`` (lower case, ``usa`` for the
country, one space between words, ``|`` between sentences).
"""

from __future__ import annotations

import functools
import re
from enum import Enum

__all__ = ["Direction", "direction"]


class Direction(Enum):
    US_ACTS = "us_acts"
    US_TARGETED = "us_targeted"


# Words that name the US side as an actor.
_US = (
    r"(?:usa|american|americans|america|washington|pentagon|centcom|coalition|biden|trump|white house|"
    # aircraft only the US side flies over Iraq: "ac-130 gunship hits militia fighters"
    r"ac 130s?|mq 9s?|f 15es?|b 1bs?|a 10s?)"
)
# Nouns of the US side that are what gets hit: people, places, convoys.
_TARGET = (
    r"(?:troops?|forces?|soldiers?|service ?members?|servicemen|personnel|contractors?|bases?|air ?bases?|"
    r"embassy|embassies|consulate|compound|convoys?|diplomats?|citizens|staff|advisers?|advisors?|marines?|"
    r"military (?:base|bases|personnel|facility|facilities)|facility|facilities|outpost|mission|interests|targets|"
    r"occupation|occupiers|occupying forces|barracks|quarters|headquarters|trainers?|camps?)"
)
# A US-side target phrase: "usa troops", "american air base", "coalition convoy", "the usa embassy".
_US_TARGET = rf"(?:{_US}(?: \w+){{0,2}} {_TARGET}|americans)"
# A base named as hosting the US side: "base hosting usa troops", "bases housing american forces".
_HOSTS = r"(?:hosting|housing|used by|with|that hosts?|where|packed with|home to)"
_HOSTING = rf"(?:bases?|air ?bases?|facility|compound|barracks|camps?) {_HOSTS} (?:\w+ ){{0,2}}{_US}"
_HARMED = (
    r"(?:wounded|injured|killed|hurt|dead|die|dies|died|hit|targeted|attacked|struck|shelled|under fire|"
    r"come under|came under|comes under|suffer|suffered|suffers|treated for|evacuated for)"
)
_ATTACK_NOUN = (
    r"(?:attacks?|strikes?|rockets?|drones?|missiles?|mortars?|fire|salvo|barrage|bombs?|shelling|assault|"
    r"katyushas?|projectiles?)"
)
_ACT_VERB = (
    r"(?:strikes|struck|strike|hits|hit|bombs|bombed|bomb|pounds|pounded|pound|targets|targeted|target|kills|"
    r"killed|kill|retaliates|retaliated|retaliate|raids|raided|raid|launches|launched|launch|carries out|"
    r"carried out|conducts|conducted|takes out|took out|attacks|attacked|attack|blasts|blasted|destroys|destroyed|"
    r"obliterates|obliterated|eliminates|eliminated)"
)
# What the US side acts with, between its name and the verb: "usa central command conducts", "usa drone obliterates".
_US_MEANS = (
    r"(?:military|forces|troops|jets|warplanes|drones?|aircraft|central command|special forces|navy|air force|army|"
    r"marines|reaper|gunships?|bombers?|helicopters?|fighter jets|says|said)"
)
# Assaults on a place rather than strikes: "crowds besiege usa embassy".
_ASSAULT = r"(?:besiege|besieges|besieged|storm|storms|stormed|breach|breaches|breached|surround|surrounds|surrounded)"
_US_STRIKE_NOUN = (
    r"(?:air ?strikes?|airstrikes?|drone strikes?|strikes?|raids?|jets|warplanes|bombers|drones?|aircraft)"
)

_MILITIA_WEAPON = r"(?:rocket|rockets|mortar|mortars|katyusha|katyushas)"
_TOWARDS = r"(?:on|at|against|targeting|target|targets|hit|hits|near)"
_LANDS = r"(?:on|in|against|kill|kills|killed|hit|hits|target|targets|pound|pounds)"

_Cues = tuple[tuple[Direction, re.Pattern[str]], ...]


@functools.cache
def _threat_cues() -> _Cues:
    """The cues of a US side threatened or named a target (part of ``_latin_cues``, in its order)."""
    return (
        # threatened: "factions threaten usa raid force", "new usa commandos will be primary target"
        (
            Direction.US_TARGETED,
            re.compile(
                rf" (?:threaten|threatens|threatened|threatening|vow to fight|vows to fight|vowed to fight) "
                rf"(?:the |a |an |any |new )?{_US}"
            ),
        ),
        (
            Direction.US_TARGETED,
            re.compile(
                rf" {_US}(?: \w+){{0,3}} (?:will be|would be|are|is) (?:a |the )?(?:primary |legitimate |main )?"
                rf"targets?\b"
            ),
        ),
        # hunted: "any usa raiding force will be chased down", "american raiders will be pursued"
        (
            Direction.US_TARGETED,
            re.compile(rf" {_US}(?: \w+){{0,4}} (?:will|would) be (?:chased|hunted|pursued|fought|resisted)\b"),
        ),
        # named a target: "faction calls usa reinforcements a target", "makes american forces in iraq a target"
        (
            Direction.US_TARGETED,
            re.compile(
                rf" (?:call|calls|called|declare|declares|declared|deem|deems|deemed|consider|considers|considered|"
                rf"make|makes|made) "
                rf"(?:the |any |all |new )?{_US}(?: \w+){{0,3}} (?:a |the )?(?:primary |legitimate |main )?targets?\b"
            ),
        ),
    )


@functools.cache
def _latin_cues() -> _Cues:
    """The cues in Latin script, compiled on first use: most commands and most articles never need them."""
    return (
        # passive or harm: "usa troops wounded", "americans killed in", "usa base hit by"
        (Direction.US_TARGETED, re.compile(rf" {_US_TARGET} (?:\w+ ){{0,2}}{_HARMED} ")),
        (Direction.US_TARGETED, re.compile(rf" {_HOSTING}(?: \w+){{0,3}} {_HARMED} ")),
        # harm done to them, told in the active: "missile attack on iraqi base wounds usa troops"
        (Direction.US_TARGETED, re.compile(rf" (?:wounds|injures|kills|hurts) (?:\w+ ){{0,2}}{_US_TARGET}")),
        # object of an attack: "rocket attack on usa base", "drones target american troops", "fire at the embassy"
        (
            Direction.US_TARGETED,
            re.compile(rf" {_ATTACK_NOUN} (?:\w+ ){{0,3}}{_TOWARDS} (?:\w+ ){{0,2}}(?:{_US_TARGET}|{_HOSTING})"),
        ),
        (
            Direction.US_TARGETED,
            re.compile(rf" (?:on|at|against|targeting) (?:the |a |an )?(?:{_US_TARGET}|{_HOSTING})"),
        ),
        *_threat_cues(),
        # the deed done to it, as a noun: "claims bombing of usa convoy", "the torching of american trucks"
        (
            Direction.US_TARGETED,
            re.compile(
                rf" (?:bombing|bombings|ambush|ambushing|burning|torching|shelling|targeting|attack|attacks) of "
                rf"(?:the |a |an )?(?:{_US_TARGET}|{_HOSTING})"
            ),
        ),
        # what the US side is supplied with: "bombs hit trucks carrying supplies for the usa led coalition"
        (Direction.US_TARGETED, re.compile(rf" (?:supplies|supply|logistics|fuel) (?:for|of|to) (?:the )?{_US}")),
        # militias' weapons: the US side does not fire "rocket strikes" in Iraq
        (Direction.US_TARGETED, re.compile(rf" {_MILITIA_WEAPON} (?:strike|strikes|attack|attacks|barrage|fire) ")),
        (
            Direction.US_TARGETED,
            re.compile(rf" (?:{_ACT_VERB}|{_ASSAULT}) (?:the |a |an )?(?:{_US_TARGET}|{_HOSTING})"),
        ),
        # the US side acting: "killed by a usa drone", "usa airstrike kills", "pentagon strikes", "usa hits back",
        # and reactions to its strikes: "iraq summons usa ambassador over usa airstrikes"
        (Direction.US_ACTS, re.compile(rf" (?:over|after|following|for) (?:the |a )?{_US} {_US_STRIKE_NOUN}")),
        (Direction.US_ACTS, re.compile(rf" (?:killed|hit|targeted|struck) (?:in|by) (?:an? )?{_US} {_US_STRIKE_NOUN}")),
        (
            Direction.US_ACTS,
            re.compile(rf" {_US} (?:\w+ )?{_US_STRIKE_NOUN} (?:\w+ ){{0,2}}{_LANDS}"),
        ),
        (
            Direction.US_ACTS,
            re.compile(rf" {_US} (?:{_US_MEANS} ){{0,2}}{_ACT_VERB} "),
        ),
        *_answer_cues(),
    )


@functools.cache
def _answer_cues() -> _Cues:
    """The US side's answer to an attack, named by what it is rather than by who made it (part of
    ``_latin_cues``, last): "retaliatory strikes hit five weapons depots after Taji deaths", "overnight raids
    answered Tuesday's missile", "gunship hits launch vehicle after Al Asad attack". The factions' and Iran's answers
    name their target ("retaliatory strike on usa base") or themselves ("iran retaliatory strikes")."""
    return (
        (
            Direction.US_ACTS,
            re.compile(
                r"(?<! iran)(?<! iranian)(?<! tehran)(?<! irgc)(?<! guards)(?<! militia)(?<! militias)(?<! faction)"
                r" (?:retaliatory|reprisal|punitive) (?:air ?strikes|airstrikes|strikes|raids|air raids|bombing) "
                rf"(?!(?:\w+ ){{0,3}}(?:on|at|against|targeting) (?:the |a |an )?(?:{_US}|{_HOSTING}))"
            ),
        ),
        (
            Direction.US_ACTS,
            re.compile(r" (?:air ?strikes|airstrikes|raids|air raids) (?:\w+ )?(?:answer|answered|avenge|avenged) "),
        ),
        (Direction.US_ACTS, re.compile(rf" gunships? (?:\w+ )?{_ACT_VERB} ")),
    )


# Arabic-script cues, in the normal form (folded letters, no article; Sorani ئ reads ی).
_US_ADJ = r"(?:امریکیه|امریکی|امیرکیه|امیرکی|امریکا|امریکایی|یەمریکا|یەمریکی)"
_AS_STRIKE = (
    r"(?:غاره|غارات|قصف|ضربه|ضربات|هجوم|عدوان|طایره|طایرات|مسیره|طیران|مقاتلات|حمله|حملات|بمباران|تجاوز|پهپاد|"
    r"جنگنده|جنگنده ها|هێرشی|هێرشە|هێرشەکانی|بۆردومانی|درۆنی|درۆنێکی|فڕۆکەی|فڕۆکە)"
)
_AS_ATTACK = r"(?:استهداف|استهدف|استهدفت|هجوم|هجمات|قصف|صواریخ|مسیره|مسیرات|حمله|حملات|موشک|پهپاد|راکت|هێرش\S*)"
_AS_POST = r"(?:قاعده|قواعد|قوات|رتل|سفاره|جنود|پایگاه|پایگاه های|نیروهای|سفارت|کاروان|نظامیان|بنکەی|بنکە|هێزەکانی)"
_AS_OWNER = rf"(?:{_US_ADJ}|احتلال|اشغالگر|اشغالگران|داگیرکەر|تحالف|ایتلاف)"
_AS_HIT = r"(?:هدف قرار گرفت|مورد حمله قرار گرفت|کرایە یامانج|تعرضت|تعرض)"
# A site named as hosting the US side: "معسكر يضم مدربين أمريكيين", "پادگان محل استقرار مستشاران آمریکایی",
# "سەربازگەیەک کە ڕاهێنەرانی ئەمریکی تێدایە" (the camp that has American trainers in it).
_AS_SITE = r"(?:معسکر|قاعده|قواعد|مقر|مطار|پایگاه\S*|پادگان\S*|فرودگاه\S*|سەربازگە\S*|بنکە\S*|فڕۆکەخانە\S*)"
_AS_HOSTS = (
    r"(?:یضم|تضم|یستضیف|تستضیف|یتواجد فیه|تتواجد فیها|یوجد فیه|توجد فیها|یقیم فیه|تقیم فیها|یتمرکز فیه|"
    r"تتمرکز فیها|میزبان|محل استقرار|محل حضور)"
)
_AS_US_SIDE = rf"(?:{_US_ADJ}\S*|تحالف|ایتلاف|هاوپەیمان\S*)"


@functools.cache
def _arabic_script_cues() -> _Cues:
    return (
        (Direction.US_ACTS, re.compile(rf" {_AS_STRIKE}(?: جویه| هوایی| یاسمانیی| پهپادی)? {_US_ADJ} ")),
        (
            Direction.US_ACTS,
            re.compile(rf" (?:{_US_ADJ}|واشنطن|قوات امریکیه|جیش امریکی) (?:تقصف|تستهدف|تشن|قصفت|استهدفت|شنت) "),
        ),
        (Direction.US_TARGETED, re.compile(rf" {_AS_ATTACK}(?: \S+){{0,4}} {_AS_POST}(?: \S+){{0,3}} {_AS_OWNER} ")),
        (Direction.US_TARGETED, re.compile(rf" {_AS_POST}(?: \S+){{0,2}} {_AS_OWNER}(?: \S+){{0,3}} {_AS_HIT} ")),
        (Direction.US_TARGETED, re.compile(rf" {_AS_SITE} {_AS_HOSTS}(?: \S+){{0,2}} {_AS_US_SIDE} ")),
        (Direction.US_TARGETED, re.compile(rf" {_AS_SITE} کە(?: \S+){{0,3}} {_AS_US_SIDE}(?: \S+)? تێدا\S* ")),
    )


def direction(text: str) -> Direction | None:
    """The direction of the first cue in ``text`` (normalised), or None when no cue is found."""
    best: tuple[int, Direction] | None = None
    for kind, pattern in _latin_cues() if text.isascii() else (*_latin_cues(), *_arabic_script_cues()):
        m = pattern.search(text)
        if m is not None and (best is None or m.start() < best[0]):
            best = (m.start(), kind)
    return best[1] if best else None
