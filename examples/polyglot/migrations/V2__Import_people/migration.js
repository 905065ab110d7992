// V2 (JavaScript): imports data/people.json through tracked batches: one Person
// node per entry (its city still a plain property) and FRIEND_OF relationships.
// No down step: `graphmig down` reverts it by deleting exactly what the batches
// created.
import { endpoint } from "graphmig";

export const description = "Import people from JSON";

export function up(ctx) {
  const people = ctx.readJson("people.json");
  if (!Array.isArray(people) || people.length === 0) {
    throw new Error("people.json holds no people");
  }
  const created = ctx.batch("people").createNodes(
    "Person",
    people.map(({ id, name, born, city }) => ({ id, name, born, city })),
  );
  const friendships = people.flatMap((p) => p.friends.map((friend) => ({ from: p.id, to: friend })));
  const linked = ctx
    .batch("friendships")
    .createRelationships("FRIEND_OF", endpoint("Person", "id", "from"), endpoint("Person", "id", "to"), friendships);
  if (created !== people.length) {
    throw new Error(`created ${created} people, expected ${people.length}`);
  }
  ctx.log.info(`imported ${created} people and ${linked} friendships`);
}
