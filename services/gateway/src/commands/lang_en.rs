//! English phrases.

use super::CommandKind::{
    Access, Erase, Export, LimitSensitive, Object, OptOutAiTraining, OptOutSale, Rectify, Restrict,
    WithdrawConsent,
};
use super::rules::{Cues, Language, fixed, rule};

/// English rules.
pub(crate) const LANGUAGE: Language = Language {
    code: "en",
    fragments: &[
        (
            "MY",
            "(?:all (?:of )?|any (?:of )?|every bit of )?(?:my|our)",
        ),
        (
            "PD",
            "(?:personal |private |user |customer |account |stored )?(?:data|information|info|details|records?)",
        ),
        // Without "details"/"records": "send me my details" is usually a login question.
        (
            "PD2",
            "(?:personal |private |user |customer |account |stored )?(?:data|information|info)",
        ),
        (
            "ABOUT",
            "(?:on|about|of|regarding|concerning|related to|relating to) (?:me|us)",
        ),
        (
            "HOLD",
            "(?:that )?(?:you|u|you guys|your company|your system|you've)(?: (?:have|hold|store|keep|kept|collected|got|saved|know|process|processed|gathered|retain))?(?: (?:stored|saved|collected|got))?",
        ),
        (
            "ERASE",
            "(?:delete|erase|remove|wipe|purge|destroy|scrub|forget|get rid of|clear)",
        ),
        (
            "NOT",
            "(?:don't|do not|dont|never|no longer|not|stop|without|exclude|refuse|(?:rather|prefer(?: it)?(?: if)?) you (?:didn't|did not|wouldn't|would not))",
        ),
        (
            "CONTENT",
            "(?:personal )?(?:data|chats?|conversations?|messages?|content|information|info|inputs?|prompts?|texts?|questions|answers|chat history|conversation history)",
        ),
        (
            "MARKETING",
            "(?:marketing|promotional|promo|advertising|adverts?|ads|newsletters?|offers|spam|promotions|commercial|deals|sales)",
        ),
    ],
    rules: &[
        rule(Erase, 0.9, "{ERASE}(?: out| off)? {MY} {PD}"),
        rule(
            Erase,
            0.9,
            "{ERASE}(?: all| any| everything| whatever| all the| the| any of the)?(?: personal)?(?: data| information| info| records| details)? {HOLD} {ABOUT}",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}(?: all| any| every| the| all the)?(?: personal)? (?:data|information|info|records|details) {ABOUT}",
        ),
        rule(Erase, 0.88, "{ERASE} (?:everything|all) {ABOUT}"),
        rule(
            Erase,
            0.8,
            "{ERASE} (?:my|our) (?:user |customer |online |whole |entire )?(?:account|profile)",
        ),
        rule(
            Erase,
            0.7,
            "{ERASE} (?:all )?(?:of )?(?:my|our) (?:chat history|conversation history|conversations|chats|chat logs|transcripts)",
        ),
        rule(
            Erase,
            0.9,
            "forget (?:about )?(?:me|us|who i am|everything (?:you know )?about me|{MY} {PD})",
        ),
        rule(
            Erase,
            0.95,
            "right to (?:be forgotten|erasure|deletion|be deleted)",
        ),
        rule(
            Erase,
            0.9,
            "(?:erasure|deletion|removal) (?:of|request for) {MY} {PD}|(?:data )?(?:erasure|deletion) request",
        ),
        rule(
            Erase,
            0.9,
            "(?:want|need|would like|'d like|demand|request|require|ask for) {MY} {PD} (?:to be |be )?(?:deleted|erased|removed|wiped|destroyed|gone|purged)",
        ),
        rule(
            Erase,
            0.88,
            "{MY} {PD} (?:must|should|has to|needs to|have to|need to|shall) be (?:deleted|erased|removed|wiped|destroyed|purged)",
        ),
        rule(
            Erase,
            0.88,
            "(?:delete|remove|erase|wipe) (?:me|us) from (?:your|the|all your|all) (?:system|systems|database|databases|records|servers|files|platform|service)",
        ),
        rule(Erase, 0.9, "(?:want|wish|like|demand|ask) to be forgotten"),
        rule(
            Erase,
            0.8,
            "{ERASE} (?:everything|it all|all of it)~2 (?:my|our) (?:account|data|profile|information)",
        ),
        fixed(
            OptOutAiTraining,
            0.9,
            "{NOT} (?:use|using) (?:anything|whatever|everything|what) (?:i|we) (?:write|say|type|send|share|tell you|ask)~4 (?:train[a-z]*|fine(?:-| )?tun[a-z]*)",
        ),
        fixed(
            Erase,
            0.8,
            "(?:don't|do not|dont|no longer) want to be (?:in|on) (?:your|the) (?:database|system|systems|records|files|servers)",
        ),
        rule(
            Erase,
            0.8,
            "(?:want|need|would like|'d like) (?:my|our) (?:account|profile)~5 (?:deleted|erased|removed|wiped)",
        ),
        rule(
            Access,
            0.9,
            "(?:what|which) (?:kind of |kinds of |sort of |type of |types of )?(?:personal )?(?:data|information|info|details|records)(?: do| does| have| did)? {HOLD}~2 {ABOUT}",
        ),
        rule(
            Access,
            0.8,
            "what do (?:you|u|you guys) (?:know|have|store|keep|hold) (?:about|on) (?:me|us)",
        ),
        rule(
            Access,
            0.85,
            "(?:what|which) (?:personal )?(?:data|information|info) (?:of mine|about me|on me) (?:do|does|have|did) (?:you|u)",
        ),
        rule(
            Access,
            0.88,
            "(?:show|tell|list) (?:me|us) (?:all )?(?:the |what |which )?(?:personal )?(?:data|information|info|details|records) {HOLD}~1 {ABOUT}",
        ),
        rule(
            Access,
            0.85,
            "(?:show|tell|list) (?:me|us) (?:everything|all|what) (?:you )?(?:know|have|hold|store) (?:about|on) (?:me|us)",
        ),
        rule(
            Access,
            0.85,
            "(?:access to|see|view|review|inspect|look at|show me) {MY} (?:personal |private |stored )?(?:data|information|info)",
        ),
        rule(
            Access,
            0.95,
            "(?:data )?subject access request|dsar|right (?:of|to) access|(?:gdpr|data) access request",
        ),
        rule(
            Access,
            0.7,
            "(?:do|are|did) (?:you|u) (?:store|storing|keep|keeping|collect|collecting|have|hold|holding|save|saving|process|processing)~2 (?:data|information|info|records) {ABOUT}",
        ),
        rule(
            Export,
            0.88,
            "(?:export|download|send|email|e-mail|mail|give|transfer|port|hand over|forward) (?:me |us )?{MY} {PD2}",
        ),
        rule(
            Export,
            0.88,
            "cop(?:y|ies) of {MY} {PD2}|cop(?:y|ies) of (?:all )?(?:the |any )?(?:personal )?(?:data|information|info) {HOLD}~1 {ABOUT}",
        ),
        rule(
            Export,
            0.88,
            "(?:send|give|email|e-mail|mail) (?:me|us) (?:all )?(?:the )?(?:personal )?(?:data|information|info) {HOLD}~1 {ABOUT}",
        ),
        rule(
            Export,
            0.92,
            "data portability|right to (?:data )?portability|portable (?:copy|format)|machine(?:-| )readable (?:copy|format|export)",
        ),
        rule(
            Export,
            0.7,
            "(?:export|download) {MY} (?:account|profile|chat history|conversation history|conversations|chats)",
        ),
        rule(
            Export,
            0.85,
            "request (?:a |my )?data export|export of {MY} {PD2}",
        ),
        rule(
            Rectify,
            0.82,
            "(?:correct|rectify|fix|amend|update) {MY} (?:personal |stored )?(?:data|information|info|record|records)",
        ),
        rule(
            Rectify,
            0.85,
            "(?:correct|rectify) (?:my|our) (?:personal )?details|(?:fix|amend|update) (?:my|our) personal details",
        ),
        rule(
            Rectify,
            0.88,
            "(?:correct|rectify|fix|amend|update) (?:the )?(?:personal )?(?:data|information|info|details|records?) {HOLD}~1 {ABOUT}",
        ),
        fixed(
            Rectify,
            0.85,
            "(?:my|our) (?:personal |stored )?(?:data|information|info|details|name|surname|last name|first name|full name|email|e-mail|email address|e-mail address|date of birth|birth date|birthday|phone number|mobile number|address|home address|postal address|record|records)(?: {HOLD}| in your (?:system|records|database|files)| on file| on record)? (?:is|are|was|were|seems|seem to be|appears to be|is still|are still) (?:wrong|incorrect|inaccurate|misspelled|misspelt|spelled wrong|spelt wrong|out of date|outdated|not correct|not right|not accurate|not up to date|wrongly recorded)",
        ),
        rule(
            Rectify,
            0.85,
            "(?:you|you've|you have) (?:got |spelled |spelt |wrote |written |recorded |stored |misspelled |misspelt |have )?(?:my|our) (?:name|surname|email|e-mail|email address|e-mail address|address|date of birth|birthday|phone number|details|data|information)(?: down)?(?: spelled| spelt| written)? (?:wrong|incorrect|incorrectly|wrongly)|you (?:have )?(?:misspelled|misspelt) (?:my|our) (?:name|surname|email|e-mail|address)",
        ),
        fixed(
            Rectify,
            0.85,
            "(?:the )?(?:personal )?(?:data|information|info|details|records?|name|email|e-mail|email address|e-mail address|address|phone number|number|date of birth|birthday) {HOLD}~1 (?:for|on|of|about) (?:me|us) (?:is|are|was|were) (?:wrong|incorrect|inaccurate|out of date|outdated|not correct|not accurate|not up to date)",
        ),
        rule(
            Rectify,
            0.95,
            "right to rectification|rectification (?:of {MY} {PD}|request)",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:withdraw|withdrawing|withdrawal of|revoke|revoking|revocation of|retract|rescind|take back|pull) (?:my |all my |all of my |the |any |this )?(?:consents?|permissions?|opt(?:-| )in|agreement to)",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "i (?:no longer|don't|do not|dont|hereby do not|now no longer) (?:consent|give (?:my |you )?(?:consent|permission)|agree to (?:the |you |your )?(?:processing|use|using|storing|collecting|sharing))",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "stop (?:using|processing|collecting|storing|tracking|sharing|analy[sz]ing|keeping|profiling|harvesting|mining) (?:all )?(?:of )?(?:my|our) (?:personal )?(?:data|information|info|details|messages|chats|conversations|activity|behaviou?r|email|e-mail|email address)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "stop (?:tracking|profiling|monitoring) (?:me|us)",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "stop (?:sending|emailing|e-mailing|texting|mailing|spamming|calling|contacting|messaging|bombarding) (?:me|us)~3 {MARKETING}|stop spamming (?:me|us)",
        ),
        fixed(
            WithdrawConsent,
            0.9,
            "(?:unsubscribe|opt (?:me |us )?out|remove (?:me|us|my (?:email|e-mail|address|email address|details|number))|take (?:me|us|my (?:email|address|name|details)) off|delete (?:me|my email|my e-mail|my email address) from)(?: me| us)?(?: from| of)? (?:your |the |all |all your |any )?(?:marketing|mailing|email|e-mail|newsletters?|promotional|advertising|sms|text|subscriber|contact)(?: lists?| emails| messages| communications| mails)?",
        ),
        fixed(WithdrawConsent, 0.7, "unsubscribe (?:me|us)"),
        fixed(
            WithdrawConsent,
            0.9,
            "(?:opt|opting) (?:me |us )?out (?:of|from) (?:the |all |any |your )?(?:marketing|newsletters?|analytics|tracking|personali[sz]ation|personali[sz]ed [a-z]+|profiling|advertising|targeted (?:ads|advertising)|cookies|data (?:collection|processing|sharing))",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:don't|do not|dont|never|no longer|stop) (?:use|using|process|processing|analy[sz]e|analy[sz]ing|share|sharing) (?:any )?(?:of )?(?:my|our) (?:personal )?(?:data|information|info|details|email|e-mail|email address|address|phone number|messages|chats|conversations|activity) (?:for|in|to|with)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "i (?:don't|do not|dont|no longer) want (?:to (?:receive|get) )?(?:any )?(?:more |further )?(?:your |the |these |those |this )?{MARKETING}(?: emails| messages| mails| calls| texts)?",
        ),
        fixed(
            WithdrawConsent,
            0.75,
            "no more {MARKETING}(?: emails| messages| mails| calls| texts)?",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:don't|do not|dont) want (?:you|u|you guys|your company) to (?:use|process|store|keep|analy[sz]e) {MY} {PD}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "{NOT}~4 (?:my|our|this|these|the|any of my|all my) {CONTENT}~5 (?:train[a-z]*|fine(?:-| )?tun[a-z]*|improve (?:your |the |any )?(?:ai|models?|algorithms?|llms?|chatbot|bot))",
        ),
        fixed(
            OptOutAiTraining,
            0.9,
            "(?:my|our|this|these) {CONTENT}~2 (?:aren't|are not|isn't|is not|won't be|will not be|shouldn't be|should not be|must not be|mustn't be|never be|not be|are never|is never)~2 (?:train[a-z]*|fine(?:-| )?tun[a-z]*)",
        ),
        fixed(
            OptOutAiTraining,
            0.95,
            "opt(?:ing)? (?:me |us )?out (?:of|from) (?:the |any |all |your )?(?:ai |model |llm |machine learning |data )?(?:training|model training|ai training|model improvement|training data)",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:exclude|remove|withhold|keep|leave|take) (?:my|our|this|these) (?:personal )?(?:data|chats?|conversations?|messages?|content|information|info)~2 (?:from|out of) (?:the |your |any |all )?(?:ai |model |llm )?(?:training|models?|datasets?|data sets?|training data|training sets?)",
        ),
        fixed(
            OptOutAiTraining,
            0.85,
            "no (?:ai |model )?training (?:on|with) (?:my|our)",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "{NOT} train[a-z]*(?: (?:your|the|any|an?))?(?: (?:ai|models?|llms?|algorithms?|chatbot|bot|systems?))?~2 (?:on|with|using) (?:my|our|this|these) {CONTENT}",
        ),
        rule(OptOutAiTraining, 0.93, "object to~6 train[a-z]*"),
        rule(
            Object,
            0.9,
            "i (?:hereby |strongly )?object to (?:the |any |all |your |you )?(?:processing|use|using|profiling|tracking|collection|collecting|analysis|analy[sz]ing|storing|storage|sharing|direct marketing|marketing|targeted)",
        ),
        rule(
            Object,
            0.92,
            "right to object|objection to (?:the |any )?(?:processing|profiling|use|direct marketing)",
        ),
        rule(
            Restrict,
            0.9,
            "(?:restrict|restriction of|restricting|limit|limitation of|limiting|freeze|block|suspend|pause|halt) (?:the |any |all |further )?(?:processing|use|usage) (?:of )?(?:my|our) (?:personal )?(?:data|information|info)",
        ),
        rule(
            Restrict,
            0.92,
            "right to (?:restrict|restriction)(?: of)?(?: processing)?|restriction of processing",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:do not|don't|dont|never|stop|no longer) (?:sell|selling|share|sharing|rent|trade|disclose)(?: or (?:sell|share|selling|sharing))? (?:any )?(?:of )?(?:my|our) (?:personal )?(?:data|information|info|details|email|e-mail|email address|phone number)",
        ),
        fixed(
            OptOutSale,
            0.95,
            "opt (?:me |us )?out (?:of|from) (?:the |any )?(?:sale|selling|sharing|sale or sharing)|do not sell(?: or share)? (?:my )?(?:personal )?(?:information|data|info)",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:don't|do not|dont) want (?:you |your company |you guys )?to (?:sell|share) {MY} {PD}|(?:don't|do not|dont) want {MY} {PD} (?:to be )?(?:sold|shared)",
        ),
        fixed(
            LimitSensitive,
            0.92,
            "limit (?:the )?(?:use|processing|disclosure|sharing) of (?:my )?sensitive (?:personal )?(?:data|information|info)",
        ),
    ],
    cues: Cues {
        negation: "don't|dont|do not|doesn't|does not|didn't|did not|never|not|won't|wouldn't|shouldn't|mustn't|must not|no need to",
        neutral: &[
            "know",
            "sure",
            "understand",
            "find",
            "remember",
            "figure",
            "see",
            "hesitate",
            "get",
        ],
        question: "why|how (?:do|does|can|could|would|should|to|long)|how's|is it possible|is there a way|where (?:do|can|could|should)|what (?:is|are|does|happens)|what's|explain|tell me about|do you (?:offer|support|allow|provide)|are you able",
        trailing_negation: "",
        subjects: &[
            "you", "u", "they", "we", "he", "she", "it", "that", "which", "who",
        ],
        past_auxiliaries: &[
            "have", "has", "had", "i've", "you've", "we've", "they've", "already",
        ],
        blocked_after: &[
            "usage",
            "plan",
            "plans",
            "roaming",
            "allowance",
            "limit",
            "limits",
            "bundle",
            "package",
            "pack",
            "connection",
            "speed",
            "volume",
            "cap",
            "balance",
        ],
        stopwords: &[
            "gdpr",
            "the",
            "and",
            "you",
            "my",
            "please",
            "i",
            "to",
            "of",
            "is",
            "your",
            "me",
            "it",
            "want",
            "what",
            "for",
            "with",
            "this",
            "under",
            "request",
            "according",
        ],
    },
};
