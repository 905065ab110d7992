"""V3 (Python): backfills each person's generation from the year they were born.

The rule lives in plain Python; the rows go back in one UNWIND statement inside
the migration's transaction. ``down`` removes the property again.
"""

from collections import Counter

DESCRIPTION = "Backfill generations"

# First birth year *after* each generation, in order.
GENERATIONS = [
    (1946, "Silent"),
    (1965, "Boomer"),
    (1981, "Gen X"),
    (1997, "Millennial"),
    (2013, "Gen Z"),
]


def generation(born: int) -> str:
    for before, name in GENERATIONS:
        if born < before:
            return name
    return "Gen Alpha"


def up(ctx):
    people = ctx.run("MATCH (p:Person) RETURN p.id AS id, p.born AS born")
    if not people:
        raise LookupError("no people to backfill: did V2 import them?")
    updates = [{"id": p["id"], "generation": generation(p["born"])} for p in people]
    ctx.run(
        "UNWIND $updates AS u MATCH (p:Person {id: u.id}) SET p.generation = u.generation",
        updates=updates,
    )
    counts = Counter(u["generation"] for u in updates)
    ctx.info("generations: " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())))


def down(ctx):
    ctx.remove_property("Person", "generation")
