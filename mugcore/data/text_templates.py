"""English sentence material for synthetic transcripts: review-like clauses whose polarity
and strength follow a clip's text sentiment.

Every word is lower case and free of punctuation so that bert-base-uncased tokenisation
decodes back to exactly the same string; each clause stays short so that three of them fit
into the shortest preset text length (39 tokens) without truncation.
"""

import numpy as np

# Ordered from most negative to most positive; `LEVEL_EDGES` maps r = s_t / H in [-1, 1]
# onto these levels (|r| < 0.1 is neutral, 0.1-0.3 weak, 0.3-0.6 plain, >= 0.6 strong).
LEVELS = ("strong_neg", "neg", "weak_neg", "neutral", "weak_pos", "pos", "strong_pos")
LEVEL_EDGES = np.array([-0.6, -0.3, -0.1, 0.1, 0.3, 0.6])

ADJECTIVES = {
    "strong_neg": ("terrible", "awful", "horrible", "dreadful", "pathetic", "unbearable"),
    "neg": ("bad", "poor", "disappointing", "annoying", "silly", "messy"),
    "weak_neg": ("slow", "boring", "dull", "weak", "predictable", "bland"),
    "neutral": ("ordinary", "average", "typical", "normal", "long", "different"),
    "weak_pos": ("decent", "fine", "pleasant", "solid", "charming", "fun"),
    "pos": ("good", "great", "enjoyable", "funny", "lovely", "impressive"),
    "strong_pos": ("amazing", "fantastic", "wonderful", "brilliant", "excellent", "outstanding"),
}

# Words in front of the adjective; "" means none. Weak levels also use negated
# opposites ("not bad", "not that great"), as people do.
MODIFIERS = {
    "strong_neg": ("really", "absolutely", "truly", "just", "so"),
    "neg": ("", "pretty", "quite", "very"),
    "weak_neg": ("a little", "kind of", "somewhat", "slightly", "not that", "not very"),
    "neutral": ("", "pretty", "fairly", "kind of"),
    "weak_pos": ("", "fairly", "kind of", "not too", "not that", "reasonably"),
    "pos": ("", "pretty", "quite", "very"),
    "strong_pos": ("really", "absolutely", "truly", "incredibly", "so"),
}
# Negated modifiers take their adjective from the opposite side.
NEGATED_SOURCE = {"weak_neg": "pos", "weak_pos": "neg"}
NEGATIONS = ("not that", "not very", "not too")

# (noun phrase, verb) pairs; the verb agrees with the noun.
SUBJECTS = (
    ("the movie", "was"), ("the film", "was"), ("the story", "was"), ("the acting", "was"),
    ("the plot", "was"), ("the ending", "was"), ("the music", "was"), ("the dialogue", "was"),
    ("the script", "was"), ("the soundtrack", "was"), ("the characters", "were"),
    ("the jokes", "were"), ("the action scenes", "were"), ("the effects", "were"),
)

# Frames around "<subject> <verb> <modifier> <adjective>".
FRAMES = (
    "{clause}", "i thought {clause}", "honestly {clause}", "overall {clause}",
    "i felt that {clause}", "in my opinion {clause}", "i would say {clause}",
    "to be honest {clause}", "i think {clause}",
)

# Clauses without sentiment that pad a transcript with content.
FILLERS = (
    "i saw it last weekend", "i went with my friends", "it is about a family in a small town",
    "the main character is a teacher", "it runs about two hours", "i watched it at home",
    "there are a lot of scenes in the city", "it came out last year", "my sister told me about it",
    "it is based on a book", "the director made a few other films", "we talked about it after",
    "i had heard a lot about it", "it starts in the summer", "most of it is set at night",
)

CONNECTIVES = ("and", "but", "so", "and then", "also")


def sentiment_words() -> tuple[str, ...]:
    """Every word that carries polarity or its strength (adjectives, modifiers, negations)."""
    words = {w for group in ADJECTIVES.values() for w in group}
    words |= {w for group in MODIFIERS.values() for phrase in group for w in phrase.split()}
    return tuple(sorted(words))


def compose_transcripts(r_text: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One transcript per clip: a sentiment clause matching r_text (in [-1, 1]), sometimes a
    second one of the same polarity, and up to two neutral fillers, in random order."""
    n = len(r_text)
    level = np.searchsorted(LEVEL_EDGES, r_text, side="right")  # index into LEVELS
    n_sent = 1 + (rng.random(n) < 0.35)
    # At most three clauses in all, so the longest transcript stays under 39 tokens.
    n_fill = np.minimum(rng.integers(0, 3, size=n), 3 - n_sent)
    picks = rng.integers(0, 1 << 30, size=(n, 12))  # random choices, consumed below
    out: list[str] = []
    for i in range(n):
        p = picks[i]
        clauses = [_sentiment_clause(LEVELS[level[i]], p[2 * k:2 * k + 2], p[4 + k])
                   for k in range(n_sent[i])]
        clauses += [FILLERS[p[6 + k] % len(FILLERS)] for k in range(n_fill[i])]
        order = np.argsort(p[8:8 + len(clauses)] % 97, kind="stable")
        text = clauses[order[0]]
        for k, j in enumerate(order[1:]):
            text += f" {CONNECTIVES[(p[11] + k) % len(CONNECTIVES)]} {clauses[j]}"
        out.append(text)
    return out


def _sentiment_clause(level: str, subj_frame: np.ndarray, pick: int) -> str:
    noun, verb = SUBJECTS[subj_frame[0] % len(SUBJECTS)]
    frame = FRAMES[subj_frame[1] % len(FRAMES)]
    modifier = MODIFIERS[level][pick % len(MODIFIERS[level])]
    source = NEGATED_SOURCE[level] if modifier in NEGATIONS else level
    adjective = ADJECTIVES[source][(pick // 7) % len(ADJECTIVES[source])]
    words = " ".join(w for w in (noun, verb, modifier, adjective) if w)
    return frame.format(clause=words)
