// graphmig JavaScript guest SDK: write a migration as plain functions over native JS values.
//
// A migration is a folder `migrations/V<n>__<description>/` whose `migration.js` exports
//
//     export const description = "Create the first people";   // optional
//     export const irreversible = false;                       // optional
//     export function up(ctx) { ... }                          // required
//     export function down(ctx) { ... }                        // optional
//
// and imports helpers, if it needs any, from "graphmig":
//
//     import { unique, rangeIndex, endpoint } from "graphmig";
//
//     export function up(ctx) {
//       ctx.createConstraint(unique("Person", ["id"]));
//       ctx.run("CREATE (:Person {id: $id, name: $name})", { id: 1, name: "Ada" });
//       const n = ctx.scalar("MATCH (p:Person) RETURN count(p) AS n");
//       ctx.log.info(`${n} people`);
//     }
//
// `graphmig build` bundles the migration with this file (esbuild) and turns the bundle
// into a component (componentize-js) whose `lifecycle` export is `lifecycleFor(module)`.
// Every statement of one step runs in one transaction that the host commits when the
// step returns and rolls back when it throws. Whatever a step throws becomes the
// step's error message (`Error: no people found`); nothing escapes as a trap.
//
// Values, both ways: null/undefined <-> null, boolean, number (a safe integer is sent
// as a Cypher INTEGER, any other number as a FLOAT; wrap a whole number in `float()` to
// send a FLOAT), bigint -> INTEGER, string, Uint8Array (or ArrayBuffer) -> bytes, Array
// (or another typed array) -> list, plain object or Map -> map, Date -> ISO-8601 text.
// Integers come back as numbers when they are safe integers and as bigints otherwise;
// nodes as `Node {id, labels, properties}`, relationships as
// `Relationship {id, start, end, type, properties}`, temporal values and points as text.

import {
  runCypher as hostRunCypher,
  createConstraint as hostCreateConstraint,
  dropConstraint as hostDropConstraint,
  createIndex as hostCreateIndex,
  dropIndex as hostDropIndex,
  schema as hostSchema,
  renameLabel as hostRenameLabel,
  renameType as hostRenameType,
  renameProperty as hostRenameProperty,
  addProperty as hostAddProperty,
  removeProperty as hostRemoveProperty,
  beginBatch as hostBeginBatch,
  openCreateNodes as hostOpenCreateNodes,
  openMergeNodes as hostOpenMergeNodes,
  openCreateRelationships as hostOpenCreateRelationships,
  deleteBatch as hostDeleteBatch,
  backfill as hostBackfill,
  log as hostLog,
  readDataset as hostReadDataset,
} from "graphmig:migration/context@0.1.0";

// Where this file sits in the bundle, so that error stacks can leave out the SDK's frames.
// One frame of a stack: SpiderMonkey's `name@file:line:col`, or V8's `at name (file:line:col)`.
function stackFrame(text) {
  const t = text.trim();
  let m = /^at (?:(.*) \()?(.*):(\d+):(\d+)\)?$/.exec(t);
  if (m) return { name: m[1] ?? "", file: m[2], line: Number(m[3]), column: Number(m[4]) };
  m = /^([^@\s]*)@(.*):(\d+):(\d+)$/.exec(t);
  return m ? { name: m[1], file: m[2], line: Number(m[3]), column: Number(m[4]) } : null;
}
function callerLine() {
  try {
    const frames = String(new Error().stack ?? "")
      .split("\n")
      .map(stackFrame)
      .filter((f) => f !== null);
    return frames[1] ?? null;
  } catch {
    return null;
  }
}
const SDK_START = callerLine();

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/** A statement (or a refactoring or batch write) failed, as the database or the host reported it. */
export class GraphError extends Error {
  constructor(kind, code, serverMessage) {
    super(`${code}: ${serverMessage}`);
    this.name = "GraphError";
    /** 'syntax' | 'constraint-violation' | 'transient' | 'forbidden' | 'other' */
    this.kind = kind;
    /** The server's status code (`Neo.ClientError.Statement.SyntaxError`) or a `graphmig.*` code. */
    this.code = code;
    /** The server's (or host's) message, without the code. */
    this.serverMessage = serverMessage;
  }

  /** Whether running the migration again may succeed (deadlock, leader switch). */
  get transient() {
    return this.kind === "transient";
  }
}

/** A schema operation the target cannot do ('unsupported') or that is malformed ('invalid'). */
export class SchemaError extends Error {
  constructor(kind, detail) {
    super(kind === "unsupported" ? `unsupported: ${detail}` : `invalid schema operation: ${detail}`);
    this.name = "SchemaError";
    /** 'unsupported' | 'invalid' */
    this.kind = kind;
    /** The host's text, such as `arcadedb does not support full-text indexes on nodes`. */
    this.detail = detail;
  }
}

/** A dataset could not be read ('not-found', 'forbidden', 'io') or decoded ('invalid'). */
export class DatasetError extends Error {
  constructor(kind, path, detail) {
    const what = { "not-found": "not found: ", forbidden: "forbidden: ", io: "", invalid: "" }[kind] ?? "";
    super(`${path}: ${what}${detail}`);
    this.name = "DatasetError";
    /** 'not-found' | 'forbidden' | 'io' | 'invalid' */
    this.kind = kind;
    /** The path that was asked for. */
    this.path = path;
    /** The host's (or decoder's) text. */
    this.detail = detail;
  }
}

// Host calls that return `result::err` throw a ComponentError (from the bindings' own
// realm, so `instanceof Error` is false) whose `payload` is the WIT error.
function hasPayload(e) {
  return e !== null && typeof e === "object" && Object.prototype.hasOwnProperty.call(e, "payload");
}

function graphError(e) {
  if (!hasPayload(e)) return e;
  const p = e.payload;
  return new GraphError(String(p.kind), String(p.code), String(p.message));
}

function schemaError(e) {
  if (!hasPayload(e)) return e;
  const p = e.payload;
  switch (p.tag) {
    case "graph":
      return new GraphError(String(p.val.kind), String(p.val.code), String(p.val.message));
    case "unsupported":
    case "invalid":
      return new SchemaError(p.tag, String(p.val));
    default:
      return new SchemaError("invalid", String(p.val ?? p.tag));
  }
}

function callGraph(f) {
  try {
    return f();
  } catch (e) {
    throw graphError(e);
  }
}

function callSchema(f) {
  try {
    return f();
  } catch (e) {
    throw schemaError(e);
  }
}

// ---------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------

/** A node returned by a query. */
export class Node {
  constructor(id, labels, properties) {
    /** The database's id of the node (a number, or a bigint beyond 2^53). */
    this.id = id;
    /** @type {string[]} */
    this.labels = labels;
    /** @type {Record<string, any>} */
    this.properties = properties;
  }
}

/** A relationship returned by a query. */
export class Relationship {
  constructor(id, start, end, type, properties) {
    this.id = id;
    /** The id of its start node. */
    this.start = start;
    /** The id of its end node. */
    this.end = end;
    /** Its type. */
    this.type = type;
    /** @type {Record<string, any>} */
    this.properties = properties;
  }
}

/** A number sent as a Cypher FLOAT even when it is whole: `float(1)`. */
export class Float {
  constructor(value) {
    this.value = Number(value);
  }
  valueOf() {
    return this.value;
  }
}

/** Marks a number to be sent as a Cypher FLOAT even when it is whole (`float(1)` is 1.0). */
export function float(value) {
  return new Float(value);
}

const MAX_DEPTH = 1024;
const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;

function describeType(v) {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return v.constructor && v.constructor.name ? v.constructor.name : "object";
}

function convertError(path, text) {
  return new TypeError(`${path}: ${text}`);
}

// Flattens a JS value into a WIT value tree (root at node 0).
function toWit(value, path) {
  const nodes = [];
  const ancestors = new Set();

  const push = (v, where, depth) => {
    if (depth > MAX_DEPTH) throw convertError(where, `nests deeper than ${MAX_DEPTH} levels`);
    const index = nodes.length;
    nodes.push({ tag: "null" });
    let node;
    switch (typeof v) {
      case "undefined":
        node = { tag: "null" };
        break;
      case "boolean":
        node = { tag: "boolean", val: v };
        break;
      case "number":
        node = Number.isSafeInteger(v) ? { tag: "integer", val: BigInt(v) } : { tag: "float", val: v };
        break;
      case "bigint":
        if (v < S64_MIN || v > S64_MAX) throw convertError(where, `${v} does not fit in a 64-bit integer`);
        node = { tag: "integer", val: v };
        break;
      case "string":
        node = { tag: "text", val: v };
        break;
      case "object":
        if (v === null) {
          node = { tag: "null" };
        } else if (v instanceof Float) {
          node = { tag: "float", val: v.value };
        } else if (v instanceof Uint8Array) {
          node = { tag: "bytes", val: v };
        } else if (v instanceof ArrayBuffer) {
          node = { tag: "bytes", val: new Uint8Array(v) };
        } else if (v instanceof Date) {
          if (Number.isNaN(v.getTime())) throw convertError(where, "is an invalid Date");
          node = { tag: "text", val: v.toISOString() };
        } else if (v instanceof Number || v instanceof String || v instanceof Boolean) {
          nodes.pop();
          return push(v.valueOf(), where, depth);
        } else if (v instanceof Node || v instanceof Relationship) {
          throw convertError(
            where,
            "nodes and relationships cannot be sent as parameters; send their ids or properties",
          );
        } else {
          if (ancestors.has(v)) throw convertError(where, "refers to itself (a cycle)");
          ancestors.add(v);
          if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
            const items = [];
            for (let i = 0; i < v.length; i++) items.push(push(v[i], `${where}[${i}]`, depth + 1));
            node = { tag: "list", val: items };
          } else if (v instanceof Map) {
            const entries = [];
            for (const [k, item] of v) {
              if (typeof k !== "string") throw convertError(where, `map keys must be strings, not ${describeType(k)}`);
              entries.push([k, push(item, `${where}.${k}`, depth + 1)]);
            }
            node = { tag: "map", val: entries };
          } else if (v instanceof Set) {
            const items = [];
            let i = 0;
            for (const item of v) items.push(push(item, `${where}[${i++}]`, depth + 1));
            node = { tag: "list", val: items };
          } else if (v instanceof DataView || v instanceof Promise || v instanceof RegExp || v instanceof Error) {
            throw convertError(where, `cannot send a ${describeType(v)} to the database`);
          } else {
            const entries = [];
            for (const k of Object.keys(v)) entries.push([k, push(v[k], `${where}.${k}`, depth + 1)]);
            node = { tag: "map", val: entries };
          }
          ancestors.delete(v);
        }
        break;
      default:
        throw convertError(where, `cannot send a ${typeof v} to the database`);
    }
    nodes[index] = node;
    return index;
  };

  push(value, path, 0);
  return { nodes };
}

function entriesOf(obj, what) {
  if (obj === undefined || obj === null) return [];
  if (obj instanceof Map) {
    return [...obj].map(([k, v]) => {
      if (typeof k !== "string") throw new TypeError(`${what}: names must be strings, not ${describeType(k)}`);
      return [k, v];
    });
  }
  if (typeof obj !== "object" || Array.isArray(obj)) {
    throw new TypeError(`${what} must be an object of name -> value (or a Map), not ${describeType(obj)}`);
  }
  return Object.keys(obj).map((k) => [k, obj[k]]);
}

// Named values (query parameters, one batch row) as WIT `params`.
function toParams(obj, what) {
  return entriesOf(obj, what).map(([k, v]) => [k, toWit(v, `${what} "${k}"`)]);
}

// Batch rows, converted one at a time as the batch writer takes them; whether `rows`
// is iterable at all is checked at once.
function toRows(rows, what) {
  if (rows === null || rows === undefined || typeof rows[Symbol.iterator] !== "function" || typeof rows === "string") {
    throw new TypeError(`${what} must be an array (or iterable) of objects, not ${describeType(rows)}`);
  }
  return convertRows(rows, what);
}

function* convertRows(rows, what) {
  let i = 0;
  for (const row of rows) {
    if (row === null || typeof row !== "object") {
      throw new TypeError(`${what}[${i}] must be an object, not ${describeType(row)}`);
    }
    yield toParams(row, `${what}[${i}]`);
    i++;
  }
}

// Rows handed to the host per write: the guest holds no more than this many converted
// rows at a time, and the host writes one chunk while the next is built.
const ROWS_PER_WRITE = 1000;

// Streams `rows` through the writer `open` opens; returns what they created.
function stream(open, rows) {
  const wit = toRows(rows, "rows");
  const writer = callGraph(open);
  try {
    if (Array.isArray(rows)) writer.expectRows(BigInt(rows.length));
    let piece = [];
    for (const row of wit) {
      piece.push(row);
      if (piece.length === ROWS_PER_WRITE) {
        callGraph(() => writer.write(piece));
        piece = [];
      }
    }
    if (piece.length > 0) callGraph(() => writer.write(piece));
    return count(callGraph(() => writer.finish()));
  } finally {
    if (typeof writer[Symbol.dispose] === "function") writer[Symbol.dispose]();
  }
}

function jsInteger(i) {
  return i >= BigInt(Number.MIN_SAFE_INTEGER) && i <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(i) : i;
}

function setProp(obj, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

// Rebuilds a JS value from a WIT tree the host sent.
function fromWit(tree) {
  const nodes = tree.nodes;
  const read = (index, depth) => {
    const node = nodes[index];
    if (node === undefined || depth > MAX_DEPTH) return null;
    const props = (entries) => {
      const obj = {};
      for (const [k, i] of entries) setProp(obj, k, read(i, depth + 1));
      return obj;
    };
    switch (node.tag) {
      case "null":
        return null;
      case "boolean":
        return node.val;
      case "integer":
        return jsInteger(node.val);
      case "float":
        return node.val;
      case "text":
      case "other":
        return node.val;
      case "bytes":
        return node.val instanceof Uint8Array ? node.val : Uint8Array.from(node.val);
      case "list":
        // The bindings may lift `list<u32>` as a Uint32Array, whose `map` would coerce.
        return Array.from(node.val, (i) => read(i, depth + 1));
      case "map":
        return props(node.val);
      case "graph-node":
        return new Node(jsInteger(node.val.id), node.val.labels, props(node.val.properties));
      case "graph-relationship": {
        const r = node.val;
        return new Relationship(jsInteger(r.id), jsInteger(r.start), jsInteger(r.end), r.relType, props(r.properties));
      }
      default:
        return null;
    }
  };
  return read(0, 0);
}

function str(value, what) {
  if (typeof value !== "string") throw new TypeError(`${what} must be a string, not ${describeType(value)}`);
  return value;
}

function strings(value, what) {
  if (typeof value === "string") return [value];
  if (value === null || value === undefined || typeof value[Symbol.iterator] !== "function") {
    throw new TypeError(`${what} must be a string or an array of strings, not ${describeType(value)}`);
  }
  return [...value].map((s, i) => str(s, `${what}[${i}]`));
}

function entityOf(options, what) {
  if (options === undefined || options === null) return "node";
  if (typeof options !== "object") throw new TypeError(`${what}: options must be an object like { relationship: true }`);
  return options.relationship ? "relationship" : "node";
}

function count(n) {
  return typeof n === "bigint" ? jsInteger(n) : n;
}

// ---------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------

const CONSTRAINT_KINDS = ["unique", "key", "exists", "property-type"];
const INDEX_KINDS = ["range", "text", "point", "fulltext", "vector"];
const ENTITIES = ["node", "relationship"];

/** A constraint: build one with `unique`, `key`, `exists` or `propertyType`. Immutable. */
export class Constraint {
  constructor({ name = null, entity = "node", label, properties, kind, propertyType = null }) {
    if (!CONSTRAINT_KINDS.includes(kind)) {
      throw new TypeError(`constraint kind must be one of ${CONSTRAINT_KINDS.join(", ")}, not ${JSON.stringify(kind)}`);
    }
    if (!ENTITIES.includes(entity)) throw new TypeError(`entity must be 'node' or 'relationship', not ${JSON.stringify(entity)}`);
    /** Its name, or null for the stable name the host derives (`person_email_unique`). */
    this.name = name === null || name === undefined ? null : str(name, "constraint name");
    /** 'node' | 'relationship' */
    this.entity = entity;
    /** The label, or the relationship type. */
    this.label = str(label, "constraint label");
    /** The properties, in order. */
    this.properties = strings(properties, "constraint properties");
    /** 'unique' | 'key' | 'exists' | 'property-type' */
    this.kind = kind;
    /** The Cypher type of a 'property-type' constraint (`STRING`, `INTEGER`, ...), else null. */
    this.propertyType = kind === "property-type" ? str(propertyType, "constraint property type") : null;
    Object.freeze(this.properties);
    Object.freeze(this);
  }

  /** The same constraint on relationships of type `label` instead of nodes. */
  onRelationships() {
    return new Constraint({ ...this, entity: "relationship" });
  }

  /** The same constraint with this name instead of the derived one. */
  named(name) {
    return new Constraint({ ...this, name: str(name, "constraint name") });
  }

  /** Values of `properties` (together) are unique among nodes labelled `label`. */
  static unique(label, properties) {
    return new Constraint({ label, properties, kind: "unique" });
  }

  /** `properties` exist and are unique together (a node key). */
  static key(label, properties) {
    return new Constraint({ label, properties, kind: "key" });
  }

  /** `property` exists (`IS NOT NULL`). */
  static exists(label, property) {
    return new Constraint({ label, properties: [str(property, "constraint property")], kind: "exists" });
  }

  /** `property` has the Cypher type `cypherType` (`STRING`, `INTEGER`, ...). */
  static propertyType(label, property, cypherType) {
    return new Constraint({
      label,
      properties: [str(property, "constraint property")],
      kind: "property-type",
      propertyType: cypherType,
    });
  }
}

/** An index: build one with `rangeIndex`, `textIndex`, `pointIndex`, `fulltextIndex` or `vectorIndex`. Immutable. */
export class Index {
  constructor({
    name = null,
    entity = "node",
    labels,
    properties,
    kind = "range",
    vectorDimensions = null,
    vectorSimilarity = null,
  }) {
    if (!INDEX_KINDS.includes(kind)) {
      throw new TypeError(`index kind must be one of ${INDEX_KINDS.join(", ")}, not ${JSON.stringify(kind)}`);
    }
    if (!ENTITIES.includes(entity)) throw new TypeError(`entity must be 'node' or 'relationship', not ${JSON.stringify(entity)}`);
    /** Its name, or null for the stable name the host derives. */
    this.name = name === null || name === undefined ? null : str(name, "index name");
    /** 'node' | 'relationship' */
    this.entity = entity;
    /** The labels or relationship types; several only for full-text. */
    this.labels = strings(labels, "index labels");
    /** The properties, in order. */
    this.properties = strings(properties, "index properties");
    /** 'range' | 'text' | 'point' | 'fulltext' | 'vector' */
    this.kind = kind;
    /** The dimensions of a vector index, else null. */
    this.vectorDimensions = vectorDimensions === null || vectorDimensions === undefined ? null : Number(vectorDimensions);
    if (this.vectorDimensions !== null && !(Number.isInteger(this.vectorDimensions) && this.vectorDimensions > 0 && this.vectorDimensions <= 0xffffffff)) {
      throw new TypeError(`vector dimensions must be a positive integer, not ${vectorDimensions}`);
    }
    /** The similarity function of a vector index ('cosine' or 'euclidean'), else null. */
    this.vectorSimilarity = vectorSimilarity === null || vectorSimilarity === undefined ? null : str(vectorSimilarity, "vector similarity");
    Object.freeze(this.labels);
    Object.freeze(this.properties);
    Object.freeze(this);
  }

  /** The same index on relationships instead of nodes. */
  onRelationships() {
    return new Index({ ...this, entity: "relationship" });
  }

  /** The same index with this name instead of the derived one. */
  named(name) {
    return new Index({ ...this, name: str(name, "index name") });
  }

  /** A range index (the default kind) on `properties` of `label`. */
  static range(label, properties) {
    return new Index({ labels: [str(label, "index label")], properties, kind: "range" });
  }

  /** A text index on `property` of `label`. */
  static text(label, property) {
    return new Index({ labels: [str(label, "index label")], properties: [str(property, "index property")], kind: "text" });
  }

  /** A point index on `property` of `label`. */
  static point(label, property) {
    return new Index({ labels: [str(label, "index label")], properties: [str(property, "index property")], kind: "point" });
  }

  /** A full-text index over `properties` of nodes with any of `labels`. */
  static fulltext(labels, properties) {
    return new Index({ labels, properties, kind: "fulltext" });
  }

  /** A vector index on `property` of `label`. */
  static vector(label, property, dimensions, similarity = "cosine") {
    return new Index({
      labels: [str(label, "index label")],
      properties: [str(property, "index property")],
      kind: "vector",
      vectorDimensions: dimensions,
      vectorSimilarity: similarity,
    });
  }
}

/** Values of `properties` (together) are unique among nodes labelled `label`. */
export const unique = (label, properties) => Constraint.unique(label, properties);
/** `properties` exist and are unique together (a node key). */
export const key = (label, properties) => Constraint.key(label, properties);
/** `property` exists (`IS NOT NULL`). */
export const exists = (label, property) => Constraint.exists(label, property);
/** `property` has the Cypher type `cypherType` (`STRING`, `INTEGER`, ...). */
export const propertyType = (label, property, cypherType) => Constraint.propertyType(label, property, cypherType);
/** A range index on `properties` of `label`. */
export const rangeIndex = (label, properties) => Index.range(label, properties);
/** A text index on `property` of `label`. */
export const textIndex = (label, property) => Index.text(label, property);
/** A point index on `property` of `label`. */
export const pointIndex = (label, property) => Index.point(label, property);
/** A full-text index over `properties` of nodes with any of `labels`. */
export const fulltextIndex = (labels, properties) => Index.fulltext(labels, properties);
/** A vector index on `property` of `label` (`similarity` 'cosine' or 'euclidean'). */
export const vectorIndex = (label, property, dimensions, similarity = "cosine") =>
  Index.vector(label, property, dimensions, similarity);

function asConstraint(c) {
  return c instanceof Constraint ? c : new Constraint(c ?? {});
}

function asIndex(i) {
  return i instanceof Index ? i : new Index(i ?? {});
}

function constraintToWit(c) {
  return {
    name: c.name ?? undefined,
    entity: c.entity,
    label: c.label,
    properties: [...c.properties],
    kind: c.kind === "property-type" ? { tag: "property-type", val: c.propertyType } : { tag: c.kind },
  };
}

function indexToWit(i) {
  return {
    name: i.name ?? undefined,
    entity: i.entity,
    labels: [...i.labels],
    properties: [...i.properties],
    kind: i.kind,
    vectorDimensions: i.vectorDimensions ?? undefined,
    vectorSimilarity: i.vectorSimilarity ?? undefined,
  };
}

function schemaElement(e) {
  const v = e.val;
  if (e.tag === "constraint") {
    return new Constraint({
      name: v.name ?? "",
      entity: v.entity,
      label: v.label,
      properties: v.properties,
      kind: v.kind.tag,
      propertyType: v.kind.tag === "property-type" ? v.kind.val : null,
    });
  }
  return new Index({
    name: v.name ?? "",
    entity: v.entity,
    labels: v.labels,
    properties: v.properties,
    kind: v.kind,
    vectorDimensions: v.vectorDimensions ?? null,
    vectorSimilarity: v.vectorSimilarity ?? null,
  });
}

// ---------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------

/**
 * How a batch finds one end of a relationship: the node labelled `label` whose property
 * `key` equals the row's field `field` (by default, a field named like the key).
 */
export function endpoint(label, key, field = key) {
  return { label: str(label, "endpoint label"), key: str(key, "endpoint key"), field: str(field, "endpoint field") };
}

function asEndpoint(e, what) {
  if (e === null || typeof e !== "object") throw new TypeError(`${what} must be an endpoint {label, key, field}`);
  return endpoint(e.label, e.key, e.field ?? e.key);
}

/** A tracked batch begun with `ctx.batch(name)`. */
export class Batch {
  constructor(id, name) {
    /** The batch id, as recorded in the ledger and on everything it wrote (`_graphmig_batch`). */
    this.id = id;
    /** The name it was begun with. */
    this.name = name;
    Object.freeze(this);
  }

  /**
   * Creates one `label` node per row (an object of properties); returns how many were
   * created. Rows (an array or any iterable, a generator too) are taken as they are
   * written, a thousand at a time, and the host writes one chunk while the next is
   * built. A chunk that fails fails the migration.
   */
  createNodes(label, rows) {
    const l = str(label, "label");
    return stream(() => hostOpenCreateNodes(this.id, l), rows);
  }

  /**
   * Merges one `label` node per row on the `key` properties; returns how many were
   * created (existing nodes get the row's properties but are not tagged).
   */
  mergeNodes(label, key, rows) {
    const keys = strings(key, "key");
    const l = str(label, "label");
    return stream(() => hostOpenMergeNodes(this.id, l, keys), rows);
  }

  /**
   * Creates one `type` relationship per row from the node `from` finds to the node
   * `to` finds; the row's other fields become its properties. Returns how many were created.
   */
  createRelationships(type, from, to, rows) {
    const f = asEndpoint(from, "from");
    const t = asEndpoint(to, "to");
    const ty = str(type, "type");
    return stream(() => hostOpenCreateRelationships(this.id, ty, f, t), rows);
  }

  /** Deletes exactly what this batch created; returns how many nodes and relationships went. */
  delete() {
    return count(callGraph(() => hostDeleteBatch(this.id)));
  }
}

// ---------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------

function formatValue(v, nested) {
  if (typeof v === "string") return nested ? JSON.stringify(v) : v;
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "undefined") return "undefined";
  if (typeof v === "function") return `[Function ${v.name || "anonymous"}]`;
  if (typeof v === "symbol") return v.toString();
  if (v !== null && typeof v === "object") {
    if (v instanceof Error || (typeof v.name === "string" && typeof v.message === "string" && "stack" in v)) {
      return errorText(v, false);
    }
    if (v instanceof Uint8Array) return `Uint8Array(${v.length}) [${Array.from(v.subarray(0, 32)).join(", ")}${v.length > 32 ? ", ..." : ""}]`;
    const seen = new Set();
    try {
      return JSON.stringify(v, function (k, x) {
        if (typeof x === "bigint") return `${x}n`;
        if (x instanceof Uint8Array) return `Uint8Array(${x.length})`;
        if (x instanceof Map) return Object.fromEntries(x);
        if (x instanceof Set) return [...x];
        if (x !== null && typeof x === "object") {
          if (seen.has(x)) return "[Circular]";
          seen.add(x);
        }
        return x;
      });
    } catch {
      return String(v);
    }
  }
  return String(v);
}

function formatMessage(args) {
  return args.map((a) => formatValue(a, false)).join(" ");
}

const LEVELS = ["debug", "info", "warn", "error"];

function makeLog() {
  const log = (...args) => hostLog("info", formatMessage(args));
  for (const level of LEVELS) log[level] = (...args) => hostLog(level, formatMessage(args));
  return Object.freeze(log);
}

// ---------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------

let utf8 = null;

/** What a step receives: Cypher in the step's transaction, schema, refactorings, batches, datasets, logging. */
export class Context {
  constructor() {
    /** `ctx.log(...)` logs at info; `ctx.log.debug/info/warn/error(...)` at that level. */
    this.log = makeLog();
    Object.freeze(this);
  }

  /**
   * Runs one statement with named parameters (`$name`) inside the step's transaction;
   * returns its rows as plain objects (column -> value, columns sorted by name).
   * After a failed statement the transaction is doomed: let the error propagate.
   */
  run(query, params = {}) {
    const wit = toParams(params, "parameter");
    const result = callGraph(() => hostRunCypher(str(query, "query"), wit));
    return result.rows.map((row) => {
      const obj = {};
      for (const [col, value] of [...row].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
        setProp(obj, col, fromWit(value));
      }
      return obj;
    });
  }

  /**
   * Runs a statement that returns exactly one row and returns one value of it: the
   * column named `column`, or the row's only column when `column` is omitted.
   */
  scalar(query, params = {}, column = undefined) {
    const rows = this.run(query, params);
    if (rows.length !== 1) throw new Error(`expected exactly one row, got ${rows.length}`);
    const row = rows[0];
    const columns = Object.keys(row);
    if (column !== undefined) {
      if (!Object.prototype.hasOwnProperty.call(row, column)) {
        throw new Error(`the result has no column \`${column}\` (it has ${columns.join(", ") || "none"})`);
      }
      return row[column];
    }
    if (columns.length !== 1) {
      throw new Error(
        `expected exactly one column, got ${columns.length} (${columns.join(", ")}); name the one you want: ctx.scalar(query, params, "${columns[0] ?? "column"}")`,
      );
    }
    return row[columns[0]];
  }

  // --- schema ---

  /** Creates a constraint unless one of that name exists; returns its name. Undone by the host if the migration fails. */
  createConstraint(constraint) {
    const c = constraintToWit(asConstraint(constraint));
    return callSchema(() => hostCreateConstraint(c));
  }

  /** Drops a constraint by name; absence is fine. */
  dropConstraint(name) {
    const n = str(name, "constraint name");
    callSchema(() => hostDropConstraint(n));
  }

  /** Creates an index unless one of that name exists; returns its name. */
  createIndex(index) {
    const i = indexToWit(asIndex(index));
    return callSchema(() => hostCreateIndex(i));
  }

  /** Drops an index by name; absence is fine. */
  dropIndex(name) {
    const n = str(name, "index name");
    callSchema(() => hostDropIndex(n));
  }

  /** The live constraints and indexes (indexes owned by a constraint are left out), as `Constraint` and `Index` objects. */
  schema() {
    return callSchema(() => hostSchema()).map(schemaElement);
  }

  // --- refactorings ---

  /** Renames a node label everywhere; returns how many nodes changed. */
  /**
   * Runs a backfill: the host pages through the `label` nodes by `key` (bounded to those
   * present when it begins) and runs `write` on each chunk (`$batch`: the chunk's keys,
   * `$cursor`: the last key of the chunk before), each chunk committed on its own with a
   * checkpoint. A later attempt resumes at the last checkpoint, by `name`.
   */
  backfill(name, options) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("backfill(name, { label, key, write, filter?, chunkSize? }) needs its options");
    }
    const chunkSize = options.chunkSize ?? 0;
    if (!Number.isInteger(chunkSize) || chunkSize < 0 || chunkSize > 0xffffffff) {
      throw new TypeError(`chunkSize must be a whole number of keys, not ${describeType(chunkSize)}`);
    }
    const spec = {
      name: str(name, "name"),
      label: str(options.label, "label"),
      key: str(options.key, "key"),
      filter: str(options.filter ?? "", "filter"),
      write: str(options.write, "write"),
      chunkSize,
    };
    const r = callGraph(() => hostBackfill(spec));
    return { rows: count(r.rows), chunks: r.chunks, resumedAfter: r.resumedAfter, total: count(r.total) };
  }

  renameLabel(from, to) {
    const f = str(from, "from");
    const t = str(to, "to");
    return count(callGraph(() => hostRenameLabel(f, t)));
  }

  /** Renames a relationship type everywhere; returns how many relationships changed. */
  renameType(from, to) {
    const f = str(from, "from");
    const t = str(to, "to");
    return count(callGraph(() => hostRenameType(f, t)));
  }

  /** Renames property `from` to `to` on nodes labelled `label` (relationships of type `label` with `{relationship: true}`). */
  renameProperty(label, from, to, options = undefined) {
    const e = entityOf(options, "renameProperty");
    const args = [str(label, "label"), str(from, "from"), str(to, "to")];
    return count(callGraph(() => hostRenameProperty(e, ...args)));
  }

  /** Sets `name` to `defaultValue` (not null) where it is missing; returns how many changed. */
  addProperty(label, name, defaultValue, options = undefined) {
    const e = entityOf(options, "addProperty");
    const l = str(label, "label");
    const n = str(name, "name");
    if (defaultValue === null || defaultValue === undefined) throw new TypeError("addProperty: the default value may not be null");
    const v = toWit(defaultValue, "default value");
    return count(callGraph(() => hostAddProperty(e, l, n, v)));
  }

  /** Removes property `name`; returns how many changed. */
  removeProperty(label, name, options = undefined) {
    const e = entityOf(options, "removeProperty");
    const l = str(label, "label");
    const n = str(name, "name");
    return count(callGraph(() => hostRemoveProperty(e, l, n)));
  }

  // --- batches ---

  /**
   * Begins a tracked batch: everything written through it is tagged with its id, written
   * in chunks that commit on their own, recorded in the ledger, and deleted again if the
   * migration fails.
   */
  batch(name) {
    const n = str(name, "batch name");
    return new Batch(hostBeginBatch(n), n);
  }

  /** Same as `batch(name)`. */
  beginBatch(name) {
    return this.batch(name);
  }

  /** Deletes exactly what the batch with this id (or this `Batch`) created; returns how many nodes and relationships went. */
  deleteBatch(id) {
    const b = str(id instanceof Batch ? id.id : id, "batch id");
    return count(callGraph(() => hostDeleteBatch(b)));
  }

  // --- datasets ---

  /** Reads a file of the project's data folder (`data/`), by relative path with `/` separators, as bytes. */
  readDataset(path) {
    const p = str(path, "dataset path");
    try {
      return hostReadDataset(p);
    } catch (e) {
      if (!hasPayload(e)) throw e;
      throw new DatasetError(String(e.payload.tag), p, String(e.payload.val));
    }
  }

  /** Reads a dataset as UTF-8 text (a byte order mark is dropped). */
  readText(path) {
    const bytes = this.readDataset(path);
    try {
      utf8 ??= new TextDecoder("utf-8", { fatal: true });
      return utf8.decode(bytes);
    } catch {
      throw new DatasetError("invalid", path, "not UTF-8 text");
    }
  }

  /** Reads a dataset as JSON. */
  readJson(path) {
    const text = this.readText(path);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new DatasetError("invalid", path, `not valid JSON: ${e && e.message ? e.message : e}`);
    }
  }

  // --- logging shortcuts ---

  /** Logs a debug line. */
  debug(...args) {
    this.log.debug(...args);
  }

  /** Logs an informational line. */
  info(...args) {
    this.log.info(...args);
  }

  /** Logs a warning. */
  warn(...args) {
    this.log.warn(...args);
  }

  /** Logs an error line. */
  error(...args) {
    this.log.error(...args);
  }
}

// ---------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------

const STACK_FRAMES = 8;

function inSdk(frame) {
  return (
    frame !== null &&
    SDK_START !== null &&
    SDK_END !== null &&
    frame.file === SDK_START.file &&
    frame.line >= SDK_START.line &&
    frame.line <= SDK_END.line
  );
}

// The frames of the migration's own code: the SDK's frames are left out, and the walk
// stops at the SDK's step runner (below it are only the bindings).
function userFrames(stack) {
  const frames = [];
  for (const line of stack.split("\n")) {
    const frame = stackFrame(line);
    if (frame === null) continue;
    if (frame.name.includes("__graphmig")) break;
    if (inSdk(frame)) {
      if (frames.length) break;
      continue;
    }
    frames.push(`    at ${frame.name || "<anonymous>"} (${frame.file}:${frame.line}:${frame.column})`);
  }
  return frames;
}

// `Error: message`, plus the first frames of the stack (SpiderMonkey's `fn@file:line:col`)
// down to the SDK's own step runner, plus the chain of causes.
function errorText(e, withStack, depth = 0) {
  let text;
  if (e !== null && typeof e === "object" && typeof e.message === "string") {
    const name = typeof e.name === "string" && e.name ? e.name : "Error";
    text = e.message ? `${name}: ${e.message}` : name;
    if (withStack && typeof e.stack === "string") {
      const frames = userFrames(e.stack);
      if (frames.length > STACK_FRAMES) frames.splice(STACK_FRAMES, frames.length - STACK_FRAMES, "    ...");
      if (frames.length) text += "\n" + frames.join("\n");
    }
    if (e.cause !== undefined && depth < 4) text += `\ncaused by: ${errorText(e.cause, false, depth + 1)}`;
  } else if (e !== null && typeof e === "object") {
    try {
      const s = String(e);
      text = s === "[object Object]" ? JSON.stringify(e, (k, x) => (typeof x === "bigint" ? `${x}n` : x)) ?? s : s;
    } catch {
      text = Object.prototype.toString.call(e);
    }
  } else {
    try {
      text = String(e);
    } catch {
      text = typeof e;
    }
  }
  return text;
}

function failure(e) {
  try {
    return { tag: "err", val: errorText(e, true) };
  } catch {
    return { tag: "err", val: "the migration failed with an error that cannot be printed" };
  }
}

const CONSOLE_LEVELS = { log: "info", info: "info", debug: "debug", trace: "debug", warn: "warn", error: "error" };

// While a step runs, console.* goes to the host's log (kept in the ledger) instead of
// a stdout nobody reads.
function patchConsole() {
  const c = globalThis.console;
  if (!c) return () => {};
  const saved = {};
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    saved[method] = c[method];
    try {
      c[method] = (...args) => hostLog(level, formatMessage(args));
    } catch {
      // a read-only console keeps writing to stderr
    }
  }
  return () => {
    for (const method of Object.keys(saved)) {
      try {
        c[method] = saved[method];
      } catch {
        // ignore
      }
    }
  };
}

function __graphmigRunStep(m, method) {
  const restore = patchConsole();
  let result;
  try {
    result = m[method](new Context());
  } catch (e) {
    restore();
    return failure(e);
  }
  if (result !== null && (typeof result === "object" || typeof result === "function") && typeof result.then === "function") {
    // An async step: componentize-js runs the event loop until the promise settles.
    return Promise.resolve(result).then(
      () => {
        restore();
        return { tag: "ok", val: undefined };
      },
      (e) => {
        restore();
        return failure(e);
      },
    );
  }
  restore();
  return { tag: "ok", val: undefined };
}

function migrationOf(module) {
  if (module && typeof module.up !== "function" && module.default && typeof module.default === "object") {
    return module.default;
  }
  return module ?? {};
}

/**
 * The `lifecycle` export of a migration component for a migration module (its namespace
 * object): `describe`, `up` and `down` as componentize-js expects them. Neither step lets
 * an exception escape: whatever a step throws becomes its `err` message.
 */
export function lifecycleFor(module) {
  const m = migrationOf(module);
  return {
    describe() {
      let description = "";
      let irreversible = false;
      let hasDown = false;
      try {
        description = m.description === undefined || m.description === null ? "" : String(m.description);
        irreversible = m.irreversible === true || m.rollback === "irreversible";
        hasDown = typeof m.down === "function";
      } catch {
        // keep the defaults
      }
      return { description, rollback: irreversible ? "irreversible" : "reversible", hasDown };
    },
    up() {
      if (typeof m.up !== "function") {
        return { tag: "err", val: "migration.js does not export an `up` function" };
      }
      return __graphmigRunStep(m, "up");
    },
    down() {
      if (typeof m.down !== "function") {
        return { tag: "err", val: "this migration has no down step" };
      }
      return __graphmigRunStep(m, "down");
    },
  };
}

const SDK_END = callerLine();
