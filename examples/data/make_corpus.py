"""Writes corpus.txt, the small text corpus of examples/word2vec.py (run once;
the output is committed). Sentences about a made-up valley, from templates
whose slots take words of one kind (animals, colours, days, foods, places,
trades, vehicles, numbers, weather), so that words of a kind share contexts."""
import os

import numpy as np

KINDS = {
    "animal": "cat dog horse cow sheep goat rabbit fox wolf bear deer owl".split(),
    "colour": "red blue green yellow orange purple white black brown grey".split(),
    "day": "monday tuesday wednesday thursday friday saturday sunday".split(),
    "food": "bread cheese apples soup rice fish cake milk honey beans".split(),
    "place": "river forest village market harbour garden valley mountain field bridge".split(),
    "trade": "farmer teacher doctor baker sailor painter miner pilot weaver smith".split(),
    "vehicle": "cart boat train wagon bicycle ferry sledge barge".split(),
    "number": "two three four five six seven eight nine ten".split(),
    "weather": "rain snow wind fog sunshine thunder frost hail".split(),
}

TEMPLATES = [
    "the {animal} sleeps near the {place} .",
    "on {day} the {trade} sells {food} at the {place} .",
    "the {trade} paints the {vehicle} {colour} .",
    "a {colour} {vehicle} waits by the {place} on {day} .",
    "the {trade} counts {number} {animal} in the {place} .",
    "after the {weather} the {animal} runs to the {place} .",
    "every {day} the {trade} eats {food} with {food} .",
    "the {trade} takes the {vehicle} to the {place} .",
    "{number} {colour} boxes of {food} came on the {vehicle} .",
    "the {weather} kept the {trade} at home on {day} .",
    "the {animal} likes {food} more than {food} .",
    "we saw a {colour} {animal} by the {place} in the {weather} .",
    "the old {trade} and the young {trade} met on {day} .",
    "between {day} and {day} the {vehicle} carried {number} sacks of {food} .",
    "the {place} was {colour} after the {weather} .",
    "the {trade} fed the {animal} some {food} .",
]


def main(path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.txt"),
         sentences=1500, seed=0):
    rng = np.random.RandomState(seed)
    lines = []
    for _ in range(sentences):
        template = TEMPLATES[rng.randint(len(TEMPLATES))]
        words = []
        for token in template.split():
            if token.startswith("{"):
                kind = token.strip("{}")
                words.append(KINDS[kind][rng.randint(len(KINDS[kind]))])
            else:
                words.append(token)
        lines.append(" ".join(words))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(main())
